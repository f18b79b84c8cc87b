package sso_test

import (
	"context"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestSessionExpiresWithoutRenewal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, ust := e.regularUser(t)
	e.clock.Advance(59 * time.Minute)
	if _, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr); err != nil {
		t.Fatalf("one minute before expiry: %v", err)
	}
	e.clock.Advance(time.Minute)
	_, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr)
	wantCode(t, err, attrcache.CodeNoSuchSession)
}

func TestRenewSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, ust := e.regularUser(t)
	e.clock.Advance(30 * time.Minute)
	expiry, err := e.api.RenewSession(ctx, "cid", ust, testApp, "198.51.100.7")
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(60 * time.Minute); !expiry.Equal(want) {
		t.Errorf("RenewSession = %v, want %v", expiry, want)
	}
	e.clock.Advance(45 * time.Minute) // past the first expiry
	sessions, err := e.api.ListSessions(ctx, "cid", ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("after the first expiry: %v", err)
	}
	history := sessions[0].StateChanges
	if len(history) != 2 || history[1].CtxSource != "renew" || history[1].Idx != 2 || history[1].RemoteAddr != "198.51.100.7" {
		t.Errorf("history = %+v, want login then renew (idx 2, from 198.51.100.7)", history)
	}
	e.clock.Advance(15 * time.Minute)
	_, err = e.api.RenewSession(ctx, "cid", ust, testApp, testAddr)
	wantCode(t, err, attrcache.CodeNoSuchSession)
}

func TestGetAndVerifySession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	target, targetUST := e.regularUser(t)

	t.Run("get", func(t *testing.T) {
		s, err := e.api.GetSession(ctx, "cid", targetUST, superUST, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if s.UserID != target.UserID || s.RemoteAddr != testAddr || s.UserAgent != "test" {
			t.Errorf("session = %s %q %q, want %s %q %q", s.UserID, s.RemoteAddr, s.UserAgent, target.UserID, testAddr, "test")
		}
	})
	for _, tt := range []struct {
		name, target, current, wantGetCode string
		wantValid                          bool
	}{
		{"live target", targetUST, superUST, "", true},
		{"missing target", "", superUST, attrcache.CodeNoSuchSession, false},
		{"garbage target", "garbage", superUST, attrcache.CodeNoSuchSession, false},
		{"regular caller", superUST, targetUST, attrcache.CodeNotAllowed, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.GetSession(ctx, "cid", tt.target, tt.current, testApp, testAddr)
			wantCode(t, err, tt.wantGetCode)
			valid, err := e.api.VerifySession(ctx, "cid", tt.target, tt.current, testApp, testAddr)
			if tt.wantGetCode == attrcache.CodeNotAllowed {
				wantCode(t, err, attrcache.CodeNotAllowed)
				return
			}
			if err != nil || valid != tt.wantValid {
				t.Errorf("VerifySession = %v, %v; want %v, nil", valid, err, tt.wantValid)
			}
		})
	}
	t.Run("locked owner", func(t *testing.T) {
		u, ust := e.regularUser(t)
		if err := e.api.LockUser(ctx, "cid", u.UserID, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		valid, err := e.api.VerifySession(ctx, "cid", ust, superUST, testApp, testAddr)
		if err != nil || valid {
			t.Errorf("VerifySession = %v, %v; want false, nil", valid, err)
		}
		_, err = e.api.GetSession(ctx, "cid", ust, superUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeLocked)
	})
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	u := e.createUser(t, false)
	first := e.login(t, u)
	e.clock.Advance(30 * time.Minute)
	second := e.login(t, u)
	sessions, err := e.api.ListSessions(ctx, "cid", second, testApp, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 {
		t.Fatalf("got %d sessions, want 2", len(sessions))
	}
	e.clock.Advance(31 * time.Minute) // the first has ended
	sessions, err = e.api.ListSessions(ctx, "cid", second, testApp, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 {
		t.Errorf("got %d sessions after the first ended, want 1", len(sessions))
	}
	_, err = e.api.ListSessions(ctx, "cid", first, testApp, testAddr)
	wantCode(t, err, attrcache.CodeNoSuchSession)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, ust := e.regularUser(t)
	wantKind(t, e.api.Logout(ctx, "cid", ust, "nope", testAddr), attrcache.KindAppInvalid, attrcache.CodeAppInvalid)
	for _, garbage := range []string{"", "garbage", "ac1.k1.AAAA"} {
		wantCode(t, e.api.Logout(ctx, "cid", garbage, testApp, testAddr), "")
	}
	wantCode(t, e.api.Logout(ctx, "cid", ust, testApp, testAddr), "")
	_, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr)
	wantCode(t, err, attrcache.CodeNoSuchSession)
	wantCode(t, e.api.Logout(ctx, "cid", ust, testApp, testAddr), "")
}

func TestPasswordExpiryEndsSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	u, ust := e.regularUser(t)
	expiry := e.clock.Now().Add(10 * time.Minute)
	if err := e.api.UpdateUserByID(ctx, "cid", u.UserID, map[string]any{"password_expiry": expiry}, superUST, testApp, testAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr); err != nil {
		t.Fatalf("before the expiry: %v", err)
	}
	e.clock.Advance(11 * time.Minute)
	_, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr)
	wantCode(t, err, attrcache.CodePasswordExpired)
}

func TestUSTCallsCheckTheAppFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, ust := e.regularUser(t)
	_, err := e.api.GetCurrentUser(ctx, "cid", ust, "nope", testAddr)
	wantKind(t, err, attrcache.KindAppInvalid, attrcache.CodeAppInvalid)
	_, err = e.api.ListSessions(ctx, "cid", "garbage", "nope", testAddr)
	wantKind(t, err, attrcache.KindAppInvalid, attrcache.CodeAppInvalid)
}
