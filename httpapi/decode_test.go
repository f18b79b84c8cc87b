package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// decodeWithDecoder is the reference decodeObject must agree with: the body decoded into
// map[string]json.RawMessage by a json.Decoder, then each value by a json.Decoder with
// UseNumber.
func decodeWithDecoder(data []byte) (map[string]any, map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, map[string]json.RawMessage{}, nil
	}
	var texts map[string]json.RawMessage
	if err := decodeOne(data, &texts); err != nil || texts == nil {
		return nil, nil, errNotAnObject
	}
	values := make(map[string]any, len(texts))
	for key, text := range texts {
		var value any
		if err := decodeOne(text, &value); err != nil {
			return nil, nil, err
		}
		values[key] = value
	}
	return values, texts, nil
}

func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// decodeSeeds are bodies whose decoding has corners: white space, nesting, escapes, invalid
// UTF-8, surrogates, numbers, repeated keys and bodies that are not objects.
var decodeSeeds = []string{
	``, " \t\r\n", "\u00a0", `{}`, ` { } `, `{"a":1}`, "{\n\"a\" :\t1 ,\"b\": \"x\" }\n",
	`{"ust": "x", "is_locked": true, "page_size": 10, "z": null, "f": false}`,
	`{"a": 1, "a": "two"}`, `{"a": {"b": 1, "b": [2]}}`, `{"a": [], "b": {}, "c": [[]], "d": [{}]}`,
	`{"n": -0.5e+10, "m": 1E-7, "big": 123456789012345678901234567890, "z": 0}`,
	`{"s": "line\nbreak \"quoted\" \\ \/ \b\f\r\t \u00e9 \u20ac"}`, `{"\u0061": 1, "a": 2}`,
	`{"pair": "\ud83d\ude00", "lone": "\ud83d", "lone2": "\udc00x", "bad": "\ud83d\u0041"}`,
	"{\"raw\": \"\xff\xfe\", \"k\xc3\": 1, \"ok\": \"\xc3\xa9\"}", "{\"sep\": \"\u2028<>&\"}",
	`{"data": [{"name": "n", "value": 1, "expiration": 5, "encrypt": true}, "a", 1, null]}`,
	`null`, `[]`, `"x"`, `1`, `true`, `{"a": 1} x`, `{"a": 1}{}`, `{"a": [}`, `{"a" 1}`, `{,}`,
	`{"a": 1,}`, `{"a": 01}`, `{"a": tru}`, "{\"a\": \"\x01\"}", `{"a": "\x"}`, `{"a": 1`,
	"\xef\xbb\xbf{}", strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
}

// FuzzDecodeObject checks that decodeObject decodes every body as decodeWithDecoder does.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range decodeSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecodeObject(t, body)
	})
}

func checkDecodeObject(t *testing.T, body []byte) {
	t.Helper()
	checkDecodeWithSpec(t, body)
	wantValues, wantTexts, wantErr := decodeWithDecoder(body)
	values, texts, err := decodeObject(bytes.Clone(body), nil)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeObject(%q): error %v, want %v", body, err, wantErr)
	}
	if err != nil && !errors.Is(err, errNotAnObject) {
		t.Fatalf("decodeObject(%q): error %v, want errNotAnObject", body, err)
	}
	if !reflect.DeepEqual(values, wantValues) {
		t.Fatalf("decodeObject(%q): values %#v, want %#v", body, values, wantValues)
	}
	if len(texts) != len(wantTexts) {
		t.Fatalf("decodeObject(%q): texts %q, want %q", body, texts, wantTexts)
	}
	for key, want := range wantTexts {
		if got, ok := texts[key]; !ok || !bytes.Equal(got, want) || cap(got) != len(got) {
			t.Fatalf("decodeObject(%q): texts[%q] = %q (cap %d), want %q", body, key, got, cap(got), want)
		}
	}
}

func TestReadBody(t *testing.T) {
	body := strings.Repeat(`{"name": "n"}`, 100)
	for _, hint := range []int64{-1, 0, 1, 512, int64(len(body)), int64(len(body)) + 10} {
		got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), hint)
		if err != nil || string(got) != body {
			t.Fatalf("readBody with hint %d: %q, %v; want the body", hint, got, err)
		}
	}
	if _, err := readBody(iotest.ErrReader(errors.New("reset")), 0); err == nil || errors.Is(err, errBodyTooLarge) {
		t.Fatalf("readBody of a failing reader: %v, want a 400", err)
	}
}

// testAttrSpec is the input spec of an attribute write, as routeTable builds it.
var testAttrSpec = (&server{maxBodyBytes: defaultMaxBodyBytes, maxAttrValueBytes: 1 << 10}).
	attrInput("ust", "current_app", "user_id", "name", "value", "data", "expiration", "encrypt")

// checkDecodeWithSpec checks decoding under testAttrSpec against the reference: it fails only
// where the reference fails or with a bound's error; it gives only the keys the spec reads; value
// as its text; the other keys as the reference decodes them, but for the members of data's items
// that the spec keeps as text.
func checkDecodeWithSpec(t *testing.T, body []byte) {
	t.Helper()
	wantValues, _, wantErr := decodeWithDecoder(body)
	values, _, err := decodeObject(bytes.Clone(body), testAttrSpec)
	switch {
	case wantErr != nil && err == nil:
		t.Fatalf("decodeObject(%q, spec) succeeded, want %v", body, wantErr)
	case err != nil && wantErr == nil && !errors.Is(err, errTooDeep) && !errors.Is(err, errTooManyValues):
		t.Fatalf("decodeObject(%q, spec): %v, want success or a bound's error", body, err)
	case err != nil:
		return
	}
	for key, got := range values {
		want, ok := wantValues[key]
		if !testAttrSpec.reads(key) || !ok {
			t.Fatalf("decodeObject(%q, spec) gave %q, which the spec does not read or the body lacks", body, key)
		}
		if key == "value" {
			var decoded any
			if text, isText := got.(json.RawMessage); !isText || decodeOne(text, &decoded) != nil || !reflect.DeepEqual(decoded, want) {
				t.Fatalf("decodeObject(%q, spec): value = %#v, want its text", body, got)
			}
			continue
		}
		if !reflect.DeepEqual(withItemTexts(got), withItemTexts(want)) {
			t.Fatalf("decodeObject(%q, spec): %s = %#v, want %#v", body, key, got, want)
		}
	}
}

// withItemTexts returns v with every member of a nested object that testAttrSpec keeps as text
// replaced by "(text)", so that a decoded and a spec-decoded value compare equal.
func withItemTexts(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = withItemTexts(item)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, member := range v {
			if testAttrSpec.itemKeys[key] {
				out[key] = withItemTexts(member)
			} else {
				out[key] = "(text)"
			}
		}
		return out
	}
	return v
}

func TestDecodeObjectWithSpec(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	tests := []struct {
		name    string
		body    string
		want    map[string]any
		wantErr error
	}{
		{"keys the spec does not read are skipped", `{"zzz":[[0],[0]],"name":"n","password":{"a":1}}`, map[string]any{"name": "n"}, nil},
		{"value kept as its text", `{"value": ` + deep + `}`, map[string]any{"value": json.RawMessage(deep)}, nil},
		{"item members kept as text but name, expiration, encrypt",
			`{"data":[{"name":"a","value":` + deep + `,"expiration":5,"encrypt":true,"extra":{"b":[1]}}]}`,
			map[string]any{"data": []any{map[string]any{"name": "a", "value": json.RawMessage(deep), "expiration": json.Number("5"),
				"encrypt": true, "extra": json.RawMessage(`{"b":[1]}`)}}}, nil},
		{"a read key nested too deeply", `{"data":[[["x"]]]}`, nil, errTooDeep},
		{"an item's name nested too deeply", `{"data":[{"name":["x"]}]}`, nil, errTooDeep},
		{"too many values", `{"data":` + "[" + strings.Repeat(`"n",`, attrMaxValues) + `"n"]}`, nil, errTooManyValues},
		{"as many values as allowed", `{"data":` + "[" + strings.Repeat(`"n",`, attrMaxValues-3) + `"n"]}`, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, _, err := decodeObject([]byte(tt.body), testAttrSpec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.want != nil && !reflect.DeepEqual(values, tt.want) {
				t.Errorf("values %#v, want %#v", values, tt.want)
			}
		})
	}
}
