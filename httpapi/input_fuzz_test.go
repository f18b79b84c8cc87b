package httpapi

import (
	"bytes"
	"testing"

	"github.com/attrcache/attrcache"
)

// FuzzInput checks that no body makes decoding or the typed accessors panic, and that whatever
// they refuse is refused as a client error.
func FuzzInput(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"ust": "x", "is_locked": true, "page_size": 10}`, `{"app_list": ["CRM", 1]}`,
		`{"page_size": 1e400}`, `{"is_locked": "1"}`, `[]`, `null`, `{"a": {"b": [}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, err := decodeBody(bytes.NewReader(body))
		if err != nil {
			if kind := attrcache.AsError(err).Kind; kind != attrcache.KindBadRequest {
				t.Fatalf("decodeBody(%q): kind %v, want bad request", body, kind)
			}
			return
		}
		in := &input{values: values}
		in.UST(true)
		in.RequiredString("username")
		in.OptionalString("email")
		in.Bool("is_locked")
		in.Int("page_size")
		in.StringList("app_list")
		if err := in.Err(); err != nil {
			if kind := attrcache.AsError(err).Kind; kind != attrcache.KindBadRequest {
				t.Fatalf("input %q: kind %v, want bad request", body, kind)
			}
		}
	})
}
