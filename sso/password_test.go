package sso_test

import (
	"context"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

const newPassword = "a brand new passphrase"

func TestChangeOwnPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	tests := []struct {
		name     string
		super    bool
		in       func(u user) sso.ChangePasswordInput
		wantCode string
	}{
		{"right old password", false, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{OldPassword: u.password, NewPassword: newPassword}
		}, ""},
		{"own user_id named", false, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{UserID: u.UserID, OldPassword: u.password, NewPassword: newPassword}
		}, ""},
		{"wrong old password", false, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{OldPassword: "wrong " + u.password, NewPassword: newPassword}
		}, attrcache.CodeNotAllowed},
		{"no old password", false, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{NewPassword: newPassword}
		}, attrcache.CodeNotAllowed},
		{"new password fails the policy", false, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{OldPassword: u.password, NewPassword: "short"}
		}, attrcache.CodeNotAllowed},
		{"super-user, policy failure is still generic", true, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{OldPassword: u.password, NewPassword: "short"}
		}, attrcache.CodeNotAllowed},
		{"super-user still needs the old password", true, func(u user) sso.ChangePasswordInput {
			return sso.ChangePasswordInput{UserID: u.UserID, NewPassword: newPassword}
		}, attrcache.CodeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.createUser(t, tt.super)
			ust := e.login(t, u)
			err := e.api.ChangePassword(ctx, "cid", tt.in(u), ust, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
			working := user{User: u.User, password: u.password}
			if err == nil {
				working.password = newPassword
			}
			e.login(t, working)
		})
	}
}

func TestChangeAnotherUsersPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	_, regularUST := e.regularUser(t)

	t.Run("expiry in days and must change", func(t *testing.T) {
		u := e.createUser(t, false)
		in := sso.ChangePasswordInput{UserID: u.UserID, NewPassword: newPassword, PasswordExpiryDays: 10, MustChange: true}
		if err := e.api.ChangePassword(ctx, "cid", in, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		got := e.getUser(t, u.UserID)
		if want := e.clock.Now().Add(10 * 24 * time.Hour); !got.PasswordExpiry.Equal(want) || !got.PasswordMustChange {
			t.Errorf("password_expiry, must_change = %v, %v; want %v, true", got.PasswordExpiry, got.PasswordMustChange, want)
		}
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: newPassword, CurrentApp: testApp})
		wantCode(t, err, attrcache.CodePasswordMustSendNew)
	})
	t.Run("no expiry is the default", func(t *testing.T) {
		u := e.createUser(t, false)
		in := sso.ChangePasswordInput{UserID: u.UserID, NewPassword: newPassword, PasswordExpiryDays: -3}
		if err := e.api.ChangePassword(ctx, "cid", in, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		if got, want := e.getUser(t, u.UserID).PasswordExpiry, e.clock.Now().Add(730*24*time.Hour); !got.Equal(want) {
			t.Errorf("password_expiry = %v, want %v", got, want)
		}
		e.login(t, user{User: u.User, password: newPassword})
	})
	target := e.createUser(t, false)
	for _, tt := range []struct {
		name     string
		in       sso.ChangePasswordInput
		ust      string
		wantCode string
	}{
		{"policy: too short", sso.ChangePasswordInput{UserID: target.UserID, NewPassword: "short"}, superUST, attrcache.CodePasswordTooShort},
		{"policy: rejected word", sso.ChangePasswordInput{UserID: target.UserID, NewPassword: "letmein-now"}, superUST, attrcache.CodePasswordInvalid},
		{"unknown user", sso.ChangePasswordInput{UserID: attrcache.NewUserID(), NewPassword: newPassword}, superUST, attrcache.CodeNotAllowed},
		{"regular caller", sso.ChangePasswordInput{UserID: target.UserID, NewPassword: newPassword}, regularUST, attrcache.CodeInvalidInput},
		{"bad UST", sso.ChangePasswordInput{UserID: target.UserID, NewPassword: newPassword}, "garbage", attrcache.CodeNoSuchSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, e.api.ChangePassword(ctx, "cid", tt.in, tt.ust, testApp, testAddr), tt.wantCode)
		})
	}
}
