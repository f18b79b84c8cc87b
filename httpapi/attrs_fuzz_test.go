package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// readAttrItemsWithUnmarshal is the reference readAttrItems must agree with: data's text
// decoded by json.Unmarshal into a list of texts, then each item into a map of texts, then each
// key into its field.
func readAttrItemsWithUnmarshal(in *input) ([]sso.AttrItem, error) {
	if in.Has("name") {
		value := in.JSON("value")
		if value == nil {
			return nil, errNoValue
		}
		return []sso.AttrItem{{Name: in.String("name"), Value: value}}, nil
	}
	if in.values["data"] == nil {
		return nil, errNoNameNorData
	}
	var list []json.RawMessage
	if err := json.Unmarshal(in.JSON("data"), &list); err != nil {
		return nil, errWriteData
	}
	items := make([]sso.AttrItem, len(list))
	for i, text := range list {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(text, &fields); err != nil || fields == nil {
			return nil, attrcache.InvalidInput("data[%d] must be an object with name and value", i)
		}
		for _, key := range []string{"name", "value"} {
			if _, ok := fields[key]; !ok {
				return nil, attrcache.InvalidInput("data[%d]: %s is required", i, key)
			}
		}
		items[i].Value = fields["value"]
		for _, field := range []struct {
			key, want string
			into      any
		}{
			{"name", "a string", &items[i].Name},
			{"expiration", "an integer", &items[i].Expiration},
			{"encrypt", "a boolean", &items[i].Encrypt},
			{"if_version", "an integer", &items[i].IfVersion},
		} {
			if text, ok := fields[field.key]; ok && json.Unmarshal(text, field.into) != nil {
				return nil, attrcache.InvalidInput("data[%d].%s: want %s", i, field.key, field.want)
			}
		}
	}
	return items, nil
}

// FuzzReadAttrItems checks that readAttrItems reads every body's items as
// readAttrItemsWithUnmarshal does, and refuses what it refuses with the same error.
func FuzzReadAttrItems(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"data": null}`, `{"data": "a"}`, `{"data": {}}`, `{"data": []}`, `{"data": 1}`,
		`{"name": "n", "value": {"z": 1, "a": [1.50]}}`, `{"name": "n"}`, `{"name": null, "value": null}`,
		`{"data": [{"name": "n", "value": 1, "expiration": 5, "encrypt": true}]}`,
		`{"data": [ { "name" : "n" , "value" : { "a" : [ 1 , "x\"}]" ] } , "expiration" : null } ]}`,
		`{"data": [{"name": "n", "value": 1, "value": [2], "name": "m"}]}`,
		`{"data": [{"na\u006de": "n", "valu\u0065": "v\u00e9"}, {"name": "o", "value": "<>&\u2028"}]}`,
		`{"data": [{"name": "n", "value": 1}, null]}`, `{"data": ["a", {"name": "b"}, 1]}`,
		`{"data": [{"value": 1}]}`, `{"data": [{"name": 1, "value": 1}]}`, `{"data": [[], {}]}`,
		`{"data": [{"name": "n", "value": true, "expiration": 1.5}]}`,
		`{"data": [{"name": "n", "value": false, "expiration": 1e3}]}`,
		`{"data": [{"name": "n", "value": null, "expiration": -0}]}`,
		`{"data": [{"name": "n", "value": 1, "expiration": 9223372036854775808}]}`,
		`{"data": [{"name": "n", "value": 1, "expiration": "5"}]}`,
		`{"data": [{"name": "n", "value": 1, "encrypt": "true"}]}`,
		`{"data": [{"name": "n", "value": 1, "if_version": 0}, {"name": "m", "value": 2, "if_version": "3"}]}`,
		`{"data": [{"name": "n", "value": 1, "encrypt": null, "expiration": -9223372036854775808}]}`,
		"{\"data\": [{\"name\": \"\xff\", \"value\": \"\xfe\", \"k\xc3\": 1}]}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, texts, err := decodeObject(bytes.Clone(body), nil)
		if err != nil {
			return
		}
		items, _, err := readAttrItems(&input{values: values, texts: texts})
		wantItems, wantErr := readAttrItemsWithUnmarshal(&input{values: values, texts: texts})
		if !reflect.DeepEqual(attrErrorOf(err), attrErrorOf(wantErr)) {
			t.Fatalf("readAttrItems(%q): error %v, want %v", body, err, wantErr)
		}
		if len(items) != len(wantItems) {
			t.Fatalf("readAttrItems(%q): %d items, want %d", body, len(items), len(wantItems))
		}
		for i, item := range items {
			if got, want := describeAttrItem(item), describeAttrItem(wantItems[i]); got != want {
				t.Fatalf("readAttrItems(%q)[%d] = %s, want %s", body, i, got, want)
			}
		}
	})
}

// attrErrorOf returns what a client sees of err: nil, or its kind, code and message.
func attrErrorOf(err error) *attrcache.Error {
	if err == nil {
		return nil
	}
	e := attrcache.AsError(err)
	return &attrcache.Error{Kind: e.Kind, Code: e.Code, Message: e.Message}
}

// describeAttrItem renders an item with its value's type and text and its options' values.
func describeAttrItem(item sso.AttrItem) string {
	text, _ := item.Value.(json.RawMessage)
	b, _ := json.Marshal(struct {
		Name       string
		ValueType  string
		Value      string
		Expiration *int64
		Encrypt    *bool
	}{item.Name, fmt.Sprintf("%T", item.Value), string(text), item.Expiration, item.Encrypt})
	return string(b)
}
