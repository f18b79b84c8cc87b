package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/attrcache/attrcache"
)

// Paths the other test files do not name.
const (
	pathLogout            = "/zato/sso/user/logout"
	pathApprove           = "/zato/sso/user/approve"
	pathReject            = "/zato/sso/user/reject"
	pathLock              = "/zato/sso/user/lock"
	pathUserAttrExists    = pathUserAttr + suffixExists
	pathUserAttrNames     = pathUserAttr + suffixNames
	pathSessionAttrExists = pathSessionAttr + suffixExists
	pathSessionAttrNames  = pathSessionAttr + suffixNames
)

const (
	victimAttr        = "victim-user-attr"
	victimSessionAttr = "victim-session-attr"
)

// newVictim returns a regular user whom another regular user tries to act on: logged in, with a
// user attribute and an attribute of their session.
func newVictim(t *testing.T) testUser {
	t.Helper()
	v := newUser(t, false, nil)
	wantOK(t, do(t, http.MethodPut, pathUserAttr, withCaller(v, map[string]any{"name": victimAttr, "value": "kept"})))
	wantOK(t, do(t, http.MethodPut, pathSessionAttr, withCaller(v,
		map[string]any{"target_ust": v.ust, "name": victimSessionAttr, "value": "kept"})))
	return v
}

// stateOf returns what super-user su sees of v: the user with every field, v's user attribute,
// v's session and its attribute. Any change to v shows in it.
func stateOf(t *testing.T, su testUser, v testUser) map[string]any {
	t.Helper()
	read := func(method, path string, input map[string]any) any {
		res := do(t, method, path, withCaller(su, input))
		delete(res.body, "cid")
		return res.body
	}
	return map[string]any{
		"user":         read(http.MethodGet, pathUser, map[string]any{"user_id": v.id}),
		"user attr":    read(http.MethodGet, pathUserAttr, map[string]any{"user_id": v.id, "name": victimAttr}),
		"session":      read(http.MethodGet, pathSession, map[string]any{"target_ust": v.ust}),
		"session attr": read(http.MethodGet, pathSessionAttr, map[string]any{"target_ust": v.ust, "name": victimSessionAttr}),
	}
}

// authzCase is one route called by a regular user on another user.
type authzCase struct {
	// input names the victim (user_id or target_ust) and whatever else the call needs; the
	// caller's ust and current_app are added.
	input func(v testUser) map[string]any
	// refusal is the sub_status (HTTP 403) a regular user gets. "" means that the call answers
	// ok because it acts on the caller alone, whoever the input names.
	refusal string
	// prepare, when set, changes the victim first (as the super-user su).
	prepare func(t *testing.T, su testUser, v testUser)
	// noCaller, when set, says why the route has no UST caller to test.
	noCaller string
}

func byUserID(extra map[string]any) func(testUser) map[string]any {
	return func(v testUser) map[string]any {
		in := map[string]any{"user_id": v.id}
		for k, val := range extra {
			in[k] = val
		}
		return in
	}
}

func byTargetUST(extra map[string]any) func(testUser) map[string]any {
	return func(v testUser) map[string]any {
		in := map[string]any{"target_ust": v.ust, "user_id": v.id}
		for k, val := range extra {
			in[k] = val
		}
		return in
	}
}

// authzCases holds every route, keyed by "METHOD path". TestRegularUserOnAnotherUser fails for
// a route missing here.
func authzCases() map[string]authzCase {
	cases := map[string]authzCase{
		"GET " + pathUser:                  {input: byUserID(nil), refusal: attrcache.CodeNotAllowed},
		"GET " + pathExport:                {input: byUserID(nil), refusal: attrcache.CodeNotAllowed},
		"GET " + pathUserAttr + "/changes": {input: byUserID(nil), refusal: attrcache.CodeNotAllowed},
		"POST " + pathUser:                 {input: byUserID(map[string]any{"username": uniqueName("made-by-regular")}), refusal: attrcache.CodeNotAllowed},
		"PATCH " + pathUser:                {input: byUserID(map[string]any{"display_name": "changed"}), refusal: attrcache.CodeInvalidInput},
		"DELETE " + pathUser:               {input: byUserID(nil), refusal: attrcache.CodeNotAllowed},
		"PATCH " + pathPassword: {
			input: byUserID(map[string]any{"new_password": "a-new-long-pass", "old_password": "whatever"}), refusal: attrcache.CodeInvalidInput,
		},
		"POST " + pathApprove: {input: byUserID(nil), refusal: attrcache.CodeInvalidInput},
		"POST " + pathReject:  {input: byUserID(nil), refusal: attrcache.CodeInvalidInput},
		"POST " + pathLock:    {input: byUserID(nil), refusal: attrcache.CodeNotAllowed},
		"DELETE " + pathLock: {input: byUserID(nil), refusal: attrcache.CodeNotAllowed, prepare: func(t *testing.T, su testUser, v testUser) {
			wantOK(t, do(t, http.MethodPost, pathLock, withCaller(su, map[string]any{"user_id": v.id})))
		}},
		"PATCH " + pathTOTP: {input: byUserID(map[string]any{"totp_key": "", "totp_label": "changed"}), refusal: attrcache.CodeInvalidInput},

		"GET " + pathSession:     {input: byTargetUST(nil), refusal: attrcache.CodeNotAllowed},
		"POST " + pathSession:    {input: byTargetUST(nil), refusal: attrcache.CodeNotAllowed},
		"PATCH " + pathSession:   {input: byTargetUST(nil)},
		"GET " + pathSessionList: {input: byTargetUST(nil)},

		"POST " + pathSignup:  {noCaller: "sign-up creates a new user and takes no UST"},
		"PATCH " + pathSignup: {noCaller: "confirmation acts on the user of the secret token sent, with no UST"},
		"GET /healthz":        {noCaller: "no user data"},
		"GET /readyz":         {noCaller: "no user data"},
		"GET /metrics":        {noCaller: "no user data"},
	}
	for _, verb := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		cases[verb+" "+pathSearch] = authzCase{input: byUserID(nil), refusal: attrcache.CodeNotAllowed}
		cases[verb+" "+pathLogout] = authzCase{input: byTargetUST(nil)}
		cases[verb+" "+pathLogin] = authzCase{noCaller: "a login names its user by username and password (TestLogin, TestLoginThrottled)"}
	}
	attrOps := map[string]map[string]any{
		"PUT":    {"name": "written", "value": 1},
		"POST":   {"name": "written", "value": 1},
		"PATCH":  {"name": victimAttr, "value": "changed"},
		"DELETE": {"name": victimAttr},
		"GET":    {"name": victimAttr},
	}
	for verb, in := range attrOps {
		cases[verb+" "+pathUserAttr] = authzCase{input: byUserID(in), refusal: attrcache.CodeNotAllowed}
		sessionIn := map[string]any{"name": in["name"], "value": in["value"]}
		if in["name"] == victimAttr {
			sessionIn["name"] = victimSessionAttr
		}
		cases[verb+" "+pathSessionAttr] = authzCase{input: byTargetUST(sessionIn), refusal: attrcache.CodeNotAllowed}
	}
	for _, path := range []string{pathUserAttrExists, pathUserAttrNames} {
		cases["GET "+path] = authzCase{input: byUserID(map[string]any{"name": victimAttr}), refusal: attrcache.CodeNotAllowed}
	}
	for _, path := range []string{pathSessionAttrExists, pathSessionAttrNames} {
		cases["GET "+path] = authzCase{input: byTargetUST(map[string]any{"name": victimSessionAttr}), refusal: attrcache.CodeNotAllowed}
	}
	return cases
}

// TestRegularUserOnAnotherUser calls every route as a regular user naming another user (their
// user_id, or their session's UST as target_ust): the call is refused with the code of the
// reference, or acts on the caller alone, and nothing about the other user changes; the same
// call by a super-user succeeds.
func TestRegularUserOnAnotherUser(t *testing.T) {
	cases := authzCases()
	engine, ok := handler.(*gin.Engine)
	if !ok {
		t.Fatalf("NewServer returned %T, want *gin.Engine", handler)
	}
	routed := make(map[string]bool)
	for _, route := range engine.Routes() {
		key := route.Method + " " + route.Path
		routed[key] = true
		if _, ok := cases[key]; !ok {
			t.Errorf("route %s is not in authzCases", key)
		}
	}
	for key := range cases {
		if !routed[key] {
			t.Errorf("authzCases has %s, which is not routed", key)
		}
	}

	for key, tc := range cases {
		if tc.noCaller != "" {
			continue
		}
		method, path, _ := strings.Cut(key, " ")
		t.Run(key, func(t *testing.T) {
			attacker := newUser(t, false, nil)
			superUser := newUser(t, true, nil)
			v := newVictim(t)
			if tc.prepare != nil {
				tc.prepare(t, superUser, v)
			}
			before := stateOf(t, superUser, v)

			res := do(t, method, path, withCaller(attacker, tc.input(v)))
			if tc.refusal != "" {
				wantError(t, res, http.StatusForbidden, tc.refusal)
			} else {
				wantOK(t, res)
			}
			wantJSON(t, "the other user as a super-user sees them", stateOf(t, superUser, v), before)
			if path == pathSessionList {
				wantOnlySessionsOf(t, res, attacker)
			}

			wantOK(t, do(t, method, path, withCaller(superUser, tc.input(v))))
		})
	}
}

// wantOnlySessionsOf fails the test unless every session of the session list res belongs to u.
func wantOnlySessionsOf(t *testing.T, res *response, u testUser) {
	t.Helper()
	sessions, _ := res.body["result"].([]any)
	if len(sessions) == 0 {
		t.Fatalf("session list %s: want the caller's own session", res.raw)
	}
	for _, s := range sessions {
		if got := s.(map[string]any)["auth_principal"]; got != u.username {
			t.Errorf("session list of %s holds a session of %v", u.username, got)
		}
	}
}

// TestUSTUnusableAtOnce checks that a UST stops working on the very next request after its
// session ends or its owner may no longer use it, on every kind of endpoint, and that a refused
// write writes nothing.
func TestUSTUnusableAtOnce(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, u testUser)
		want string
	}{
		{"logout", func(t *testing.T, u testUser) {
			wantOK(t, do(t, http.MethodPost, pathLogout, withCaller(u, nil)))
		}, attrcache.CodeNoSuchSession},
		{"lock", func(t *testing.T, u testUser) {
			wantOK(t, do(t, http.MethodPost, pathLock, withCaller(admin, map[string]any{"user_id": u.id})))
		}, attrcache.CodeLocked},
		{"reject", func(t *testing.T, u testUser) {
			wantOK(t, do(t, http.MethodPost, pathReject, withCaller(admin, map[string]any{"user_id": u.id})))
		}, attrcache.CodeNoSuchSession},
		{"password expiry", func(t *testing.T, u testUser) {
			wantOK(t, do(t, http.MethodPatch, pathUser, withCaller(admin,
				map[string]any{"user_id": u.id, "password_expiry": "2000-01-01T00:00:00"})))
		}, attrcache.CodePasswordExpired},
	}
	calls := []struct {
		name         string
		method, path string
		input        func(u testUser) map[string]any
	}{
		{"get user", http.MethodGet, pathUser, func(testUser) map[string]any { return nil }},
		{"set user attr", http.MethodPut, pathUserAttr, func(testUser) map[string]any { return map[string]any{"name": "after-end", "value": 1} }},
		{"get user attr names", http.MethodGet, pathUserAttrNames, func(testUser) map[string]any { return nil }},
		{"set session attr", http.MethodPut, pathSessionAttr, func(u testUser) map[string]any {
			return map[string]any{"target_ust": u.ust, "name": "after-end", "value": 1}
		}},
		{"renew session", http.MethodPatch, pathSession, func(testUser) map[string]any { return nil }},
		{"list sessions", http.MethodGet, pathSessionList, func(testUser) map[string]any { return nil }},
		{"change password", http.MethodPatch, pathPassword, func(u testUser) map[string]any {
			return map[string]any{"old_password": u.password, "new_password": "a-new-long-pass"}
		}},
	}
	for _, end := range ends {
		for _, call := range calls {
			t.Run(end.name+"/"+call.name, func(t *testing.T) {
				u := newUser(t, false, nil)
				wantOK(t, do(t, http.MethodGet, pathUserAttrNames, withCaller(u, nil))) // the session is live and cached
				end.end(t, u)
				wantError(t, do(t, call.method, call.path, withCaller(u, call.input(u))), http.StatusForbidden, end.want)

				res := do(t, http.MethodGet, pathUserAttr, withCaller(admin, map[string]any{"user_id": u.id, "name": "after-end"}))
				wantOK(t, res)
				if res.body["found"] != false {
					t.Errorf("a refused call wrote attribute after-end: %s", res.raw)
				}
			})
		}
	}
}
