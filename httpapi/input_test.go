package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
)

func TestQueryStringWinsOverBody(t *testing.T) {
	u := newUser(t, false, nil)
	query := url.Values{"password": {u.password}, "current_app": {app}}
	body := map[string]any{"username": u.username, "password": "wrong-password", "current_app": "NoSuchApp"}
	res := serve(handler, call{method: http.MethodPost, path: pathLogin + "?" + query.Encode(), body: jsonOf(body)})
	wantOK(t, res)
}

func TestQueryStringAlone(t *testing.T) {
	u := newUser(t, false, nil)
	query := url.Values{"ust": {u.ust}, "current_app": {app}}
	res := serve(handler, call{method: http.MethodGet, path: pathUser + "?" + query.Encode()})
	wantOK(t, res)
	if res.body["username"] != u.username {
		t.Fatalf("username = %v, want %s", res.body["username"], u.username)
	}
}

// TestBodyWhateverContentType checks that the body is read as JSON whatever Content-Type says,
// on every verb, GET and DELETE included.
func TestBodyWhateverContentType(t *testing.T) {
	u := newUser(t, false, nil)
	for _, contentType := range []string{"", "application/json", "text/plain", "application/x-www-form-urlencoded"} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			t.Run(method+" "+contentType, func(t *testing.T) {
				header := map[string]string{}
				if contentType != "" {
					header["Content-Type"] = contentType
				}
				res := serve(handler, call{method: method, path: pathLogin, header: header,
					body: jsonOf(map[string]any{"username": u.username, "password": u.password, "current_app": app})})
				wantOK(t, res)
			})
		}
	}
}

func TestMalformedBody(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not JSON", `{"username": `},
		{"array", `["username"]`},
		{"string", `"username"`},
		{"number", `42`},
		{"null", `null`},
		{"two objects", `{} {}`},
		{"trailing garbage", `{"current_app": "CRM"} x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(handler, call{method: http.MethodPost, path: pathLogin, body: tt.body})
			wantError(t, res, http.StatusBadRequest, attrcache.CodeInvalidInput)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	small := httpapi.NewServer(api, httpapi.Options{MaxBodyBytes: 64})
	huge := `{"username": "` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name    string
		handler http.Handler
		body    string
	}{
		{"default limit", handler, huge},
		{"configured limit", small, `{"username": "` + strings.Repeat("x", 64) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(tt.handler, call{method: http.MethodPost, path: pathLogin, body: tt.body})
			wantError(t, res, http.StatusRequestEntityTooLarge, attrcache.CodeInvalidInput)
		})
	}
	t.Run("under the configured limit", func(t *testing.T) {
		res := serve(small, call{method: http.MethodPost, path: pathLogin, body: `{"current_app": "CRM"}`})
		wantError(t, res, http.StatusBadRequest, attrcache.CodeMissingInput)
	})
}

// TestWrongTypes checks that a known key of the wrong JSON type answers 400 E008002 with a
// message naming the key, for every typed key of every endpoint.
func TestWrongTypes(t *testing.T) {
	// A caller of its own: a wrong type that went unnoticed could end its session.
	caller := withCaller(newUser(t, true, nil), nil)
	tests := []struct {
		method string
		path   string
		key    string
		value  any
	}{
		{http.MethodPost, pathLogin, "username", 1},
		{http.MethodPost, pathLogin, "password", true},
		{http.MethodPost, pathLogin, "current_app", []any{app}},
		{http.MethodPost, pathLogin, "totp_code", 123456},
		{http.MethodPost, pathLogin, "new_password", map[string]any{}},
		{http.MethodPost, pathLogin, "remote_addr", 1},
		{http.MethodPost, pathLogin, "user_agent", 1},
		{http.MethodPost, "/zato/sso/user/logout", "ust", 1},
		{http.MethodPost, "/zato/sso/user/logout", "current_ust", false},
		{http.MethodGet, pathUser, "user_id", 1},
		{http.MethodPost, pathUser, "username", 1},
		{http.MethodPost, pathUser, "password", 1},
		{http.MethodPost, pathUser, "email", 1},
		{http.MethodPost, pathUser, "display_name", 1},
		{http.MethodPost, pathUser, "first_name", 1},
		{http.MethodPost, pathUser, "middle_name", 1},
		{http.MethodPost, pathUser, "last_name", 1},
		{http.MethodPost, pathUser, "is_locked", "maybe"},
		{http.MethodPost, pathUser, "password_must_change", 1},
		{http.MethodPost, pathUser, "is_totp_enabled", []any{}},
		{http.MethodPost, pathUser, "totp_key", 1},
		{http.MethodPost, pathUser, "totp_label", 1},
		{http.MethodPost, pathUser, "sign_up_status", 1},
		{http.MethodPost, pathUser, "auto_approve", "yes"},
		{http.MethodPatch, pathUser, "user_id", true},
		{http.MethodDelete, pathUser, "user_id", 1},
		{http.MethodPatch, pathPassword, "new_password", 1},
		{http.MethodPatch, pathPassword, "old_password", 1},
		{http.MethodPatch, pathPassword, "user_id", 1},
		{http.MethodPatch, pathPassword, "password_expiry", 1.5},
		{http.MethodPatch, pathPassword, "must_change", "often"},
		{http.MethodPost, "/zato/sso/user/approve", "user_id", 1},
		{http.MethodPost, "/zato/sso/user/reject", "user_id", 1},
		{http.MethodPost, "/zato/sso/user/lock", "user_id", 1},
		{http.MethodDelete, "/zato/sso/user/lock", "user_id", 1},
		{http.MethodPatch, pathTOTP, "totp_key", 1},
		{http.MethodPatch, pathTOTP, "totp_label", 1},
		{http.MethodPatch, pathTOTP, "user_id", 1},
		{http.MethodGet, pathSearch, "username", 1},
		{http.MethodGet, pathSearch, "name_op", 1},
		{http.MethodGet, pathSearch, "is_name_exact", "exactly"},
		{http.MethodGet, pathSearch, "cur_page", "first"},
		{http.MethodGet, pathSearch, "page_size", true},
		{http.MethodPost, pathSignup, "username", 1},
		{http.MethodPost, pathSignup, "email", 1},
		{http.MethodPost, pathSignup, "app_list", map[string]any{}},
		{http.MethodPatch, pathSignup, "confirm_token", 1},
		{http.MethodGet, pathSession, "target_ust", 1},
		{http.MethodPost, pathSession, "target_ust", 1},
		{http.MethodPatch, pathSession, "ust", 1},
		{http.MethodGet, pathSessionList, "current_ust", 1},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.key, func(t *testing.T) {
			input := map[string]any{"username": "u", "password": "p", "new_password": "p", "user_id": admin.id,
				"totp_key": "", "totp_label": "", "confirm_token": "t"}
			for k, v := range caller {
				input[k] = v
			}
			input[tt.key] = tt.value
			res := do(t, tt.method, tt.path, input)
			wantError(t, res, http.StatusBadRequest, attrcache.CodeInvalidInput)
			if msg, _ := res.body["message"].(string); !strings.Contains(msg, tt.key) {
				t.Fatalf("message = %q, want it to name %s", msg, tt.key)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	for _, path := range []string{"/", "/zato/sso/user/nothing", "/zato/sso/user/", "/metrics"} {
		t.Run(path, func(t *testing.T) {
			wantError(t, do(t, http.MethodGet, path, nil), http.StatusNotFound, attrcache.CodeInvalidInput)
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	tests := []struct{ method, path string }{
		{http.MethodPut, pathUser},
		{http.MethodOptions, pathLogin},
		{http.MethodGet, pathPassword},
		{http.MethodGet, "/zato/sso/user/lock"},
		{http.MethodDelete, pathSession},
		{http.MethodPost, pathSessionList},
		{http.MethodPost, "/healthz"},
		{http.MethodPost, pathUserAttr + suffixExists},
		{http.MethodDelete, pathSessionAttr + suffixNames},
		{http.MethodOptions, pathSessionAttr},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := do(t, tt.method, tt.path, withCaller(admin, nil))
			wantError(t, res, http.StatusMethodNotAllowed, attrcache.CodeInvalidInput)
			if res.header.Get("Allow") == "" {
				t.Fatalf("no Allow header")
			}
		})
	}
}

// TestNoClientInputGives500 sends every route, on every verb, input no client should send, and
// checks that none answers 500 and that every answer carries the envelope's cid.
func TestNoClientInputGives500(t *testing.T) {
	paths := []string{pathLogin, "/zato/sso/user/logout", pathUser, pathPassword, "/zato/sso/user/approve",
		"/zato/sso/user/reject", "/zato/sso/user/lock", pathTOTP, pathSearch, pathSignup, pathSession,
		pathSessionList, "/healthz", "/readyz", "/metrics", "/nowhere",
		pathUserAttr, pathUserAttr + suffixExists, pathUserAttr + suffixNames,
		pathSessionAttr, pathSessionAttr + suffixExists, pathSessionAttr + suffixNames}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	keys := []string{"username", "password", "current_app", "totp_code", "new_password", "remote_addr", "user_agent",
		"ust", "current_ust", "target_ust", "user_id", "email", "display_name", "first_name", "middle_name",
		"last_name", "is_locked", "password_must_change", "is_totp_enabled", "totp_key", "totp_label",
		"sign_up_status", "approval_status", "auto_approve", "password_expiry", "old_password", "must_change",
		"name_op", "is_name_exact", "paginate", "cur_page", "page_size", "app_list", "confirm_token", "data", "name",
		"value", "expiration", "encrypt", "decrypt"}
	// A super-user of its own, so that whatever the sweep changes touches no other test's users,
	// and an API of its own, so that its failed logins throttle no other test's.
	sweeper := newUser(t, true, nil)
	handler := httpapi.NewServer(newAPI(), httpapi.Options{})
	values := []any{nil, "", "garbage", 1, -1, 1.5, true, []any{1}, map[string]any{"a": 1}, strings.Repeat("z", 4096),
		"ac1.k1.AAAA", "ac1.nokey.!!!", "9999-99-99", "zusr0000000000000000000000000"}

	bodies := []string{"", "{", "[]", "null", `"x"`, `{"unknown": 1}`, strings.Repeat(`{"a":`, 10000),
		`{"ust": "garbage", "current_app": "CRM", "user_id": "garbage", "target_ust": "garbage"}`}
	for _, value := range values {
		all := map[string]any{}
		for _, key := range keys {
			all[key] = value
		}
		bodies = append(bodies, jsonOf(all))
		// The same with a valid caller, so that the input reaches sso.
		for k, v := range withCaller(sweeper, nil) {
			all[k] = v
		}
		bodies = append(bodies, jsonOf(all))
	}
	bodies = append(bodies, attrSweepBodies(withCaller(sweeper, map[string]any{"target_ust": sweeper.ust}))...)
	headers := []map[string]string{
		nil,
		{"X-Forwarded-For": "garbage, 1.2.3.4", "X-Zato-Forwarded-For": ",,,", "Content-Type": "application/xml"},
	}

	for _, path := range paths {
		for _, method := range methods {
			t.Run(method+" "+path, func(t *testing.T) {
				for _, body := range bodies {
					for _, header := range headers {
						res := serve(handler, call{method: method, path: path, body: body, header: header})
						if res.status >= http.StatusInternalServerError {
							t.Fatalf("body %.200s: HTTP %d %s", body, res.status, res.raw)
						}
						checkCID(t, res)
					}
				}
			})
		}
	}
}

// attrSweepBodies returns the attribute inputs of the no-500 sweep, sent with caller's keys:
// malformed and wrong-type name, value, data and options, and inputs far over every limit.
func attrSweepBodies(caller map[string]any) []string {
	huge := strings.Repeat("x", 200<<10)
	manyItems := make([]any, 5000)
	for i := range manyItems {
		manyItems[i] = map[string]any{"name": fmt.Sprint(i), "value": i}
	}
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	inputs := []map[string]any{
		{"name": huge, "value": 1},
		{"name": "v", "value": huge},
		{"name": "v", "value": map[string]any{"k": huge}, "encrypt": true},
		{"name": "v", "value": 1, "expiration": "99999999999999999999999"},
		{"name": "v", "value": 1, "expiration": json.Number("1e400")},
		{"name": "v", "value": 1, "expiration": json.Number("9223372036854775807")},
		{"name": "v", "value": 1, "expiration": -9223372036854775807},
		{"name": "v", "value": json.RawMessage(deep)},
		{"name": "\x00\uffff\U0010FFFF", "value": 1},
		{"data": manyItems},
		{"data": []any{map[string]any{"name": "v", "value": 1, "expiration": json.Number("1e400"), "encrypt": nil}}},
		{"data": []any{map[string]any{"name": []any{}, "value": 1}}},
		{"data": []any{map[string]any{"name": "v", "value": 1, "expiration": 9223372036854775807}}},
		{"data": []any{nil, 1, "x", []any{}, map[string]any{}}},
		{"data": []any{json.RawMessage(deep)}},
		{"data": "v", "decrypt": "x"},
		{"data": map[string]any{"name": "v"}, "decrypt": 0},
		{"data": true},
	}
	bodies := make([]string, len(inputs))
	for i, input := range inputs {
		for k, v := range caller {
			input[k] = v
		}
		bodies[i] = jsonOf(input)
	}
	return bodies
}

// TestValuesTheDatabaseCannotHold checks that input a column cannot hold (a date whose UTC year
// is outside 1-9999, a name longer than its column) is refused with E008002, not a 500, and that
// nothing changes.
func TestValuesTheDatabaseCannotHold(t *testing.T) {
	admin := newUser(t, true, nil)
	target := newUser(t, false, nil)
	tests := []struct {
		key   string
		value any
	}{
		{"password_expiry", "0000-01-01"},
		{"password_expiry", "9999-12-31T23:59:59-01:00"},
		{"first_name", strings.Repeat("n", 192)},
		{"display_name", strings.Repeat("é", 192)},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			res := do(t, http.MethodPatch, pathUser, withCaller(admin, map[string]any{"user_id": target.id, tt.key: tt.value}))
			wantError(t, res, http.StatusForbidden, attrcache.CodeInvalidInput)
			got := do(t, http.MethodGet, pathUser, withCaller(admin, map[string]any{"user_id": target.id}))
			wantOK(t, got)
			if v := got.body[tt.key]; v == tt.value {
				t.Errorf("%s was stored as %v", tt.key, v)
			}
		})
	}
}
