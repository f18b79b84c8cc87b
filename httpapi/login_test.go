package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/sso"
)

const pathLogin = "/zato/sso/user/login"

func TestLogin(t *testing.T) {
	plain := newUser(t, false, nil)
	locked := newUser(t, false, func(in *sso.CreateUserInput) { in.IsLocked = true })
	totpKey := attrcache.NewTOTPKey()
	withTOTP := newUser(t, false, func(in *sso.CreateUserInput) {
		in.IsTOTPEnabled = true
		in.TOTPKey = &totpKey
	})
	mustChange := newUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
	expiring := newUser(t, false, nil)
	if _, err := api.AdminChangePassword(context.Background(), expiring.username, expiring.password, 10, false); err != nil {
		t.Fatalf("AdminChangePassword: %v", err)
	}
	pending := createUserOverHTTP(t, map[string]any{"password": "pending-pass-1"})

	creds := func(u testUser) map[string]any {
		return map[string]any{"username": u.username, "password": u.password, "current_app": app}
	}
	with := func(u testUser, key string, value any) map[string]any {
		in := creds(u)
		in[key] = value
		return in
	}
	without := func(u testUser, key string) map[string]any {
		in := creds(u)
		delete(in, key)
		return in
	}
	decoded, err := attrcache.DecodeTOTPKey(totpKey)
	if err != nil {
		t.Fatal(err)
	}
	pendingCreds := map[string]any{"username": pending, "password": "pending-pass-1", "current_app": app}

	tests := []struct {
		name       string
		input      map[string]any
		wantStatus int
		wantCode   string // "" for ok, W003005 for the warning
	}{
		{"ok", creds(plain), 200, ""},
		{"password about to expire", creds(expiring), 200, attrcache.CodePasswordAboutToExpire},
		{"wrong password", with(plain, "password", "not-the-password"), 403, attrcache.CodeNotAllowed},
		{"unknown user", with(plain, "username", "no-such-user"), 403, attrcache.CodeNotAllowed},
		{"username null", with(plain, "username", nil), 403, attrcache.CodeNotAllowed},
		{"password empty", with(plain, "password", ""), 403, attrcache.CodeNotAllowed},
		{"username missing", without(plain, "username"), 400, attrcache.CodeMissingInput},
		{"password missing", without(plain, "password"), 400, attrcache.CodeMissingInput},
		{"current_app missing", without(plain, "current_app"), 400, attrcache.CodeMissingInput},
		{"username not a string", with(plain, "username", 42), 400, attrcache.CodeInvalidInput},
		{"unknown app", with(plain, "current_app", "NoSuchApp"), 200, attrcache.CodeAppInvalid},
		{"locked", creds(locked), 403, attrcache.CodeLocked},
		{"TOTP code missing", creds(withTOTP), 403, attrcache.CodeTOTPMissing},
		{"TOTP code wrong", with(withTOTP, "totp_code", "abcdef"), 403, attrcache.CodeNotAllowed},
		{"TOTP code right", with(withTOTP, "totp_code", attrcache.TOTPCode(decoded, time.Now())), 200, ""},
		{"must change, no new password", creds(mustChange), 403, attrcache.CodePasswordMustSendNew},
		{"must change, new password", with(mustChange, "new_password", "brand-new-pass-1"), 200, ""},
		{"not approved", pendingCreds, 403, attrcache.CodeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, pathLogin, tt.input)
			switch tt.wantCode {
			case "":
				wantOK(t, res)
			case attrcache.CodePasswordAboutToExpire:
				checkCID(t, res)
				if res.status != 200 || res.body["status"] != "warning" || !subStatusIs(res, tt.wantCode) {
					t.Fatalf("got HTTP %d %s, want 200 warning [%s]", res.status, res.raw, tt.wantCode)
				}
			default:
				wantError(t, res, tt.wantStatus, tt.wantCode)
				if res.body["ust"] != nil {
					t.Fatalf("error response %s carries a ust", res.raw)
				}
				return
			}
			if ust, _ := res.body["ust"].(string); ust == "" {
				t.Fatalf("got %s, want a ust", res.raw)
			}
		})
	}
}

func TestLoginThrottled(t *testing.T) {
	u := newUser(t, false, nil)
	wrong := map[string]any{"username": u.username, "password": "wrong-password", "current_app": app}
	for range throttleLimit {
		wantError(t, do(t, http.MethodPost, pathLogin, wrong), http.StatusForbidden, attrcache.CodeNotAllowed)
	}
	right := map[string]any{"username": u.username, "password": u.password, "current_app": app}
	res := do(t, http.MethodPost, pathLogin, right)
	wantError(t, res, http.StatusTooManyRequests, attrcache.CodeNotAllowed)
	secs, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After = %q, want a whole number of seconds >= 1", res.header.Get("Retry-After"))
	}
}

// TestLoginThrottleIgnoresRemoteAddrInput checks that the remote_addr input, which replaces the
// address a session records, does not choose the address the throttle counts against: that is
// the address the request came from (here forwarded by a trusted proxy).
func TestLoginThrottleIgnoresRemoteAddrInput(t *testing.T) {
	const perAddress = 3
	h := httpapi.NewServer(newAPI(func(cfg *sso.Config) {
		cfg.Throttle = sso.ThrottleConfig{PerAddress: perAddress, Window: time.Hour}
	}), httpapi.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	u := newUser(t, false, nil)
	fromClient := map[string]string{"X-Forwarded-For": "203.0.113.50"}
	for i := range perAddress {
		wrong := map[string]any{"username": uniqueName("nobody"), "password": "wrong-password", "current_app": app,
			"remote_addr": fmt.Sprintf("198.51.100.%d", i+1)}
		res := serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(wrong), header: fromClient})
		wantError(t, res, http.StatusForbidden, attrcache.CodeNotAllowed)
	}
	right := map[string]any{"username": u.username, "password": u.password, "current_app": app, "remote_addr": "198.51.100.99"}
	res := serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(right), header: fromClient})
	wantError(t, res, http.StatusTooManyRequests, attrcache.CodeNotAllowed)

	fromElsewhere := map[string]string{"X-Forwarded-For": "203.0.113.51"}
	wantOK(t, serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(right), header: fromElsewhere}))
}

// TestLoginAnyVerb checks that login, logout and search answer on every common verb, as Zato's
// plain services do.
func TestLoginAnyVerb(t *testing.T) {
	u := newUser(t, false, nil)
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			res := do(t, method, pathLogin, map[string]any{"username": u.username, "password": u.password, "current_app": app})
			wantOK(t, res)
			ust := res.body["ust"].(string)
			wantOK(t, do(t, method, "/zato/sso/user/search", withCaller(admin, map[string]any{"username": u.username})))
			wantOK(t, do(t, method, "/zato/sso/user/logout", map[string]any{"ust": ust, "current_app": app}))
		})
	}
}

func TestLogout(t *testing.T) {
	tests := []struct {
		name       string
		input      func(u testUser) map[string]any
		wantStatus int
		wantCode   string
		wantEnded  bool // the user's session has ended
	}{
		{"own session", func(u testUser) map[string]any { return map[string]any{"ust": u.ust, "current_app": app} }, 200, "", true},
		{"current_ust alias", func(u testUser) map[string]any { return map[string]any{"current_ust": u.ust, "current_app": app} }, 200, "", true},
		{"garbage UST", func(testUser) map[string]any { return map[string]any{"ust": "garbage", "current_app": app} }, 200, "", false},
		{"UST missing", func(testUser) map[string]any { return map[string]any{"current_app": app} }, 400, attrcache.CodeMissingInput, false},
		{"unknown app", func(u testUser) map[string]any { return map[string]any{"ust": u.ust, "current_app": "NoSuchApp"} }, 200, attrcache.CodeAppInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t, false, nil)
			res := do(t, http.MethodPost, "/zato/sso/user/logout", tt.input(u))
			if tt.wantCode == "" {
				wantOK(t, res)
			} else {
				wantError(t, res, tt.wantStatus, tt.wantCode)
			}
			after := do(t, http.MethodGet, "/zato/sso/user", withCaller(u, nil))
			if ended := after.status == http.StatusForbidden; ended != tt.wantEnded {
				t.Fatalf("after logout GET /zato/sso/user: HTTP %d %s; want the session ended = %v", after.status, after.raw, tt.wantEnded)
			}
		})
	}
}
