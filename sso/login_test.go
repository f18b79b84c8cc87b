package sso_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

const totpKey = "JBSWY3DPEHPK3PXP"

// totpCode returns the code of totpKey at t.
func totpCode(t *testing.T, at time.Time) string {
	t.Helper()
	key, err := attrcache.DecodeTOTPKey(totpKey)
	if err != nil {
		t.Fatal(err)
	}
	return attrcache.TOTPCode(key, at)
}

func withTOTP(in *sso.CreateUserInput) {
	in.IsTOTPEnabled = true
	in.TOTPKey = ptr(totpKey)
}

func TestLoginChecksInZatoOrder(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		name string
		// prepare makes the user the case needs and returns the login to try.
		prepare     func(t *testing.T, e *env) sso.LoginInput
		wantCode    string
		wantWarning string
	}{
		{
			name: "unknown app",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: "nope"}
			},
			wantCode: attrcache.CodeAppInvalid,
		},
		{
			name: "unknown username",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				return sso.LoginInput{Username: uniqueName(t), Password: testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "empty username",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				return sso.LoginInput{Password: testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "user not approved",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				_, ust := e.superUser(t)
				u, err := e.api.CreateUser(context.Background(), "cid",
					sso.CreateUserInput{Username: uniqueName(t), Password: ptr(testPassword)}, ust, testApp, testAddr)
				if err != nil {
					t.Fatal(err)
				}
				return sso.LoginInput{Username: u.Username, Password: testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "empty password",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				return sso.LoginInput{Username: u.Username, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "wrong password",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				return sso.LoginInput{Username: u.Username, Password: "wrong-" + testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "wrong password with TOTP on and no code",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP)
				return sso.LoginInput{Username: u.Username, Password: "wrong-" + testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "wrong password of a locked user",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.IsLocked = true })
				return sso.LoginInput{Username: u.Username, Password: "wrong-" + testPassword, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "TOTP code missing",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeTOTPMissing,
		},
		{
			name: "TOTP code wrong",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP)
				wrong := totpCode(t, e.clock.Now().Add(-10*attrcache.TOTPStep))
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, TOTPCode: wrong}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "TOTP code of this step",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP)
				code := totpCode(t, e.clock.Now())
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, TOTPCode: code}
			},
		},
		{
			name: "TOTP code of the previous step",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP)
				code := totpCode(t, e.clock.Now().Add(-attrcache.TOTPStep))
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, TOTPCode: code}
			},
		},
		{
			name: "locked",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.IsLocked = true })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeLocked,
		},
		{
			name: "locked with TOTP on checks TOTP first",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, withTOTP, func(in *sso.CreateUserInput) { in.IsLocked = true })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeTOTPMissing,
		},
		{
			name: "sign-up not confirmed",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.SignUpStatus = attrcache.SignUpBeforeConfirmation })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeInvalidSignupStatus,
		},
		{
			name: "password expired",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				e.clock.Advance(731 * day)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodeNotAllowed,
		},
		{
			name: "password about to expire",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				e.clock.Advance(701 * day)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantWarning: attrcache.CodePasswordAboutToExpire,
		},
		{
			name: "password not yet about to expire",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false)
				e.clock.Advance(699 * day)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
		},
		{
			name: "password must change, no new password",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp}
			},
			wantCode: attrcache.CodePasswordMustSendNew,
		},
		{
			name: "password must change, new one too short",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, NewPassword: "short"}
			},
			wantCode: attrcache.CodePasswordTooShort,
		},
		{
			name: "password must change, new one too long",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
				long := string(make([]byte, 257))
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, NewPassword: long}
			},
			wantCode: attrcache.CodePasswordTooLong,
		},
		{
			name: "password must change, new one rejected",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, NewPassword: "MyQwertyIsLong"}
			},
			wantCode: attrcache.CodePasswordInvalid,
		},
		{
			name: "password must change and about to expire, new one given",
			prepare: func(t *testing.T, e *env) sso.LoginInput {
				u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
				e.clock.Advance(701 * day)
				return sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, NewPassword: "a fresh passphrase"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := tt.prepare(t, e)
			res, err := e.api.Login(context.Background(), "cid", in)
			wantCode(t, err, tt.wantCode)
			if err != nil {
				return
			}
			if res.Warning != tt.wantWarning {
				t.Errorf("Warning = %q, want %q", res.Warning, tt.wantWarning)
			}
			if _, err := e.api.GetCurrentUser(context.Background(), "cid", res.UST, testApp, testAddr); err != nil {
				t.Errorf("GetCurrentUser with the new UST: %v", err)
			}
		})
	}
}

func TestLoginUnknownAppIsAppInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.api.Login(context.Background(), "cid", sso.LoginInput{Username: "x", Password: "y", CurrentApp: "nope"})
	wantKind(t, err, attrcache.KindAppInvalid, attrcache.CodeAppInvalid)
}

func TestLoginOpensSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	u := e.createUser(t, false)
	res, err := e.api.Login(ctx, "cid", sso.LoginInput{
		Username: u.Username, Password: u.password, CurrentApp: testApp, RemoteAddr: testAddr, UserAgent: "agent/1",
	})
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if want := now.Add(60 * time.Minute); !res.ExpirationTime.Equal(want) {
		t.Errorf("ExpirationTime = %v, want %v", res.ExpirationTime, want)
	}
	sessions, err := e.api.ListSessions(ctx, "cid", res.UST, testApp, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 {
		t.Fatalf("got %d sessions, want 1", len(sessions))
	}
	s := sessions[0]
	wantChange := attrcache.SessionStateChange{
		RemoteAddr: testAddr, UserAgent: "agent/1", TimestampUTC: attrcache.FormatTime(now), CtxSource: "login", Idx: 1,
	}
	switch {
	case s.UserID != u.UserID || s.AuthType != "default" || s.AuthPrincipal != u.Username:
		t.Errorf("session owner = %s %s %s, want %s default %s", s.UserID, s.AuthType, s.AuthPrincipal, u.UserID, u.Username)
	case s.RemoteAddr != testAddr || s.UserAgent != "agent/1":
		t.Errorf("session client = %q %q, want %q %q", s.RemoteAddr, s.UserAgent, testAddr, "agent/1")
	case !s.CreationTime.Equal(now) || !s.ExpirationTime.Equal(res.ExpirationTime):
		t.Errorf("session times = %v %v, want %v %v", s.CreationTime, s.ExpirationTime, now, res.ExpirationTime)
	case len(s.StateChanges) != 1 || s.StateChanges[0] != wantChange:
		t.Errorf("state changes = %+v, want [%+v]", s.StateChanges, wantChange)
	}
}

func TestLoginWithMustChangeSavesNewPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.PasswordMustChange = true })
	const newPassword = "a brand new passphrase"
	if _, err := e.api.Login(ctx, "cid", sso.LoginInput{
		Username: u.Username, Password: u.password, NewPassword: newPassword, CurrentApp: testApp,
	}); err != nil {
		t.Fatal(err)
	}
	got := e.getUser(t, u.UserID)
	if got.PasswordMustChange {
		t.Error("password_must_change is still true after the change")
	}
	_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp})
	wantCode(t, err, attrcache.CodeNotAllowed)
	_, err = e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: newPassword, CurrentApp: testApp})
	wantCode(t, err, "")
}

func TestLoginIgnoresNewPasswordUnlessMustChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	u := e.createUser(t, false)
	for _, in := range []sso.LoginInput{
		{Username: u.Username, Password: u.password, NewPassword: "ignored passphrase", CurrentApp: testApp},
		{Username: u.Username, Password: u.password, CurrentApp: testApp},
	} {
		if _, err := e.api.Login(ctx, "cid", in); err != nil {
			t.Fatalf("login with the old password: %v", err)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const window = time.Minute
	failLogin := func(t *testing.T, e *env, username, addr string) {
		t.Helper()
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: username, Password: "wrong password", CurrentApp: testApp, RemoteAddr: addr})
		wantCode(t, err, attrcache.CodeNotAllowed)
	}
	login := func(e *env, u user, addr string) error {
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, RemoteAddr: addr})
		return err
	}
	wantThrottled := func(t *testing.T, err error) {
		t.Helper()
		e := wantKind(t, err, attrcache.KindThrottled, attrcache.CodeNotAllowed)
		if e.RetryAfter <= 0 || e.RetryAfter > window {
			t.Errorf("RetryAfter = %v, want in (0, %v]", e.RetryAfter, window)
		}
	}
	throttled := func(perUsername, perAddress int) func(*sso.Config) {
		return func(cfg *sso.Config) {
			cfg.Throttle = sso.ThrottleConfig{PerUsername: perUsername, PerAddress: perAddress, Window: window}
		}
	}

	t.Run("per username, without checking the password, until the window passes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(3, 0))
		u := e.createUser(t, false)
		for range 3 {
			failLogin(t, e, u.Username, "192.0.2.1")
		}
		wantThrottled(t, login(e, u, "192.0.2.2")) // the right password, from another address
		e.clock.Advance(window)
		wantCode(t, login(e, u, "192.0.2.2"), "")
	})
	t.Run("per address, across usernames", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(0, 3))
		u := e.createUser(t, false)
		for range 3 {
			failLogin(t, e, uniqueName(t), "192.0.2.3")
		}
		wantThrottled(t, login(e, u, "192.0.2.3"))
		wantCode(t, login(e, u, "192.0.2.4"), "")
	})
	t.Run("a chosen remote address does not escape the client address's limit", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(0, 3))
		u := e.createUser(t, false)
		const clientAddr = "192.0.2.6"
		for i := range 3 {
			_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: uniqueName(t), Password: "wrong password",
				CurrentApp: testApp, RemoteAddr: fmt.Sprintf("198.51.100.%d", i+1), ClientAddr: clientAddr})
			wantCode(t, err, attrcache.CodeNotAllowed)
		}
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: u.password,
			CurrentApp: testApp, RemoteAddr: "198.51.100.99", ClientAddr: clientAddr})
		wantThrottled(t, err)
		// The failures counted against the client address, not against the addresses they named.
		wantCode(t, login(e, u, "198.51.100.1"), "")
	})
	t.Run("a success resets the username count", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(3, 0))
		u := e.createUser(t, false)
		failLogin(t, e, u.Username, testAddr)
		failLogin(t, e, u.Username, testAddr)
		wantCode(t, login(e, u, testAddr), "")
		failLogin(t, e, u.Username, testAddr)
		failLogin(t, e, u.Username, testAddr)
		wantCode(t, login(e, u, testAddr), "")
	})
	t.Run("a success keeps the address count", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(0, 3))
		u := e.createUser(t, false)
		failLogin(t, e, uniqueName(t), "192.0.2.5")
		failLogin(t, e, uniqueName(t), "192.0.2.5")
		wantCode(t, login(e, u, "192.0.2.5"), "")
		failLogin(t, e, uniqueName(t), "192.0.2.5")
		wantThrottled(t, login(e, u, "192.0.2.5"))
	})
	t.Run("disabled limits never throttle", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(0, 0))
		u := e.createUser(t, false)
		for range 20 {
			failLogin(t, e, u.Username, testAddr)
		}
		wantCode(t, login(e, u, testAddr), "")
	})
}
