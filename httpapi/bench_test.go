package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// benchBodies are request bodies as clients send them: a login, and a set_many of a hundred
// attributes of different JSON types.
func benchBodies(b *testing.B) []struct {
	desc string
	body []byte
} {
	b.Helper()
	login := map[string]any{
		"username":    "benchmark-user",
		"password":    "benchmark-password",
		"current_app": "CRM",
		"remote_addr": "192.0.2.1",
		"user_agent":  "benchmark/1.0",
		"totp_code":   "123456",
	}
	items := make([]map[string]any, 100)
	for i := range items {
		items[i] = map[string]any{
			"name":       fmt.Sprintf("attribute-%03d", i),
			"value":      map[string]any{"id": i, "tags": []string{"a", "b"}, "note": "some text"},
			"expiration": 3600,
			"encrypt":    i%2 == 0,
		}
	}
	setMany := map[string]any{"ust": "benchmark-ust", "current_app": "CRM", "data": items}
	return []struct {
		desc string
		body []byte
	}{
		{"login", benchJSON(b, login)},
		{"set_many_100", benchJSON(b, setMany)},
	}
}

func benchJSON(b *testing.B, v any) []byte {
	b.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		b.Fatalf("json.Marshal: %v", err)
	}
	return data
}

func BenchmarkDecodeBody(b *testing.B) {
	for _, tc := range benchBodies(b) {
		b.Run(tc.desc, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, _, err := decodeBody(bytes.NewReader(tc.body)); err != nil {
					b.Fatalf("decodeBody: %v", err)
				}
			}
		})
	}
}

// BenchmarkReadAttrItems measures reading the items of a set_many of a hundred attributes from
// a decoded body, as a PUT does after decodeObject.
func BenchmarkReadAttrItems(b *testing.B) {
	body := benchBodies(b)[1].body
	values, texts, err := decodeObject(body, nil)
	if err != nil {
		b.Fatalf("decodeObject: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		in := input{values: values, texts: texts}
		if items, _, err := readAttrItems(&in); err != nil || len(items) != 100 {
			b.Fatalf("readAttrItems: %d items, %v", len(items), err)
		}
	}
}
