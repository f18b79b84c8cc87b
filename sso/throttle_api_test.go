package sso_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestOldPasswordThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const window = time.Minute
	throttled := func(perUsername, perAddress int) func(*sso.Config) {
		return func(cfg *sso.Config) {
			cfg.Throttle = sso.ThrottleConfig{PerUsername: perUsername, PerAddress: perAddress, Window: window}
		}
	}
	wrongOld := func(u user) sso.ChangePasswordInput {
		return sso.ChangePasswordInput{OldPassword: "wrong " + u.password, NewPassword: newPassword}
	}
	rightOld := func(u user) sso.ChangePasswordInput {
		return sso.ChangePasswordInput{OldPassword: u.password, NewPassword: newPassword}
	}

	t.Run("per username, shared with login, without checking the password", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(3, 0))
		u := e.createUser(t, false)
		ust := e.login(t, u)
		for range 3 {
			wantCode(t, e.api.ChangePassword(ctx, "cid", wrongOld(u), ust, testApp, "192.0.2.21"), attrcache.CodeNotAllowed)
		}
		wantThrottledWithin(t, e.api.ChangePassword(ctx, "cid", rightOld(u), ust, testApp, "192.0.2.22"), window)
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, RemoteAddr: "192.0.2.23"})
		wantThrottledWithin(t, err, window)
		e.clock.Advance(window)
		wantCode(t, e.api.ChangePassword(ctx, "cid", rightOld(u), ust, testApp, "192.0.2.22"), "")
	})
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, throttled(0, 3))
		const addr = "192.0.2.24"
		for range 3 {
			u := e.createUser(t, false)
			wantCode(t, e.api.ChangePassword(ctx, "cid", wrongOld(u), e.login(t, u), testApp, addr), attrcache.CodeNotAllowed)
		}
		u := e.createUser(t, false)
		ust := e.login(t, u)
		wantThrottledWithin(t, e.api.ChangePassword(ctx, "cid", rightOld(u), ust, testApp, addr), window)
		wantCode(t, e.api.ChangePassword(ctx, "cid", rightOld(u), ust, testApp, "192.0.2.25"), "")
	})
}

func TestSignupThrottle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const perAddress, window = 3, time.Hour
	e := newEnv(t, func(cfg *sso.Config) {
		cfg.SignupThrottle = sso.SignupThrottleConfig{PerAddress: perAddress, Window: window}
	})
	signup := func(addr, password string) error {
		_, err := e.api.Signup(ctx, "cid", sso.SignupInput{Username: uniqueName(t), Password: password, CurrentApp: signupApp, RemoteAddr: addr})
		return err
	}
	const addr = "198.51.100.30"
	wantCode(t, signup(addr, "short"), attrcache.CodePasswordTooShort) // refused attempts count too
	for range perAddress - 1 {
		wantCode(t, signup(addr, testPassword), "")
	}
	wantThrottledWithin(t, signup(addr, testPassword), window)
	wantCode(t, signup("198.51.100.31", testPassword), "")
	wantCode(t, signup("2001:db8:1:2::1", testPassword), "")
	wantCode(t, signup("2001:db8:1:2::2", testPassword), "")
	wantCode(t, signup("2001:db8:1:2:ffff::3", testPassword), "")
	wantThrottledWithin(t, signup("2001:db8:1:2::4", testPassword), window) // an IPv6 /64 counts as one address
	e.clock.Advance(window)
	wantCode(t, signup(addr, testPassword), "")
}

// unavailableCounter is a shared counter whose backend cannot be reached.
type unavailableCounter struct{}

var errUnavailable = attrcache.Unavailable(errors.New("shared counter unreachable"))

func (unavailableCounter) RetryAfter(context.Context, []attrcache.FailureLimit) (time.Duration, error) {
	return 0, errUnavailable
}
func (unavailableCounter) AddFailure(context.Context, []attrcache.FailureLimit) error {
	return errUnavailable
}
func (unavailableCounter) ResetFailures(context.Context, string, string) error { return errUnavailable }

func TestThrottleWithoutItsSharedCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(cfg *sso.Config) {
		cfg.Throttle = sso.ThrottleConfig{PerUsername: 3, Window: time.Minute, Counter: unavailableCounter{}}
	})
	u := e.createUser(t, false)
	e.login(t, u) // a failing shared counter never fails a login
	for i := range 3 {
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: fmt.Sprint("wrong", i), CurrentApp: testApp, RemoteAddr: testAddr})
		wantCode(t, err, attrcache.CodeNotAllowed)
	}
	_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: u.password, CurrentApp: testApp, RemoteAddr: testAddr})
	wantThrottledWithin(t, err, time.Minute)
}

func wantThrottledWithin(t *testing.T, err error, window time.Duration) {
	t.Helper()
	e := wantKind(t, err, attrcache.KindThrottled, attrcache.CodeNotAllowed)
	if e != nil && (e.RetryAfter <= 0 || e.RetryAfter > window) {
		t.Errorf("RetryAfter = %v, want in (0, %v]", e.RetryAfter, window)
	}
}
