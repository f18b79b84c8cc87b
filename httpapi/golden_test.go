package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/attrcache/attrcache/sso"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// variableKeys are the keys whose values change from run to run; golden files hold a
// placeholder instead of a non-empty string value.
var variableKeys = map[string]bool{
	"cid": true, "ust": true, "user_id": true, "username": true, "auth_principal": true,
	"approval_status_mod_by": true, "locked_by": true, "confirm_token": true, "totp_key": true,
	"creation_time": true, "expiration_time": true, "last_modified": true, "approval_status_mod_time": true,
	"password_expiry": true, "password_last_set": true, "sign_up_time": true, "locked_time": true,
}

// normalise replaces the variable values of a decoded JSON value by placeholders.
func normalise(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, value := range v {
			if s, ok := value.(string); ok && s != "" && variableKeys[key] {
				out[key] = "<" + key + ">"
				continue
			}
			if n, ok := value.(float64); ok && n > 0 && key == "version" {
				out[key] = "<version>"
				continue
			}
			out[key] = normalise(value)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = normalise(item)
		}
		return out
	}
	return v
}

func TestGolden(t *testing.T) {
	email, first, last := "golden@example.com", "Grace", "Hopper"
	regular := newUser(t, false, func(in *sso.CreateUserInput) {
		in.Email, in.FirstName, in.LastName = &email, &first, &last
	})
	userAttrs(regular).put(t, map[string]any{"data": []any{
		item("color", "red"),
		item("limits", map[string]any{"max": 10, "tags": []any{"a", "b"}}),
	}})
	tests := []struct {
		name   string
		method string
		path   string
		input  map[string]any
	}{
		{"login", http.MethodPost, pathLogin, map[string]any{"username": regular.username, "password": regular.password, "current_app": app}},
		{"user_regular", http.MethodGet, pathUser, withCaller(regular, nil)},
		{"user_full", http.MethodGet, pathUser, withCaller(admin, map[string]any{"user_id": regular.id})},
		{"user_created", http.MethodPost, pathUser, withCaller(admin, map[string]any{"username": uniqueName("golden"), "email": "new@example.com", "display_name": "New"})},
		{"search", http.MethodGet, pathSearch, withCaller(admin, map[string]any{"user_id": regular.id})},
		{"session", http.MethodGet, pathSession, map[string]any{"current_ust": admin.ust, "target_ust": regular.ust, "current_app": app}},
		{"session_list", http.MethodGet, pathSessionList, withCaller(regular, nil)},
		{"attr_get", http.MethodGet, pathUserAttr, withCaller(regular, map[string]any{"name": "limits"})},
		{"attr_get_not_found", http.MethodGet, pathUserAttr, withCaller(regular, map[string]any{"name": "missing"})},
		{"attr_get_many", http.MethodGet, pathUserAttr, withCaller(regular, map[string]any{"data": []any{"color", "limits", "missing"}})},
		{"attr_exists", http.MethodGet, pathUserAttr + suffixExists, withCaller(regular, map[string]any{"name": "color"})},
		{"attr_exists_many", http.MethodGet, pathUserAttr + suffixExists, withCaller(regular, map[string]any{"data": []any{"color", "missing"}})},
		{"attr_names", http.MethodGet, pathUserAttr + suffixNames, withCaller(regular, nil)},
		{"attr_set", http.MethodPut, pathUserAttr, withCaller(regular, map[string]any{"name": "size", "value": 1})},
		{"error_attr_exists", http.MethodPost, pathUserAttr, withCaller(regular, map[string]any{"name": "color", "value": 1})},
		{"error_attr_input", http.MethodPut, pathUserAttr, withCaller(regular, map[string]any{"name": "size"})},
		{"error_missing_input", http.MethodPost, pathLogin, map[string]any{"current_app": app}},
		{"error_denied", http.MethodPost, pathLogin, map[string]any{"username": regular.username, "password": "wrong-password", "current_app": app}},
		{"error_app_invalid", http.MethodGet, pathUser, map[string]any{"ust": regular.ust, "current_app": "NoSuchApp"}},
		{"error_method_not_allowed", http.MethodPut, pathUser, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.method, tt.path, tt.input)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"http_status": res.status, "body": normalise(res.body)}); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			file := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs; got:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}
