package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/sso"
)

const pathExport = "/zato/sso/user/export"

// exportBody is an export answer: its user, sessions, attrs and session_attrs.
type exportBody struct {
	User         map[string]any                       `json:"user"`
	Sessions     []map[string]any                     `json:"sessions"`
	Attrs        map[string]map[string]any            `json:"attrs"`
	SessionAttrs map[string]map[string]map[string]any `json:"session_attrs"`
}

func decodeExport(t *testing.T, res *response) exportBody {
	t.Helper()
	wantOK(t, res)
	var e exportBody
	if err := json.Unmarshal(res.raw, &e); err != nil {
		t.Fatalf("export answer is not JSON: %v\n%s", err, res.raw)
	}
	if got, want := keysOf(res.body), withEnvelope("user sessions attrs session_attrs"); got != want {
		t.Fatalf("export keys = %s, want %s", got, want)
	}
	return e
}

// TestExportEqualsReadsOneByOne: the export of a user with plain, encrypted, expiring and
// session attributes holds the user as GET user shows them, the session list, and each
// attribute as a single GET shows it, with its version.
func TestExportEqualsReadsOneByOne(t *testing.T) {
	u := newUser(t, false, func(in *sso.CreateUserInput) { email := "u@example.com"; in.Email = &email })
	second := login(t, u) // a second session, with attributes of its own
	set := func(path string, input map[string]any) {
		t.Helper()
		wantOK(t, do(t, http.MethodPut, path, withCaller(u, input)))
	}
	set(pathUserAttr, map[string]any{"name": "plain", "value": map[string]any{"a": 1, "b": []any{"x"}}})
	set(pathUserAttr, map[string]any{"name": "secret", "value": "s3cret", "encrypt": true})
	set(pathUserAttr, map[string]any{"name": "soon", "value": 42, "expiration": 3600})
	set(pathUserAttr, map[string]any{"name": "plain", "value": "rewritten"}) // version 2
	set(pathSessionAttr, map[string]any{"target_ust": second, "name": "cart", "value": []any{1, 2}})
	set(pathSessionAttr, map[string]any{"target_ust": second, "name": "token", "value": "t", "encrypt": true})
	set(pathSessionAttr, map[string]any{"target_ust": u.ust, "name": "first", "value": true})

	raw := do(t, http.MethodGet, pathExport, withCaller(u, nil))
	t.Logf("%s", raw.raw)
	e := decodeExport(t, raw)

	user := do(t, http.MethodGet, pathUser, withCaller(u, nil))
	wantOK(t, user)
	for _, k := range []string{"cid", "status", "sub_status"} {
		delete(user.body, k)
	}
	if got, want := jsonOf(e.User), jsonOf(user.body); got != want {
		t.Errorf("export user = %s\nwant (GET user) %s", got, want)
	}

	list := do(t, http.MethodGet, "/zato/sso/user/session/list", withCaller(u, nil))
	wantOK(t, list)
	var gotSessions []string
	refs := map[string]bool{}
	for _, s := range e.Sessions {
		ref, _ := s["session_ref"].(string)
		refs[ref] = true
		delete(s, "session_ref")
		gotSessions = append(gotSessions, jsonOf(s))
	}
	var wantSessions []string
	for _, s := range list.body["result"].([]any) {
		wantSessions = append(wantSessions, jsonOf(s))
	}
	slices.Sort(gotSessions)
	slices.Sort(wantSessions)
	if !slices.Equal(gotSessions, wantSessions) || len(refs) != len(e.Sessions) {
		t.Errorf("export sessions = %v (refs %v)\nwant (session list) %v", gotSessions, refs, wantSessions)
	}
	if strings.Contains(jsonOf(e), u.ust) || strings.Contains(jsonOf(e), second) {
		t.Errorf("the export holds a UST")
	}

	// Each attribute as a single GET shows it, plus its version as the Go API reads it.
	want := func(path, owner string, names ...string) map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		for _, name := range names {
			input := map[string]any{"name": name}
			var x *sso.AttrAPI
			var err error
			if owner == "" {
				x, err = api.UserAttrs(context.Background(), "", "", u.ust, app, "")
			} else {
				input["target_ust"] = owner
				x, err = api.SessionAttrs(context.Background(), "", owner, u.ust, app, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			res := do(t, http.MethodGet, path, withCaller(u, input))
			wantOK(t, res)
			for _, k := range []string{"cid", "status", "sub_status", "found"} {
				delete(res.body, k)
			}
			v, err := x.Get(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			res.body["version"] = float64(v.Version)
			out[name] = res.body
		}
		return out
	}
	if got, want := jsonOf(e.Attrs), jsonOf(want(pathUserAttr, "", "plain", "secret", "soon")); got != want {
		t.Errorf("export attrs = %s\nwant (GET one by one) %s", got, want)
	}
	wantSession := map[string]string{
		jsonOf(want(pathSessionAttr, second, "cart", "token")): "second",
		jsonOf(want(pathSessionAttr, u.ust, "first")):          "first",
	}
	if len(e.SessionAttrs) != 2 {
		t.Fatalf("session_attrs has %d sessions, want 2: %v", len(e.SessionAttrs), e.SessionAttrs)
	}
	for ref, attrs := range e.SessionAttrs {
		if !refs[ref] {
			t.Errorf("session_attrs names %q, which no session has", ref)
		}
		if _, ok := wantSession[jsonOf(attrs)]; !ok {
			t.Errorf("session_attrs[%s] = %s, want one of %v", ref, jsonOf(attrs), slices.Collect(maps.Keys(wantSession)))
		}
	}
}

// TestExportWho: a regular user exports their own data alone (E005001 for another's); a
// super-user anyone's, with every field.
func TestExportWho(t *testing.T) {
	u := newUser(t, false, nil)
	other := newUser(t, false, nil)
	for _, tc := range []struct {
		name   string
		caller testUser
		userID any
		status int
		code   string
	}{
		{"regular user, own data", u, nil, http.StatusOK, ""},
		{"regular user, own user_id", u, u.id, http.StatusOK, ""},
		{"regular user, another user", u, other.id, http.StatusForbidden, attrcache.CodeNotAllowed},
		{"super-user, another user", admin, other.id, http.StatusOK, ""},
		{"super-user, unknown user", admin, attrcache.NewUserID(), http.StatusForbidden, attrcache.CodeNotAllowed},
		{"super-user, malformed user_id", admin, strings.ToUpper(other.id), http.StatusForbidden, attrcache.CodeNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := map[string]any{}
			if tc.userID != nil {
				input["user_id"] = tc.userID
			}
			res := do(t, http.MethodGet, pathExport, withCaller(tc.caller, input))
			if tc.status != http.StatusOK {
				wantError(t, res, tc.status, tc.code)
				return
			}
			e := decodeExport(t, res)
			_, full := e.User["user_id"]
			if full != (tc.caller == admin) {
				t.Errorf("user_id shown = %v, want it only to a super-user: %v", full, e.User)
			}
		})
	}
}

// TestReadWithKeyNotConfigured: a value sealed with a key id the service lacks answers 503
// E008004 naming the key id, on GET and on export, never a 500 or E008002.
func TestReadWithKeyNotConfigured(t *testing.T) {
	u := newUser(t, false, nil)
	newer, err := attrcache.ParseSecretKeys("k7:" + attrcache.GenerateKey() + ",k1:" + testKeyB64)
	if err != nil {
		t.Fatal(err)
	}
	x, err := apiWithKeys(newer).UserAttrs(context.Background(), "", "", u.ust, app, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Set(context.Background(), "sealed-k7", "v", sso.Encrypt(true)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		method, path string
		input        map[string]any
	}{
		{"get", http.MethodGet, pathUserAttr, map[string]any{"name": "sealed-k7"}},
		{"get many", http.MethodGet, pathUserAttr, map[string]any{"data": []string{"sealed-k7"}}},
		{"export", http.MethodGet, pathExport, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, tc.method, tc.path, withCaller(u, tc.input))
			wantError(t, res, http.StatusServiceUnavailable, attrcache.CodeInternalError)
			if msg, _ := res.body["message"].(string); !strings.Contains(msg, `"k7"`) || !strings.Contains(msg, "not configured") {
				t.Errorf("message = %q, want it to name key id k7 as not configured", msg)
			}
		})
	}
	// With decrypt false the ciphertext is returned as it is: nothing needs the key.
	wantOK(t, do(t, http.MethodGet, pathUserAttr, withCaller(u, map[string]any{"name": "sealed-k7", "decrypt": false})))
}

// TestWriteExportWithoutEnvelope: WriteExport, which the CLI prints, is the export answer
// without cid, status and sub_status.
func TestWriteExportWithoutEnvelope(t *testing.T) {
	u := newUser(t, false, nil)
	wantOK(t, do(t, http.MethodPut, pathUserAttr, withCaller(u, map[string]any{"name": "a", "value": 1})))
	e, err := api.ExportUser(context.Background(), "", "", u.ust, app, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := httpapi.WriteExport(context.Background(), &b, e); err != nil {
		t.Fatal(err)
	}
	res := do(t, http.MethodGet, pathExport, withCaller(u, nil))
	wantOK(t, res)
	var got map[string]any
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("WriteExport wrote %s: %v", b.String(), err)
	}
	for _, k := range []string{"cid", "status", "sub_status"} {
		delete(res.body, k)
	}
	if jsonOf(got) != jsonOf(res.body) {
		t.Errorf("WriteExport = %s\nwant the answer without its envelope %s", jsonOf(got), jsonOf(res.body))
	}
}
