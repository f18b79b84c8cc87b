package sso_test

import (
	"context"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestAdminCreateUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for _, superUser := range []bool{false, true} {
		in := sso.CreateUserInput{Username: uniqueName(t), Password: ptr(testPassword), SignUpStatus: attrcache.SignUpBeforeConfirmation}
		u, err := e.api.AdminCreateUser(ctx, in, superUser)
		if err != nil {
			t.Fatal(err)
		}
		wantSignUp := attrcache.SignUpBeforeConfirmation
		if superUser {
			wantSignUp = attrcache.SignUpFinal
		}
		if u.IsSuperUser != superUser || u.ApprovalStatus != attrcache.ApprovalApproved ||
			u.ApprovalStatusModBy != attrcache.ModByAuto || u.SignUpStatus != wantSignUp {
			t.Errorf("super=%v: got super %v, approval %s by %s, sign-up %s; want %v, approved by auto, %s",
				superUser, u.IsSuperUser, u.ApprovalStatus, u.ApprovalStatusModBy, u.SignUpStatus, superUser, wantSignUp)
		}
	}
	taken := e.createUser(t, false)
	_, err := e.api.AdminCreateUser(ctx, sso.CreateUserInput{Username: taken.Username}, true)
	wantCode(t, err, attrcache.CodeUsernameExists)
	_, err = e.api.AdminCreateUser(ctx, sso.CreateUserInput{}, true)
	wantCode(t, err, attrcache.CodeUsernameInvalid)
}

func TestAdminCallsByUsername(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	login := func(u user, password string) error {
		_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: u.Username, Password: password, CurrentApp: testApp, TOTPCode: totpCode(t, e.clock.Now())})
		return err
	}

	t.Run("lock and unlock", func(t *testing.T) {
		u := e.createUser(t, false)
		id, err := e.api.AdminSetLocked(ctx, u.Username, true)
		if err != nil || id != u.UserID {
			t.Fatalf("AdminSetLocked = %q, %v; want %q, nil", id, err, u.UserID)
		}
		wantCode(t, login(u, u.password), attrcache.CodeLocked)
		if got := e.getUser(t, u.UserID); deref(got.LockedBy) != attrcache.ModByAuto {
			t.Errorf("locked_by = %v, want auto", got.LockedBy)
		}
		if _, err := e.api.AdminSetLocked(ctx, u.Username, false); err != nil {
			t.Fatal(err)
		}
		wantCode(t, login(u, u.password), "")
	})
	t.Run("change password", func(t *testing.T) {
		u := e.createUser(t, false)
		if _, err := e.api.AdminChangePassword(ctx, u.Username, newPassword, 0, false); err != nil {
			t.Fatal(err)
		}
		wantCode(t, login(u, u.password), attrcache.CodeNotAllowed)
		wantCode(t, login(u, newPassword), "")
		if _, err := e.api.AdminChangePassword(ctx, u.Username, testPassword, 5, true); err != nil {
			t.Fatal(err)
		}
		wantCode(t, login(u, testPassword), attrcache.CodePasswordMustSendNew)
		_, err := e.api.AdminChangePassword(ctx, u.Username, "short", 0, false)
		wantCode(t, err, attrcache.CodePasswordTooShort)
	})
	t.Run("reset TOTP key", func(t *testing.T) {
		u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.IsTOTPEnabled = true })
		id, key, err := e.api.AdminResetTOTPKey(ctx, u.Username, totpKey)
		if err != nil || id != u.UserID || key != totpKey {
			t.Fatalf("AdminResetTOTPKey = %q, %q, %v; want %q, %q, nil", id, key, err, u.UserID, totpKey)
		}
		wantCode(t, login(u, u.password), "")
		if _, generated, err := e.api.AdminResetTOTPKey(ctx, u.Username, ""); err != nil || generated == "" || generated == totpKey {
			t.Errorf("AdminResetTOTPKey with no key = %q, %v; want a new key", generated, err)
		}
		_, _, err = e.api.AdminResetTOTPKey(ctx, u.Username, "not base32!")
		wantCode(t, err, attrcache.CodeInvalidInput)
	})
	t.Run("delete", func(t *testing.T) {
		u := e.createUser(t, false)
		id, err := e.api.AdminDeleteUser(ctx, u.Username)
		if err != nil || id != u.UserID {
			t.Fatalf("AdminDeleteUser = %q, %v; want %q, nil", id, err, u.UserID)
		}
		wantCode(t, login(u, u.password), attrcache.CodeNotAllowed)
	})
	t.Run("unknown username", func(t *testing.T) {
		unknown := uniqueName(t)
		calls := map[string]func() error{
			"AdminSetLocked":  func() error { _, err := e.api.AdminSetLocked(ctx, unknown, true); return err },
			"AdminDeleteUser": func() error { _, err := e.api.AdminDeleteUser(ctx, unknown); return err },
			"AdminChangePassword": func() error {
				_, err := e.api.AdminChangePassword(ctx, unknown, newPassword, 0, false)
				return err
			},
			"AdminResetTOTPKey": func() error { _, _, err := e.api.AdminResetTOTPKey(ctx, unknown, ""); return err },
		}
		for name, call := range calls {
			err := call()
			if e := wantKind(t, err, attrcache.KindDenied, attrcache.CodeNotAllowed); e.Message != "no such user" {
				t.Errorf("%s: message = %q, want %q", name, e.Message, "no such user")
			}
		}
	})
}
