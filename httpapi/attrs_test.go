package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/sso"
)

const (
	pathUserAttr    = "/zato/sso/user/attr"
	pathSessionAttr = "/zato/sso/session/attr"
	suffixExists    = "/exists"
	suffixNames     = "/names"
)

const neverExpires = "9999-12-31T00:00:00"

// attrTarget is whose attributes a test uses and as whom: the base path of their scope, the
// caller, and the input that names the owner (user_id or target_ust; nil for the caller's own
// user attributes).
type attrTarget struct {
	name   string
	base   string
	caller testUser
	owner  map[string]any
}

// userAttrs is the caller's own user attributes.
func userAttrs(caller testUser) attrTarget {
	return attrTarget{name: "user", base: pathUserAttr, caller: caller}
}

// sessionAttrs is the attributes of the session of targetUST, used by caller.
func sessionAttrs(caller testUser, targetUST string) attrTarget {
	return attrTarget{name: "session", base: pathSessionAttr, caller: caller, owner: map[string]any{"target_ust": targetUST}}
}

// bothScopes returns a fresh regular user's own user attributes and the attributes of their
// session, each used by that user.
func bothScopes(t *testing.T) []attrTarget {
	t.Helper()
	u := newUser(t, false, nil)
	return []attrTarget{userAttrs(u), sessionAttrs(u, u.ust)}
}

// input returns the caller's UST and current_app, the owner's key and the given keys.
func (a attrTarget) input(keys map[string]any) map[string]any {
	in := withCaller(a.caller, a.owner)
	for k, v := range keys {
		in[k] = v
	}
	return in
}

// call sends keys, with the caller and the owner, to the target's base path plus suffix.
func (a attrTarget) call(t *testing.T, method, suffix string, keys map[string]any) *response {
	t.Helper()
	return do(t, method, a.base+suffix, a.input(keys))
}

// get returns GET of the named attribute, which must succeed.
func (a attrTarget) get(t *testing.T, name string) map[string]any {
	t.Helper()
	res := a.call(t, http.MethodGet, "", map[string]any{"name": name})
	wantOK(t, res)
	return res.body
}

// wantNotFound fails the test unless the named attribute is not found.
func (a attrTarget) wantNotFound(t *testing.T, name string) {
	t.Helper()
	if got := a.get(t, name); got["found"] != false {
		t.Fatalf("GET %s: got %v, want found false: nothing was to be written", name, got)
	}
}

// put sets the attributes, which must succeed.
func (a attrTarget) put(t *testing.T, keys map[string]any) {
	t.Helper()
	wantOK(t, a.call(t, http.MethodPut, "", keys))
}

// item is one item of a many-form write.
func item(name string, value any) map[string]any {
	return map[string]any{"name": name, "value": value}
}

// wantJSON fails the test unless got and want encode to the same JSON.
func wantJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := jsonOf(got), jsonOf(want); g != w {
		t.Fatalf("%s = %s, want %s", what, g, w)
	}
}

// withoutStamps returns a decoded JSON value without its creation_time, last_modified and version
// keys, at any depth, so that it can be compared whole.
func withoutStamps(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, value := range v {
			if key != "creation_time" && key != "last_modified" && key != "version" {
				out[key] = withoutStamps(value)
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, value := range v {
			out[i] = withoutStamps(value)
		}
		return out
	}
	return v
}

// wantAttr is an attribute as GET shows it, without its creation_time and last_modified.
func wantAttr(name string, value any) map[string]any {
	return map[string]any{"name": name, "value": value, "expiration_time": neverExpires, "is_encrypted": false}
}

// TestAttrVerbs runs every verb, single and many, on user and session attributes, each step
// seeing what the steps before it did.
func TestAttrVerbs(t *testing.T) {
	const attrKeys = "creation_time expiration_time found is_encrypted last_modified name value version"
	steps := []struct {
		name     string
		method   string
		suffix   string
		input    map[string]any
		wantCode string         // "" for ok
		want     map[string]any // keys of the answer, compared without creation_time and last_modified
	}{
		{"set", http.MethodPut, "", map[string]any{"name": "color", "value": "red"}, "", nil},
		{"get", http.MethodGet, "", map[string]any{"name": "color"}, "",
			map[string]any{"found": true, "name": "color", "value": "red", "expiration_time": neverExpires, "is_encrypted": false}},
		{"set again replaces", http.MethodPut, "", map[string]any{"name": "color", "value": []any{"blue"}}, "", nil},
		{"get replaced", http.MethodGet, "", map[string]any{"name": "color"}, "", map[string]any{"found": true, "value": []any{"blue"}}},
		{"create existing", http.MethodPost, "", map[string]any{"name": "color", "value": 1}, attrcache.CodeAttrExists, nil},
		{"create", http.MethodPost, "", map[string]any{"name": "size", "value": 42}, "", nil},
		{"update", http.MethodPatch, "", map[string]any{"name": "size", "value": 43}, "", nil},
		{"get updated", http.MethodGet, "", map[string]any{"name": "size"}, "", map[string]any{"found": true, "value": 43}},
		{"update missing is silent", http.MethodPatch, "", map[string]any{"name": "ghost", "value": 1}, "", nil},
		{"update did not create", http.MethodGet, "", map[string]any{"name": "ghost"}, "", map[string]any{"found": false}},
		{"exists", http.MethodGet, suffixExists, map[string]any{"name": "size"}, "", map[string]any{"result": true}},
		{"exists missing", http.MethodGet, suffixExists, map[string]any{"name": "ghost"}, "", map[string]any{"result": false}},
		{"names", http.MethodGet, suffixNames, nil, "", map[string]any{"result": []any{"color", "size"}}},
		{"delete", http.MethodDelete, "", map[string]any{"name": "size"}, "", nil},
		{"deleted", http.MethodGet, "", map[string]any{"name": "size"}, "", map[string]any{"found": false}},
		{"delete missing is silent", http.MethodDelete, "", map[string]any{"name": "size"}, "", nil},

		{"set many", http.MethodPut, "", map[string]any{"data": []any{item("b", 1), item("a", map[string]any{"k": "v"})}}, "", nil},
		{"get many", http.MethodGet, "", map[string]any{"data": []any{"a", "b", "ghost"}}, "",
			map[string]any{"result": map[string]any{"a": wantAttr("a", map[string]any{"k": "v"}), "b": wantAttr("b", 1), "ghost": nil}}},
		{"get many, names as objects", http.MethodGet, "", map[string]any{"data": []any{map[string]any{"name": "b"}}}, "",
			map[string]any{"result": map[string]any{"b": wantAttr("b", 1)}}},
		{"get, data a bare name is the single form", http.MethodGet, "", map[string]any{"data": "b"}, "",
			map[string]any{"found": true, "value": 1}},
		{"name wins over data", http.MethodGet, "", map[string]any{"name": "a", "data": []any{"b"}}, "",
			map[string]any{"found": true, "name": "a"}},
		{"update many", http.MethodPatch, "", map[string]any{"data": []any{item("a", "A"), item("ghost", 0)}}, "", nil},
		{"create many with one existing", http.MethodPost, "", map[string]any{"data": []any{item("c", 1), item("a", 1)}}, attrcache.CodeAttrExists, nil},
		{"create many", http.MethodPost, "", map[string]any{"data": []any{item("c", 3), item("d", 4)}}, "", nil},
		{"exists many", http.MethodGet, suffixExists, map[string]any{"data": []any{"a", "c", "ghost"}}, "",
			map[string]any{"result": map[string]any{"a": true, "c": true, "ghost": false}}},
		{"exists, data a bare name", http.MethodGet, suffixExists, map[string]any{"data": "c"}, "", map[string]any{"result": true}},
		{"names after many", http.MethodGet, suffixNames, nil, "", map[string]any{"result": []any{"a", "b", "c", "color", "d"}}},
		{"get many after update and create", http.MethodGet, "", map[string]any{"data": []any{"a", "c", "ghost"}}, "",
			map[string]any{"result": map[string]any{"a": wantAttr("a", "A"), "c": wantAttr("c", 3), "ghost": nil}}},
		{"delete many", http.MethodDelete, "", map[string]any{"data": []any{"a", map[string]any{"name": "b"}, "ghost"}}, "", nil},
		{"delete, data a bare name", http.MethodDelete, "", map[string]any{"data": "c"}, "", nil},
		{"names after delete", http.MethodGet, suffixNames, nil, "", map[string]any{"result": []any{"color", "d"}}},
	}
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			for _, step := range steps {
				t.Run(step.name, func(t *testing.T) {
					res := target.call(t, step.method, step.suffix, step.input)
					if step.wantCode != "" {
						wantError(t, res, http.StatusForbidden, step.wantCode)
						return
					}
					wantOK(t, res)
					if step.want == nil {
						written := map[string]string{http.MethodDelete: "", http.MethodPatch: "version"}[step.method]
						if _, many := step.input["data"]; many && step.method != http.MethodDelete {
							written = "versions"
						} else if step.method == http.MethodPut || step.method == http.MethodPost {
							written = "version"
						}
						if step.name == "update missing is silent" {
							written = ""
						}
						if got, want := keysOf(res.body), withEnvelope(written); got != want {
							t.Fatalf("keys = %s, want %s", got, want)
						}
					}
					if step.want["found"] == true {
						if got, want := keysOf(res.body), withEnvelope(attrKeys); got != want {
							t.Fatalf("keys = %s, want %s", got, want)
						}
					}
					for key, want := range step.want {
						wantJSON(t, key, withoutStamps(res.body[key]), want)
					}
				})
			}
		})
	}
}

// TestAttrTimes checks creation_time and last_modified: equal for a new attribute, and an
// update moves last_modified alone.
func TestAttrTimes(t *testing.T) {
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			target.put(t, map[string]any{"name": "t", "value": 1})
			created := target.get(t, "t")
			if created["creation_time"] != created["last_modified"] {
				t.Fatalf("new attribute: creation_time %v, last_modified %v, want them equal", created["creation_time"], created["last_modified"])
			}
			wantOK(t, target.call(t, http.MethodPatch, "", map[string]any{"name": "t", "value": 2}))
			updated := target.get(t, "t")
			if updated["creation_time"] != created["creation_time"] {
				t.Fatalf("update moved creation_time from %v to %v", created["creation_time"], updated["creation_time"])
			}
			if !parseTime(t, updated["last_modified"]).After(parseTime(t, created["last_modified"])) {
				t.Fatalf("update: last_modified %v is not after %v", updated["last_modified"], created["last_modified"])
			}
		})
	}
}

// TestAttrValueKeptAsSent checks that a value comes back as the JSON it was sent as: numbers of
// any size and precision, objects with their key order, and every JSON type.
func TestAttrValueKeptAsSent(t *testing.T) {
	target := userAttrs(newUser(t, false, nil))
	for i, value := range []string{
		`12345678901234567890123456789`,
		`1.10`,
		`-0.5e-300`,
		`{"z":1,"a":{"y":[true,false,null],"b":""}}`,
		`"naïve ☃ \u0000"`,
		`""`,
		`null`,
		`[]`,
		`{}`,
	} {
		t.Run(value, func(t *testing.T) {
			name := fmt.Sprintf("v%d", i)
			body := fmt.Sprintf(`{"ust": %q, "current_app": %q, "name": %q, "value": %s}`, target.caller.ust, app, name, value)
			wantOK(t, serve(handler, call{method: http.MethodPut, path: pathUserAttr, body: body}))
			res := target.call(t, http.MethodGet, "", map[string]any{"name": name})
			var got struct{ Value json.RawMessage }
			if err := json.Unmarshal(res.raw, &got); err != nil {
				t.Fatalf("GET: %v in %s", err, res.raw)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(value)); err != nil {
				t.Fatal(err)
			}
			if string(got.Value) != want.String() {
				t.Fatalf("value = %s, want %s", got.Value, want.String())
			}
		})
	}
}

func TestAttrPermissions(t *testing.T) {
	owner := newUser(t, false, nil)
	other := newUser(t, false, nil)
	superUser := newUser(t, true, nil)
	unknownID := attrcache.NewUserID()
	tests := []struct {
		name     string
		path     string
		input    map[string]any // sent with name and value
		wantCode string         // "" for ok
		// wantIn is the attributes where a successful write must be seen (by their owner).
		wantIn attrTarget
	}{
		{"regular user, own, no user_id", pathUserAttr, withCaller(owner, nil), "", userAttrs(owner)},
		{"regular user, own user_id", pathUserAttr, withCaller(owner, map[string]any{"user_id": owner.id}), "", userAttrs(owner)},
		{"regular user, empty user_id is their own", pathUserAttr, withCaller(owner, map[string]any{"user_id": ""}), "", userAttrs(owner)},
		{"regular user, another user's", pathUserAttr, withCaller(other, map[string]any{"user_id": owner.id}), attrcache.CodeNotAllowed, attrTarget{}},
		{"regular user, unknown user_id", pathUserAttr, withCaller(owner, map[string]any{"user_id": unknownID}), attrcache.CodeNotAllowed, attrTarget{}},
		{"super-user, a regular user's", pathUserAttr, withCaller(superUser, map[string]any{"user_id": owner.id}), "", userAttrs(owner)},
		{"super-user, own", pathUserAttr, withCaller(superUser, nil), "", userAttrs(superUser)},
		{"super-user, unknown user_id", pathUserAttr, withCaller(superUser, map[string]any{"user_id": unknownID}), attrcache.CodeNotAllowed, attrTarget{}},
		{"session, its owner", pathSessionAttr, withCaller(owner, map[string]any{"target_ust": owner.ust}), "", sessionAttrs(owner, owner.ust)},
		{"session, current_ust alias", pathSessionAttr, map[string]any{"current_ust": owner.ust, "current_app": app, "target_ust": owner.ust}, "", sessionAttrs(owner, owner.ust)},
		{"session, user_id ignored", pathSessionAttr, withCaller(owner, map[string]any{"target_ust": owner.ust, "user_id": unknownID}), "", sessionAttrs(owner, owner.ust)},
		{"session, super-user", pathSessionAttr, withCaller(superUser, map[string]any{"target_ust": owner.ust}), "", sessionAttrs(owner, owner.ust)},
		{"session, another regular user", pathSessionAttr, withCaller(other, map[string]any{"target_ust": owner.ust}), attrcache.CodeNotAllowed, attrTarget{}},
		{"session, garbage target_ust", pathSessionAttr, withCaller(superUser, map[string]any{"target_ust": "garbage"}), attrcache.CodeNoSuchSession, attrTarget{}},
		{"session, target_ust missing", pathSessionAttr, withCaller(superUser, nil), attrcache.CodeNoSuchSession, attrTarget{}},
		{"user, garbage ust", pathUserAttr, map[string]any{"ust": "garbage", "current_app": app}, attrcache.CodeNoSuchSession, attrTarget{}},
		{"session, garbage current_ust", pathSessionAttr, map[string]any{"current_ust": "garbage", "current_app": app, "target_ust": owner.ust}, attrcache.CodeNoSuchSession, attrTarget{}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("perm%d", i)
			input := map[string]any{"name": name, "value": i}
			for k, v := range tt.input {
				input[k] = v
			}
			res := do(t, http.MethodPut, tt.path, input)
			if tt.wantCode != "" {
				wantError(t, res, http.StatusForbidden, tt.wantCode)
				for _, target := range []attrTarget{userAttrs(owner), sessionAttrs(owner, owner.ust)} {
					target.wantNotFound(t, name)
				}
				return
			}
			wantOK(t, res)
			if got := tt.wantIn.get(t, name); got["found"] != true {
				t.Fatalf("the owner's GET %s: %v, want it found", name, got)
			}
			input["name"] = name
			read := do(t, http.MethodGet, tt.path+suffixExists, input)
			wantOK(t, read)
			if read.body["result"] != true {
				t.Fatalf("exists through the same caller: %s, want true", read.raw)
			}
		})
	}
}

// TestAttrCaller checks the errors of the caller's own inputs on every attribute route; they
// come before any about name, value or data.
func TestAttrCaller(t *testing.T) {
	u := newUser(t, false, nil)
	routes := []struct{ method, path string }{
		{http.MethodPut, pathUserAttr}, {http.MethodPost, pathUserAttr}, {http.MethodPatch, pathUserAttr},
		{http.MethodDelete, pathUserAttr}, {http.MethodGet, pathUserAttr},
		{http.MethodGet, pathUserAttr + suffixExists}, {http.MethodGet, pathUserAttr + suffixNames},
		{http.MethodPut, pathSessionAttr}, {http.MethodPost, pathSessionAttr}, {http.MethodPatch, pathSessionAttr},
		{http.MethodDelete, pathSessionAttr}, {http.MethodGet, pathSessionAttr},
		{http.MethodGet, pathSessionAttr + suffixExists}, {http.MethodGet, pathSessionAttr + suffixNames},
	}
	tests := []struct {
		name       string
		input      map[string]any
		wantStatus int
		wantCode   string
	}{
		{"unknown app", map[string]any{"ust": u.ust, "current_app": "NoSuchApp"}, http.StatusOK, attrcache.CodeAppInvalid},
		{"current_app missing", map[string]any{"ust": u.ust}, http.StatusBadRequest, attrcache.CodeMissingInput},
		{"ust missing", map[string]any{"current_app": app}, http.StatusBadRequest, attrcache.CodeMissingInput},
		{"ust not a string", map[string]any{"ust": 1, "current_app": app}, http.StatusBadRequest, attrcache.CodeInvalidInput},
		{"garbage ust", map[string]any{"ust": "garbage", "current_app": app}, http.StatusForbidden, attrcache.CodeNoSuchSession},
	}
	shapes := map[string]map[string]any{
		"valid":        {"name": "n", "value": 1},
		"name missing": {"value": 1},
		"data a map":   {"data": map[string]any{}},
	}
	for _, route := range routes {
		for _, tt := range tests {
			for shapeName, shape := range shapes {
				t.Run(route.method+" "+route.path+" "+tt.name+", "+shapeName, func(t *testing.T) {
					input := map[string]any{"target_ust": u.ust}
					for _, keys := range []map[string]any{shape, tt.input} {
						for k, v := range keys {
							input[k] = v
						}
					}
					wantError(t, do(t, route.method, route.path, input), tt.wantStatus, tt.wantCode)
				})
			}
		}
	}
}

// TestAttrInputShapes checks every refusal of name, value and data: a 403 E008002 naming the
// problem, and nothing written.
func TestAttrInputShapes(t *testing.T) {
	objectWithoutName := map[string]any{"value": 1}
	tests := []struct {
		name        string
		method      string
		suffix      string
		input       map[string]any
		wantMessage string
	}{
		{"set, neither name nor data", http.MethodPut, "", map[string]any{"value": 1}, "name or data is required"},
		{"create, neither", http.MethodPost, "", nil, "name or data is required"},
		{"update, data null", http.MethodPatch, "", map[string]any{"data": nil}, "name or data is required"},
		{"get, neither", http.MethodGet, "", nil, "name or data is required"},
		{"exists, neither", http.MethodGet, suffixExists, nil, "name or data is required"},
		{"delete, neither", http.MethodDelete, "", nil, "name or data is required"},
		{"set without value", http.MethodPut, "", map[string]any{"name": "shape0"}, "value is required"},
		{"create without value", http.MethodPost, "", map[string]any{"name": "shape0"}, "value is required"},
		{"update without value", http.MethodPatch, "", map[string]any{"name": "shape0"}, "value is required"},
		{"set, name null", http.MethodPut, "", map[string]any{"name": nil, "value": 1}, "attribute name"},
		{"set, name empty", http.MethodPut, "", map[string]any{"name": "", "value": 1}, "attribute name"},
		{"set, data an empty list", http.MethodPut, "", map[string]any{"data": []any{}}, "no attribute given"},
		{"set, data an object", http.MethodPut, "", map[string]any{"data": item("shape0", 1)}, "data must be a list"},
		{"set, data a string", http.MethodPut, "", map[string]any{"data": "shape0"}, "data must be a list"},
		{"set, data a number", http.MethodPut, "", map[string]any{"data": 1}, "data must be a list"},
		{"set, item a string", http.MethodPut, "", map[string]any{"data": []any{item("shape0", 1), "shape1"}}, "data[1] must be an object"},
		{"set, item null", http.MethodPut, "", map[string]any{"data": []any{nil}}, "data[0] must be an object"},
		{"set, item without name", http.MethodPut, "", map[string]any{"data": []any{item("shape0", 1), objectWithoutName}}, "data[1]: name is required"},
		{"create, item without value", http.MethodPost, "", map[string]any{"data": []any{item("shape0", 1), map[string]any{"name": "shape1"}}}, "data[1]: value is required"},
		{"update, item name a number", http.MethodPatch, "", map[string]any{"data": []any{item("shape0", 1), item("x", 1), map[string]any{"name": 7, "value": 1}}}, "data[2].name: want a string"},
		{"set, item expiration not an integer", http.MethodPut, "", map[string]any{"data": []any{item("shape0", 1), map[string]any{"name": "shape1", "value": 1, "expiration": 1.5}}}, "data[1].expiration: want an integer"},
		{"set, item expiration a string", http.MethodPut, "", map[string]any{"data": []any{map[string]any{"name": "shape1", "value": 1, "expiration": "60"}}}, "data[0].expiration: want an integer"},
		{"set, item encrypt not a boolean", http.MethodPut, "", map[string]any{"data": []any{item("shape0", 1), map[string]any{"name": "shape1", "value": 1, "encrypt": "yes"}}}, "data[1].encrypt: want a boolean"},
		{"set, negative expiration", http.MethodPut, "", map[string]any{"name": "shape0", "value": 1, "expiration": -1}, "expiration must not be negative"},
		{"set, item negative expiration", http.MethodPut, "", map[string]any{"data": []any{item("shape0", 1), map[string]any{"name": "shape1", "value": 1, "expiration": -5}}}, "expiration must not be negative"},
		{"get, data an object", http.MethodGet, "", map[string]any{"data": map[string]any{"name": "shape0"}}, "data must be a name or a list of names"},
		{"get, data a number", http.MethodGet, "", map[string]any{"data": 5}, "data must be a name or a list of names"},
		{"get, data an empty list", http.MethodGet, "", map[string]any{"data": []any{}}, "no attribute given"},
		{"get, item a number", http.MethodGet, "", map[string]any{"data": []any{"shape0", 5}}, "data[1] must be a name or an object with a name"},
		{"exists, item an object without name", http.MethodGet, suffixExists, map[string]any{"data": []any{objectWithoutName}}, "data[0] must be a name"},
		{"delete, item a list", http.MethodDelete, "", map[string]any{"data": []any{[]any{"shape0"}}}, "data[0] must be a name"},
	}
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res := target.call(t, tt.method, tt.suffix, tt.input)
					wantError(t, res, http.StatusForbidden, attrcache.CodeInvalidInput)
					if msg, _ := res.body["message"].(string); !strings.Contains(msg, tt.wantMessage) {
						t.Fatalf("message = %q, want it to hold %q", msg, tt.wantMessage)
					}
					target.wantNotFound(t, "shape0")
					target.wantNotFound(t, "shape1")
				})
			}
		})
	}
}

// TestAttrWrongTypes checks that typed keys of the wrong JSON type answer 400 E008002 naming the
// key, and write nothing.
func TestAttrWrongTypes(t *testing.T) {
	tests := []struct {
		method, suffix, key string
		value               any
	}{
		{http.MethodPut, "", "expiration", "soon"},
		{http.MethodPut, "", "expiration", 1.5},
		{http.MethodPost, "", "expiration", []any{60}},
		{http.MethodPatch, "", "encrypt", "maybe"},
		{http.MethodPut, "", "encrypt", 1},
		{http.MethodPut, "", "name", 5},
		{http.MethodGet, "", "name", true},
		{http.MethodGet, "", "decrypt", "maybe"},
		{http.MethodGet, "", "decrypt", []any{}},
		{http.MethodGet, suffixExists, "name", map[string]any{}},
		{http.MethodDelete, "", "name", 1},
	}
	u := newUser(t, false, nil)
	for _, target := range []attrTarget{userAttrs(u), sessionAttrs(u, u.ust)} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %s %s %s %v", target.name, tt.method, tt.suffix, tt.key, tt.value), func(t *testing.T) {
				input := map[string]any{"name": "typed", "value": 1}
				input[tt.key] = tt.value
				res := target.call(t, tt.method, tt.suffix, input)
				wantError(t, res, http.StatusBadRequest, attrcache.CodeInvalidInput)
				if msg, _ := res.body["message"].(string); !strings.Contains(msg, tt.key) {
					t.Fatalf("message = %q, want it to name %s", msg, tt.key)
				}
				target.wantNotFound(t, "typed")
			})
		}
	}
	t.Run("owner keys", func(t *testing.T) {
		wantError(t, do(t, http.MethodGet, pathUserAttr, withCaller(u, map[string]any{"name": "n", "user_id": 1})), http.StatusBadRequest, attrcache.CodeInvalidInput)
		wantError(t, do(t, http.MethodGet, pathSessionAttr, withCaller(u, map[string]any{"name": "n", "target_ust": 1})), http.StatusBadRequest, attrcache.CodeInvalidInput)
	})
}

// TestAttrLimits checks that a write over a limit is refused with 403 E008002 and writes
// nothing, many-form writes included, and that a read over a limit is refused too.
func TestAttrLimits(t *testing.T) {
	maxName := strings.Repeat("n", attrcache.MaxAttrNameBytes)
	longName := maxName + "n"
	// A JSON string exactly at the value limit, and one byte over it.
	maxValue := strings.Repeat("v", attrcache.DefaultMaxValueBytes-2)
	bigValue := maxValue + "v"
	tooMany := make([]any, attrcache.MaxAttrItems+1)
	for i := range tooMany {
		tooMany[i] = item(fmt.Sprintf("limit-many-%d", i), i)
	}
	tooManyNames := make([]any, attrcache.MaxAttrItems+1)
	for i := range tooManyNames {
		tooManyNames[i] = fmt.Sprintf("limit-many-%d", i)
	}

	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			t.Run("at the limits", func(t *testing.T) {
				target.put(t, map[string]any{"data": []any{item(maxName, maxValue)}})
				wantJSON(t, "value", target.get(t, maxName)["value"], maxValue)
			})
			// wantOnlyMaxName fails the test unless the attribute written at the limits is the
			// only one: a refused write wrote nothing.
			wantOnlyMaxName := func(t *testing.T) {
				t.Helper()
				res := target.call(t, http.MethodGet, suffixNames, nil)
				wantOK(t, res)
				wantJSON(t, "names", res.body["result"], []any{maxName})
			}
			refused := []struct {
				name   string
				method string
				input  map[string]any
			}{
				{"name too long", http.MethodPut, map[string]any{"name": longName, "value": 1}},
				{"name with a control character", http.MethodPost, map[string]any{"name": "bad\x01name", "value": 1}},
				{"name with DEL", http.MethodPut, map[string]any{"name": "bad\x7fname", "value": 1}},
				{"name with a C1 control character", http.MethodPatch, map[string]any{"name": "bad\u0085name", "value": 1}},
				{"value too large", http.MethodPut, map[string]any{"name": "limit-big", "value": bigValue}},
				{"value too large, encrypted", http.MethodPut, map[string]any{"name": "limit-big", "value": bigValue, "encrypt": true}},
				{"many, one name too long", http.MethodPut, map[string]any{"data": []any{item("limit-ok", 1), item(longName, 1)}}},
				{"many, one value too large", http.MethodPost, map[string]any{"data": []any{item("limit-ok", 1), item("limit-big", bigValue)}}},
				{"many, too many items", http.MethodPut, map[string]any{"data": tooMany}},
			}
			for _, tt := range refused {
				t.Run(tt.name, func(t *testing.T) {
					wantError(t, target.call(t, tt.method, "", tt.input), http.StatusForbidden, attrcache.CodeInvalidInput)
					wantOnlyMaxName(t)
				})
			}
			for _, tt := range []struct {
				name   string
				method string
				suffix string
				input  map[string]any
			}{
				{"get, name too long", http.MethodGet, "", map[string]any{"name": longName}},
				{"get, too many names", http.MethodGet, "", map[string]any{"data": tooManyNames}},
				{"exists, too many names", http.MethodGet, suffixExists, map[string]any{"data": tooManyNames}},
				{"delete, too many names", http.MethodDelete, "", map[string]any{"data": append([]any{maxName}, tooManyNames...)}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					wantError(t, target.call(t, tt.method, tt.suffix, tt.input), http.StatusForbidden, attrcache.CodeInvalidInput)
				})
			}
			t.Run("a refused delete deletes nothing", wantOnlyMaxName)
		})
	}
}

// clock is a time that a test moves forward by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestAttrExpiration checks expiration: counted in seconds from the request's arrival, kept by
// a write without one, per item in the many form, and an expired attribute invisible at once.
func TestAttrExpiration(t *testing.T) {
	wantExpiry := func(t *testing.T, got any, before, after time.Time, seconds int) {
		t.Helper()
		expires := parseTime(t, got)
		lo, hi := before.Add(time.Duration(seconds)*time.Second), after.Add(time.Duration(seconds)*time.Second)
		if expires.Before(lo) || expires.After(hi) {
			t.Fatalf("expiration_time %v, want arrival + %ds, within [%v, %v]", got, seconds, lo, hi)
		}
	}
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			// write sends a write and returns the bounds of its arrival.
			write := func(t *testing.T, method string, input map[string]any) (before, after time.Time) {
				t.Helper()
				before = attrcache.Now()
				wantOK(t, target.call(t, method, "", input))
				return before, attrcache.Now()
			}

			before, after := write(t, http.MethodPut, map[string]any{"name": "exp", "value": 1, "expiration": 3600})
			wantExpiry(t, target.get(t, "exp")["expiration_time"], before, after, 3600)
			first := target.get(t, "exp")["expiration_time"]

			write(t, http.MethodPatch, map[string]any{"name": "exp", "value": 2})
			write(t, http.MethodPut, map[string]any{"name": "exp", "value": 3, "expiration": 0})
			write(t, http.MethodPut, map[string]any{"name": "exp", "value": 4, "expiration": nil})
			got := target.get(t, "exp")
			if got["expiration_time"] != first || jsonOf(got["value"]) != "4" {
				t.Fatalf("after writes without expiration: %v, want value 4 and expiration_time %v kept", got, first)
			}

			before, after = write(t, http.MethodPatch, map[string]any{"name": "exp", "value": 5, "expiration": 60})
			wantExpiry(t, target.get(t, "exp")["expiration_time"], before, after, 60)

			before, after = write(t, http.MethodPut, map[string]any{"expiration": 120, "data": []any{
				item("exp-default", 1),
				map[string]any{"name": "exp-own", "value": 1, "expiration": 30},
				map[string]any{"name": "exp-null", "value": 1, "expiration": nil},
			}})
			wantExpiry(t, target.get(t, "exp-default")["expiration_time"], before, after, 120)
			wantExpiry(t, target.get(t, "exp-own")["expiration_time"], before, after, 30)
			wantExpiry(t, target.get(t, "exp-null")["expiration_time"], before, after, 120) // null takes the default

			before, after = write(t, http.MethodPut, map[string]any{"name": "exp-query", "value": 1, "expiration": "45"})
			wantExpiry(t, target.get(t, "exp-query")["expiration_time"], before, after, 45)
		})
	}

	t.Run("expired attributes are invisible", func(t *testing.T) {
		c := &clock{now: attrcache.Now()}
		h := httpapi.NewServer(newAPI(func(cfg *sso.Config) { cfg.Now = c.Now }), httpapi.Options{})
		u := newUser(t, false, nil)
		send := func(t *testing.T, method, suffix string, keys map[string]any) *response {
			t.Helper()
			res := serve(h, call{method: method, path: pathUserAttr + suffix, body: jsonOf(withCaller(u, keys))})
			wantOK(t, res)
			return res
		}
		send(t, http.MethodPut, "", map[string]any{"data": []any{item("short", 1), item("long", 1)}, "expiration": 60})
		send(t, http.MethodPatch, "", map[string]any{"name": "long", "value": 2, "expiration": 600})
		c.Advance(61 * time.Second)
		wantJSON(t, "get", send(t, http.MethodGet, "", map[string]any{"name": "short"}).body["found"], false)
		wantJSON(t, "exists", send(t, http.MethodGet, suffixExists, map[string]any{"data": []any{"short", "long"}}).body["result"],
			map[string]any{"short": false, "long": true})
		wantJSON(t, "names", send(t, http.MethodGet, suffixNames, nil).body["result"], []any{"long"})
		send(t, http.MethodPost, "", map[string]any{"name": "short", "value": "again"}) // an expired one does not block create
		wantJSON(t, "re-created", send(t, http.MethodGet, "", map[string]any{"name": "short"}).body["expiration_time"], neverExpires)
	})
}

// TestAttrEncrypt checks encrypted values: decrypted by default, the stored ciphertext with
// decrypt false, and is_encrypted following every write.
func TestAttrEncrypt(t *testing.T) {
	secret := map[string]any{"card": "4111 1111 1111 1111"}
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			target.put(t, map[string]any{"name": "secret", "value": secret, "encrypt": true})
			tests := []struct {
				name          string
				input         map[string]any
				wantPlaintext bool
			}{
				{"decrypt by default", map[string]any{"name": "secret"}, true},
				{"decrypt true", map[string]any{"name": "secret", "decrypt": true}, true},
				{"decrypt null is the default", map[string]any{"name": "secret", "decrypt": nil}, true},
				{"decrypt false", map[string]any{"name": "secret", "decrypt": false}, false},
				{"decrypt false, many", map[string]any{"data": []any{"secret"}, "decrypt": false}, false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					res := target.call(t, http.MethodGet, "", tt.input)
					wantOK(t, res)
					attr := res.body
					if result, ok := res.body["result"].(map[string]any); ok {
						attr, _ = result["secret"].(map[string]any)
					}
					if attr["is_encrypted"] != true {
						t.Fatalf("is_encrypted = %v, want true", attr["is_encrypted"])
					}
					if tt.wantPlaintext {
						wantJSON(t, "value", attr["value"], secret)
						return
					}
					stored, _ := attr["value"].(string)
					if !strings.HasPrefix(stored, "ac1.") || strings.Contains(stored, "4111") {
						t.Fatalf("value = %v, want the stored ciphertext", attr["value"])
					}
				})
			}
			t.Run("decrypt false in the query string", func(t *testing.T) {
				query := url.Values{"decrypt": {"false"}, "name": {"secret"}}
				res := serve(handler, call{method: http.MethodGet, path: target.base + "?" + query.Encode(), body: jsonOf(target.input(nil))})
				wantOK(t, res)
				if stored, _ := res.body["value"].(string); !strings.HasPrefix(stored, "ac1.") {
					t.Fatalf("value = %v, want the stored ciphertext", res.body["value"])
				}
			})
			t.Run("an update without encrypt stores plaintext", func(t *testing.T) {
				wantOK(t, target.call(t, http.MethodPatch, "", map[string]any{"name": "secret", "value": "open"}))
				got := target.call(t, http.MethodGet, "", map[string]any{"name": "secret", "decrypt": false}).body
				if got["is_encrypted"] != false || got["value"] != "open" {
					t.Fatalf("after a plaintext update: %v, want is_encrypted false and value open", got)
				}
			})
			t.Run("per-item encrypt", func(t *testing.T) {
				target.put(t, map[string]any{"encrypt": true, "data": []any{
					item("enc-default", 1),
					map[string]any{"name": "enc-off", "value": 2, "encrypt": false},
				}})
				res := target.call(t, http.MethodGet, "", map[string]any{"data": []any{"enc-default", "enc-off"}, "decrypt": false})
				wantOK(t, res)
				result := res.body["result"].(map[string]any)
				if on := result["enc-default"].(map[string]any); on["is_encrypted"] != true {
					t.Fatalf("enc-default: %v, want is_encrypted true", on)
				}
				if off := result["enc-off"].(map[string]any); off["is_encrypted"] != false || jsonOf(off["value"]) != "2" {
					t.Fatalf("enc-off: %v, want is_encrypted false and value 2", off)
				}
			})
		})
	}
}

// TestAttrQueryString checks that every verb reads its input from the query string as well as
// from the body, the query string winning, on GET and DELETE as on the others.
func TestAttrQueryString(t *testing.T) {
	u := newUser(t, false, nil)
	caller := url.Values{"ust": {u.ust}, "current_app": {app}}
	withQuery := func(keys map[string]string) string {
		q := url.Values{}
		for k, v := range caller {
			q[k] = v
		}
		for k, v := range keys {
			q.Set(k, v)
		}
		return pathUserAttr + "?" + q.Encode()
	}
	steps := []struct {
		name      string
		method    string
		path      string
		body      map[string]any
		wantFound map[string]any // attribute name → its value afterwards, nil when it must not be found
	}{
		{"PUT, query alone", http.MethodPut, withQuery(map[string]string{"name": "q1", "value": "from the query"}), nil,
			map[string]any{"q1": "from the query"}},
		{"PUT, query wins over body", http.MethodPut, withQuery(map[string]string{"name": "q2"}),
			map[string]any{"name": "body-name", "value": []any{1}}, map[string]any{"q2": []any{1}, "body-name": nil}},
		{"PATCH, query value", http.MethodPatch, withQuery(map[string]string{"name": "q2", "value": "patched"}), nil,
			map[string]any{"q2": "patched"}},
		{"DELETE, query alone", http.MethodDelete, withQuery(map[string]string{"name": "q1"}), nil, map[string]any{"q1": nil}},
		{"DELETE, body alone", http.MethodDelete, pathUserAttr, withCaller(u, map[string]any{"name": "q2"}), map[string]any{"q2": nil}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			c := call{method: step.method, path: step.path}
			if step.body != nil {
				c.body = jsonOf(step.body)
			}
			wantOK(t, serve(handler, c))
			for name, value := range step.wantFound {
				res := serve(handler, call{method: http.MethodGet, path: withQuery(map[string]string{"name": name})})
				wantOK(t, res)
				if value == nil {
					wantJSON(t, name+" found", res.body["found"], false)
					continue
				}
				wantJSON(t, name, res.body["value"], value)
			}
		})
	}
	t.Run("GET, data from the query is one name", func(t *testing.T) {
		wantOK(t, serve(handler, call{method: http.MethodPut, path: withQuery(map[string]string{"name": "q3", "value": "v"})}))
		res := serve(handler, call{method: http.MethodGet, path: withQuery(map[string]string{"data": "q3"})})
		wantOK(t, res)
		wantJSON(t, "found", res.body["found"], true)
	})
}
