package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/attrcache/attrcache"
)

// FuzzInput checks that no body makes decoding, the typed accessors or the reading of attribute
// inputs panic, and that whatever they refuse is refused as a client error.
func FuzzInput(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"ust": "x", "is_locked": true, "page_size": 10}`, `{"app_list": ["CRM", 1]}`,
		`{"page_size": 1e400}`, `{"is_locked": "1"}`, `[]`, `null`, `{"a": {"b": [}`,
		`{"name": "n", "value": {"z": 1, "a": [1.50]}}`, `{"data": [{"name": "n", "value": 1, "expiration": 5, "encrypt": true}]}`,
		`{"data": ["a", {"name": "b"}, 1]}`, `{"data": "a", "decrypt": "false"}`, `{"data": [null, {"name": null, "value": null}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, texts, err := decodeBody(bytes.NewReader(body))
		if err != nil {
			if kind := attrcache.AsError(err).Kind; kind != attrcache.KindBadRequest {
				t.Fatalf("decodeBody(%q): kind %v, want bad request", body, kind)
			}
			return
		}
		if len(texts) != len(values) {
			t.Fatalf("decodeBody(%q): %d texts for %d values", body, len(texts), len(values))
		}
		in := &input{values: values, texts: texts}
		in.UST(true)
		in.RequiredString("username")
		in.OptionalString("email")
		in.Bool("is_locked")
		in.OptionalBool("decrypt")
		in.JSON("value")
		in.Int("page_size")
		in.StringList("app_list")
		for _, err := range []error{attrItemsErr(in), attrNamesErr(in)} {
			if err != nil && attrcache.CodeOf(err) != attrcache.CodeInvalidInput {
				t.Fatalf("attribute input %q: %v, want E008002", body, err)
			}
		}
		if err := in.Err(); err != nil {
			if kind := attrcache.AsError(err).Kind; kind != attrcache.KindBadRequest {
				t.Fatalf("input %q: kind %v, want bad request", body, kind)
			}
		}
	})
}

func attrItemsErr(in *input) error {
	_, _, err := readAttrItems(in)
	return err
}

func attrNamesErr(in *input) error {
	_, _, err := readAttrNames(in)
	return err
}

// decodeBody reads and decodes a JSON object as readRequest does (readBody, then decodeObject).
func decodeBody(r io.Reader) (values map[string]any, texts map[string]json.RawMessage, err error) {
	data, err := readBody(r, 0)
	if err != nil {
		return nil, nil, err
	}
	return decodeObject(data, nil)
}
