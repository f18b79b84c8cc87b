package sso_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestCreateUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, ust := e.superUser(t)
	now := e.clock.Now()

	t.Run("every field", func(t *testing.T) {
		in := sso.CreateUserInput{
			Username:           uniqueName(t),
			Password:           ptr(testPassword),
			Email:              ptr("not an e-mail address"),
			FirstName:          ptr("  Ada "),
			MiddleName:         ptr(""),
			LastName:           ptr("Lovelace"),
			IsLocked:           true,
			PasswordMustChange: true,
			IsTOTPEnabled:      true,
			TOTPLabel:          ptr("phone"),
			SignUpStatus:       attrcache.SignUpBeforeConfirmation,
		}
		u, err := e.api.CreateUser(ctx, "cid", in, ust, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			field     string
			got, want any
		}{
			{"user_id prefix", strings.HasPrefix(u.UserID, attrcache.UserIDPrefix), true},
			{"username", u.Username, in.Username},
			{"email", deref(u.Email), "not an e-mail address"},
			{"first_name", deref(u.FirstName), "Ada"},
			{"middle_name is NULL", u.MiddleName == nil, true},
			{"display_name", deref(u.DisplayName), "Ada Lovelace"},
			{"is_locked", u.IsLocked, true},
			{"locked_by", deref(u.LockedBy), super.UserID},
			{"locked_time", u.LockedTime != nil && u.LockedTime.Equal(now), true},
			{"password_must_change", u.PasswordMustChange, true},
			{"password_expiry", u.PasswordExpiry.Equal(now.Add(730 * 24 * time.Hour)), true},
			{"is_totp_enabled", u.IsTOTPEnabled, true},
			{"totp_label", deref(u.TOTPLabel), "phone"},
			{"sign_up_status", u.SignUpStatus, attrcache.SignUpBeforeConfirmation},
			{"approval_status", u.ApprovalStatus, attrcache.ApprovalBeforeDecision},
			{"approval_status_mod_by", u.ApprovalStatusModBy, super.UserID},
			{"is_super_user", u.IsSuperUser, false},
			{"is_active", u.IsActive, true},
			{"secrets cleared", u.PasswordHash + u.TOTPKey + u.SignUpConfirmToken, ""},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		u, err := e.api.CreateUser(ctx, "cid", sso.CreateUserInput{Username: uniqueName(t), AutoApprove: true}, ust, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if u.SignUpStatus != attrcache.SignUpFinal || u.ApprovalStatus != attrcache.ApprovalApproved ||
			u.DisplayName != nil || u.Email != nil || u.IsLocked || u.LockedTime != nil {
			t.Errorf("got sign-up %s, approval %s, display %v, email %v, locked %v %v; want final, approved, nil, nil, false, nil",
				u.SignUpStatus, u.ApprovalStatus, u.DisplayName, u.Email, u.IsLocked, u.LockedTime)
		}
	})
	t.Run("approved when approval is not needed", func(t *testing.T) {
		e := newEnv(t, func(cfg *sso.Config) { cfg.ApprovalNeeded = false })
		_, ust := e.superUser(t)
		u, err := e.api.CreateUser(ctx, "cid", sso.CreateUserInput{Username: uniqueName(t)}, ust, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if u.ApprovalStatus != attrcache.ApprovalApproved {
			t.Errorf("approval_status = %s, want approved", u.ApprovalStatus)
		}
	})

	_, regularUST := e.regularUser(t)
	taken := e.createUser(t, false)
	tests := []struct {
		name     string
		in       sso.CreateUserInput
		ust, app string
		wantCode string
	}{
		{"unknown app", sso.CreateUserInput{Username: uniqueName(t)}, ust, "nope", attrcache.CodeAppInvalid},
		{"bad UST", sso.CreateUserInput{Username: uniqueName(t)}, "garbage", testApp, attrcache.CodeNoSuchSession},
		{"regular caller", sso.CreateUserInput{Username: uniqueName(t)}, regularUST, testApp, attrcache.CodeNotAllowed},
		{"no username", sso.CreateUserInput{}, ust, testApp, attrcache.CodeUsernameInvalid},
		{"username taken", sso.CreateUserInput{Username: taken.Username}, ust, testApp, attrcache.CodeUsernameExists},
		{"bad sign_up_status", sso.CreateUserInput{Username: uniqueName(t), SignUpStatus: "to_approve"}, ust, testApp, attrcache.CodeInvalidInput},
		{"password too short", sso.CreateUserInput{Username: uniqueName(t), Password: ptr("short")}, ust, testApp, attrcache.CodePasswordTooShort},
		{"password rejected", sso.CreateUserInput{Username: uniqueName(t), Password: ptr("Password4Me")}, ust, testApp, attrcache.CodePasswordInvalid},
		{"TOTP key not base32", sso.CreateUserInput{Username: uniqueName(t), TOTPKey: ptr("not base32!")}, ust, testApp, attrcache.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.CreateUser(ctx, "cid", tt.in, tt.ust, tt.app, testAddr)
			wantCode(t, err, tt.wantCode)
		})
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	regular, regularUST := e.regularUser(t)

	t.Run("current user", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			ust      string
			want     user
			wantFull bool
		}{
			{"regular", regularUST, regular, false},
			{"super-user", superUST, super, true},
		} {
			view, err := e.api.GetCurrentUser(ctx, "cid", tt.ust, testApp, testAddr)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if view.User.UserID != tt.want.UserID || view.Full != tt.wantFull {
				t.Errorf("%s: got %s full=%v, want %s full=%v", tt.name, view.User.UserID, view.Full, tt.want.UserID, tt.wantFull)
			}
			if view.User.PasswordHash != "" || view.User.TOTPKey != "" {
				t.Errorf("%s: the view holds secrets", tt.name)
			}
		}
	})
	t.Run("by id", func(t *testing.T) {
		view, err := e.api.GetUserByID(ctx, "cid", regular.UserID, superUST, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if view.User.Username != regular.Username || !view.Full {
			t.Errorf("got %s full=%v, want %s full=true", view.User.Username, view.Full, regular.Username)
		}
	})
	for _, tt := range []struct {
		name, userID, ust, wantCode string
	}{
		{"by id, regular caller", super.UserID, regularUST, attrcache.CodeNotAllowed},
		{"by id, unknown user", attrcache.NewUserID(), superUST, attrcache.CodeNotAllowed},
		{"by id, bad UST", regular.UserID, "garbage", attrcache.CodeNoSuchSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.GetUserByID(ctx, "cid", tt.userID, tt.ust, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
		})
	}
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	victim, victimUST := e.regularUser(t)
	_, regularUST := e.regularUser(t)

	for _, tt := range []struct {
		name, userID, ust, wantCode string
	}{
		{"regular caller", victim.UserID, regularUST, attrcache.CodeNotAllowed},
		{"no user_id", "", superUST, attrcache.CodeInvalidOperation},
		{"unknown user", attrcache.NewUserID(), superUST, attrcache.CodeInvalidOperation},
		{"self", super.UserID, superUST, attrcache.CodeInvalidOperation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, e.api.DeleteUserByID(ctx, "cid", tt.userID, tt.ust, testApp, testAddr), tt.wantCode)
		})
	}
	t.Run("success ends the user's sessions", func(t *testing.T) {
		if err := e.api.DeleteUserByID(ctx, "cid", victim.UserID, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		_, err := e.api.GetCurrentUser(ctx, "cid", victimUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeNoSuchSession)
		_, err = e.api.GetUserByID(ctx, "cid", victim.UserID, superUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeNotAllowed)
	})
}

func TestApproveAndReject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	_, regularUST := e.regularUser(t)

	pending, err := e.api.CreateUser(ctx, "cid", sso.CreateUserInput{Username: uniqueName(t), Password: ptr(testPassword)}, superUST, testApp, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("approve lets the user log in", func(t *testing.T) {
		if err := e.api.ApproveUser(ctx, "cid", pending.UserID, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		e.login(t, user{User: pending, password: testPassword})
		got := e.getUser(t, pending.UserID)
		if got.ApprovalStatus != attrcache.ApprovalApproved || got.ApprovalStatusModBy != super.UserID {
			t.Errorf("approval = %s by %s, want approved by %s", got.ApprovalStatus, got.ApprovalStatusModBy, super.UserID)
		}
	})
	t.Run("reject ends the user's sessions at once", func(t *testing.T) {
		victim, victimUST := e.regularUser(t)
		if err := e.api.RejectUser(ctx, "cid", victim.UserID, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		_, err := e.api.GetCurrentUser(ctx, "cid", victimUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeNoSuchSession)
		_, err = e.api.Login(ctx, "cid", sso.LoginInput{Username: victim.Username, Password: victim.password, CurrentApp: testApp})
		wantCode(t, err, attrcache.CodeNotAllowed)
	})
	for _, tt := range []struct {
		name     string
		call     func(ctx context.Context, cid, userID, ust, app, remoteAddr string) error
		userID   string
		ust      string
		wantCode string
	}{
		{"approve by a regular user", e.api.ApproveUser, pending.UserID, regularUST, attrcache.CodeInvalidInput},
		{"reject by a regular user", e.api.RejectUser, pending.UserID, regularUST, attrcache.CodeInvalidInput},
		{"approve an unknown user", e.api.ApproveUser, attrcache.NewUserID(), superUST, attrcache.CodeNotAllowed},
		{"reject an unknown user", e.api.RejectUser, attrcache.NewUserID(), superUST, attrcache.CodeNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(ctx, "cid", tt.userID, tt.ust, testApp, testAddr), tt.wantCode)
		})
	}
}

func TestLockAndUnlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	victim, victimUST := e.regularUser(t)

	if err := e.api.LockUser(ctx, "cid", victim.UserID, superUST, testApp, testAddr); err != nil {
		t.Fatal(err)
	}
	_, err := e.api.GetCurrentUser(ctx, "cid", victimUST, testApp, testAddr)
	wantCode(t, err, attrcache.CodeLocked)
	locked := e.getUser(t, victim.UserID)
	if !locked.IsLocked || deref(locked.LockedBy) != super.UserID || locked.LockedTime == nil || !locked.LockedTime.Equal(e.clock.Now()) {
		t.Errorf("locked = %v by %v at %v, want true by %s at %v", locked.IsLocked, locked.LockedBy, locked.LockedTime, super.UserID, e.clock.Now())
	}

	if err := e.api.UnlockUser(ctx, "cid", victim.UserID, superUST, testApp, testAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.GetCurrentUser(ctx, "cid", victimUST, testApp, testAddr); err != nil {
		t.Errorf("the session after unlocking: %v", err)
	}
	unlocked := e.getUser(t, victim.UserID)
	if unlocked.IsLocked || unlocked.LockedBy != nil || unlocked.LockedTime != nil {
		t.Errorf("unlocked = %v by %v at %v, want false, nil, nil", unlocked.IsLocked, unlocked.LockedBy, unlocked.LockedTime)
	}

	for _, tt := range []struct {
		name     string
		call     func(ctx context.Context, cid, userID, ust, app, remoteAddr string) error
		userID   string
		ust      string
		wantCode string
	}{
		{"lock by a regular user", e.api.LockUser, super.UserID, victimUST, attrcache.CodeNotAllowed},
		{"unlock by a regular user", e.api.UnlockUser, super.UserID, victimUST, attrcache.CodeNotAllowed},
		{"lock an unknown user", e.api.LockUser, attrcache.NewUserID(), superUST, attrcache.CodeNotAllowed},
		{"unlock an unknown user", e.api.UnlockUser, attrcache.NewUserID(), superUST, attrcache.CodeNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(ctx, "cid", tt.userID, tt.ust, testApp, testAddr), tt.wantCode)
		})
	}
}

func TestResetTOTPKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	regular, regularUST := e.regularUser(t, withTOTP, func(in *sso.CreateUserInput) { in.IsTOTPEnabled = false })

	t.Run("own key, generated", func(t *testing.T) {
		key, err := e.api.ResetTOTPKey(ctx, "cid", "", "", "laptop", regularUST, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if key == totpKey {
			t.Fatal("the key was not replaced")
		}
		if _, err := attrcache.DecodeTOTPKey(key); err != nil {
			t.Fatalf("generated key %q: %v", key, err)
		}
		if label := deref(e.getUser(t, regular.UserID).TOTPLabel); label != "laptop" {
			t.Errorf("totp_label = %q, want laptop", label)
		}
	})
	t.Run("another user's key, given, used at login", func(t *testing.T) {
		target := e.createUser(t, false, func(in *sso.CreateUserInput) { in.IsTOTPEnabled = true })
		key, err := e.api.ResetTOTPKey(ctx, "cid", target.UserID, totpKey, "", superUST, testApp, testAddr)
		if err != nil || key != totpKey {
			t.Fatalf("ResetTOTPKey = %q, %v; want %q", key, err, totpKey)
		}
		_, err = e.api.Login(ctx, "cid", sso.LoginInput{
			Username: target.Username, Password: target.password, CurrentApp: testApp, TOTPCode: totpCode(t, e.clock.Now()),
		})
		wantCode(t, err, "")
	})
	for _, tt := range []struct {
		name, userID, key, ust, wantCode string
	}{
		{"regular user naming themselves", regular.UserID, "", regularUST, attrcache.CodeInvalidInput},
		{"regular user naming another", super.UserID, "", regularUST, attrcache.CodeInvalidInput},
		{"unknown user", attrcache.NewUserID(), "", superUST, attrcache.CodeNotAllowed},
		{"key not base32", "", "not base32!", regularUST, attrcache.CodeInvalidInput},
		{"bad UST", "", "", "garbage", attrcache.CodeNoSuchSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.ResetTOTPKey(ctx, "cid", tt.userID, tt.key, "", tt.ust, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
		})
	}
}
