package httpapi_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
)

const (
	pathSession     = "/zato/sso/user/session"
	pathSessionList = "/zato/sso/user/session/list"
)

func TestGetSession(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name       string
		input      map[string]any
		wantStatus int
		wantCode   string
	}{
		{"super-user", map[string]any{"current_ust": admin.ust, "target_ust": regular.ust, "current_app": app}, 200, ""},
		{"super-user, ust alias", map[string]any{"ust": admin.ust, "target_ust": regular.ust, "current_app": app}, 200, ""},
		{"regular user", map[string]any{"current_ust": regular.ust, "target_ust": regular.ust, "current_app": app}, 403, attrcache.CodeNotAllowed},
		{"target missing", map[string]any{"current_ust": admin.ust, "current_app": app}, 403, attrcache.CodeNoSuchSession},
		{"garbage target", map[string]any{"current_ust": admin.ust, "target_ust": "garbage", "current_app": app}, 403, attrcache.CodeNoSuchSession},
		{"current_app missing", map[string]any{"current_ust": admin.ust, "target_ust": regular.ust}, 400, attrcache.CodeMissingInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodGet, pathSession, tt.input)
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			if got, want := keysOf(res.body), withEnvelope("creation_time expiration_time remote_addr user_agent"); got != want {
				t.Fatalf("keys = %s, want %s", got, want)
			}
			created := parseTime(t, res.body["creation_time"])
			expires := parseTime(t, res.body["expiration_time"])
			if !expires.After(created) {
				t.Fatalf("expiration_time %v is not after creation_time %v", expires, created)
			}
		})
	}
}

func TestVerifySession(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name      string
		input     map[string]any
		wantValid bool
		wantCode  string
	}{
		{"live session", map[string]any{"current_ust": admin.ust, "target_ust": regular.ust, "current_app": app}, true, ""},
		{"garbage target", map[string]any{"current_ust": admin.ust, "target_ust": "garbage", "current_app": app}, false, ""},
		{"regular user", map[string]any{"current_ust": regular.ust, "target_ust": regular.ust, "current_app": app}, false, attrcache.CodeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, pathSession, tt.input)
			if tt.wantCode != "" {
				wantError(t, res, http.StatusForbidden, tt.wantCode)
				return
			}
			wantOK(t, res)
			if got := res.body["is_valid"]; got != tt.wantValid {
				t.Fatalf("is_valid = %#v, want %v", got, tt.wantValid)
			}
		})
	}
}

func TestRenewSession(t *testing.T) {
	u := newUser(t, false, nil)
	t.Run("own session", func(t *testing.T) {
		res := do(t, http.MethodPatch, pathSession, withCaller(u, nil))
		wantOK(t, res)
		if got, want := keysOf(res.body), withEnvelope("expiration_time"); got != want {
			t.Fatalf("keys = %s, want %s", got, want)
		}
		parseTime(t, res.body["expiration_time"])
	})
	t.Run("garbage UST", func(t *testing.T) {
		wantError(t, do(t, http.MethodPatch, pathSession, map[string]any{"ust": "garbage", "current_app": app}), 403, attrcache.CodeNoSuchSession)
	})
}

func TestListSessions(t *testing.T) {
	u := newUser(t, false, nil)
	second := login(t, u)

	res := do(t, http.MethodGet, pathSessionList, map[string]any{"ust": second, "current_app": app})
	wantOK(t, res)
	result, ok := res.body["result"].([]any)
	if !ok || len(result) != 2 {
		t.Fatalf("result = %s, want a list of the user's 2 sessions", res.raw)
	}
	const wantKeys = "auth_principal auth_type creation_time expiration_time ext_session_id remote_addr user_agent"
	for _, item := range result {
		session := item.(map[string]any)
		if got := keysOf(session); got != wantKeys {
			t.Fatalf("session keys = %s, want %s (never a UST)", got, wantKeys)
		}
		if session["auth_principal"] != u.username {
			t.Fatalf("auth_principal = %v, want %s", session["auth_principal"], u.username)
		}
	}

	wantError(t, do(t, http.MethodGet, pathSessionList, map[string]any{"ust": "garbage", "current_app": app}), 403, attrcache.CodeNoSuchSession)
}

// TestSessionClientIdentity checks where a session's remote_addr and user_agent come from: the
// connection's peer (192.0.2.1 under httptest), forwarded headers only from a trusted proxy and
// then their right-most untrusted entry, or the login's own inputs.
func TestSessionClientIdentity(t *testing.T) {
	api := newAPI()
	untrusting := httpapi.NewServer(api, httpapi.Options{})
	trusting := httpapi.NewServer(api, httpapi.Options{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
	}})
	tests := []struct {
		name          string
		trustPeer     bool
		header        map[string]string
		input         map[string]any // added to the login's input
		wantAddr      string
		wantUserAgent string
	}{
		{"connection", false, nil, nil, "192.0.2.1", ""},
		{"X-Zato-Forwarded-For from an untrusted peer", false, map[string]string{"X-Zato-Forwarded-For": "203.0.113.7"}, nil, "192.0.2.1", ""},
		{"X-Forwarded-For from an untrusted peer", false, map[string]string{"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}, nil, "192.0.2.1", ""},
		{"trusted peer without headers", true, nil, nil, "192.0.2.1", ""},
		{"X-Zato-Forwarded-For first", true, map[string]string{"X-Zato-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Forwarded-For": "198.51.100.1"}, nil, "203.0.113.7", ""},
		{"right-most untrusted entry", true, map[string]string{"X-Forwarded-For": "198.51.100.66, 203.0.113.8, 10.0.0.2"}, nil, "203.0.113.8", ""},
		{"IPv6 entry", true, map[string]string{"X-Forwarded-For": " 2001:db8::1 , 10.0.0.1"}, nil, "2001:db8::1", ""},
		{"entries with ports", true, map[string]string{"X-Forwarded-For": "[2001:db8::2]:443, 10.0.0.1:80"}, nil, "2001:db8::2", ""},
		{"every entry trusted", true, map[string]string{"X-Forwarded-For": "10.0.0.3, 10.0.0.2"}, nil, "10.0.0.3", ""},
		{"garbage left of the client", true, map[string]string{"X-Forwarded-For": "not-an-ip, 203.0.113.9"}, nil, "203.0.113.9", ""},
		{"garbage where the client should be", true, map[string]string{"X-Zato-Forwarded-For": "203.0.113.9, not-an-ip"}, nil, "192.0.2.1", ""},
		{"garbage after a trusted hop", true, map[string]string{"X-Forwarded-For": "999.1.1.1, 10.0.0.4"}, nil, "10.0.0.4", ""},
		{"User-Agent header", false, map[string]string{"User-Agent": "agent/1.0"}, nil, "192.0.2.1", "agent/1.0"},
		{"input overrides", true, map[string]string{"X-Forwarded-For": "198.51.100.1", "User-Agent": "agent/1.0"},
			map[string]any{"remote_addr": "203.0.113.9", "user_agent": "given/2.0"}, "203.0.113.9", "given/2.0"},
		{"remote_addr input not an IP", false, nil, map[string]any{"remote_addr": "nowhere"}, "192.0.2.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t, false, nil)
			input := map[string]any{"username": u.username, "password": u.password, "current_app": app}
			for k, v := range tt.input {
				input[k] = v
			}
			h := untrusting
			if tt.trustPeer {
				h = trusting
			}
			res := serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(input), header: tt.header})
			wantOK(t, res)
			session := do(t, http.MethodGet, pathSession, map[string]any{"current_ust": admin.ust, "target_ust": res.body["ust"], "current_app": app})
			wantOK(t, session)
			if got := session.body["remote_addr"]; got != tt.wantAddr {
				t.Errorf("remote_addr = %v, want %s", got, tt.wantAddr)
			}
			if got := session.body["user_agent"]; got != tt.wantUserAgent {
				t.Errorf("user_agent = %v, want %q", got, tt.wantUserAgent)
			}
		})
	}
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := attrcache.ParseTime(s)
	if err != nil {
		t.Fatalf("time %#v: %v", v, err)
	}
	return ts
}
