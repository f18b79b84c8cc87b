package sso_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestUpdateCurrentUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	other := e.createUser(t, false)

	tests := []struct {
		name     string
		data     map[string]any
		wantCode string
		// check looks at the user after a successful update; before is the user before it.
		check func(t *testing.T, before, after *attrcache.User)
	}{
		{
			name: "names and e-mail",
			data: map[string]any{"display_name": "Ada L.", "email": "ada@example.com", "last_name": "Lovelace"},
			check: func(t *testing.T, before, after *attrcache.User) {
				if deref(after.DisplayName) != "Ada L." || deref(after.Email) != "ada@example.com" || deref(after.LastName) != "Lovelace" {
					t.Errorf("got %v %v %v, want Ada L. ada@example.com Lovelace", after.DisplayName, after.Email, after.LastName)
				}
			},
		},
		{
			name: "null clears, absent keeps",
			data: map[string]any{"email": nil, "totp_label": nil},
			check: func(t *testing.T, before, after *attrcache.User) {
				if after.Email != nil || after.TOTPLabel != nil {
					t.Errorf("email, totp_label = %v, %v; want nil, nil", after.Email, after.TOTPLabel)
				}
				if deref(after.FirstName) != deref(before.FirstName) || after.Username != before.Username {
					t.Errorf("first_name, username = %v, %s; want them unchanged (%v, %s)", after.FirstName, after.Username, before.FirstName, before.Username)
				}
			},
		},
		{
			name: "is_totp_enabled null is false",
			data: map[string]any{"is_totp_enabled": nil},
			check: func(t *testing.T, before, after *attrcache.User) {
				if after.IsTOTPEnabled {
					t.Error("is_totp_enabled = true, want false")
				}
			},
		},
		{
			name: "keys outside both lists are ignored",
			data: map[string]any{"is_approved": true, "totp_key": "JBSWY3DP", "user_id": "x", "first_name": "Grace"},
			check: func(t *testing.T, before, after *attrcache.User) {
				if deref(after.FirstName) != "Grace" {
					t.Errorf("first_name = %v, want Grace", after.FirstName)
				}
			},
		},
		{name: "no key at all", data: map[string]any{}, wantCode: attrcache.CodeMissingInput},
		{name: "only ignored keys", data: map[string]any{"is_approved": true}, wantCode: attrcache.CodeMissingInput},
		{name: "only a null that counts as absent", data: map[string]any{"is_locked": nil}, wantCode: attrcache.CodeMissingInput},
		{name: "a super-user key", data: map[string]any{"first_name": "x", "is_locked": false}, wantCode: attrcache.CodeInvalidInput},
		{name: "username null", data: map[string]any{"username": nil, "first_name": "x"}, wantCode: attrcache.CodeInvalidInput},
		{name: "username empty", data: map[string]any{"username": ""}, wantCode: attrcache.CodeInvalidInput},
		{name: "username taken", data: map[string]any{"username": other.Username}, wantCode: attrcache.CodeUsernameExists},
		{name: "a number for a string", data: map[string]any{"email": json.Number("5")}, wantCode: attrcache.CodeInvalidInput},
		{name: "a string for a boolean", data: map[string]any{"is_totp_enabled": "true"}, wantCode: attrcache.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ust := e.regularUser(t, withTOTP, func(in *sso.CreateUserInput) {
				in.FirstName, in.Email, in.TOTPLabel = ptr("First"), ptr("old@example.com"), ptr("label")
			})
			err := e.api.UpdateCurrentUser(ctx, "cid", tt.data, ust, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
			if tt.check != nil {
				tt.check(t, u.User, e.getUser(t, u.UserID))
			}
		})
	}
	t.Run("own username again", func(t *testing.T) {
		u, ust := e.regularUser(t)
		wantCode(t, e.api.UpdateCurrentUser(ctx, "cid", map[string]any{"username": u.Username}, ust, testApp, testAddr), "")
	})
	t.Run("a regular user naming another user", func(t *testing.T) {
		_, ust := e.regularUser(t)
		err := e.api.UpdateUserByID(ctx, "cid", other.UserID, map[string]any{"first_name": "x"}, ust, testApp, testAddr)
		wantCode(t, err, attrcache.CodeInvalidInput)
	})
	t.Run("a regular user naming themselves", func(t *testing.T) {
		u, ust := e.regularUser(t)
		if err := e.api.UpdateUserByID(ctx, "cid", u.UserID, map[string]any{"first_name": "Self"}, ust, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		if got := deref(e.getUser(t, u.UserID).FirstName); got != "Self" {
			t.Errorf("first_name = %q, want Self", got)
		}
	})
	t.Run("order: unknown app, then no key, then the session", func(t *testing.T) {
		wantCode(t, e.api.UpdateCurrentUser(ctx, "cid", map[string]any{}, "garbage", "nope", testAddr), attrcache.CodeAppInvalid)
		wantCode(t, e.api.UpdateCurrentUser(ctx, "cid", map[string]any{}, "garbage", testApp, testAddr), attrcache.CodeMissingInput)
		wantCode(t, e.api.UpdateCurrentUser(ctx, "cid", map[string]any{"email": nil}, "garbage", testApp, testAddr), attrcache.CodeNoSuchSession)
	})
}

func TestUpdateUserByIDSuperUserKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	super, superUST := e.superUser(t)
	expiry := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

	tests := []struct {
		name     string
		data     map[string]any
		wantCode string
		check    func(t *testing.T, before, after *attrcache.User)
	}{
		{
			name: "lock",
			data: map[string]any{"is_locked": true},
			check: func(t *testing.T, before, after *attrcache.User) {
				if !after.IsLocked || deref(after.LockedBy) != super.UserID || after.LockedTime == nil {
					t.Errorf("locked = %v by %v at %v, want true by %s", after.IsLocked, after.LockedBy, after.LockedTime, super.UserID)
				}
			},
		},
		{
			name: "password_expiry as a string, must change",
			data: map[string]any{"password_expiry": "2031-05-06T07:08:09.123456", "password_must_change": true},
			check: func(t *testing.T, before, after *attrcache.User) {
				if !after.PasswordExpiry.Equal(expiry) || !after.PasswordMustChange {
					t.Errorf("password_expiry, must_change = %v, %v; want %v, true", after.PasswordExpiry, after.PasswordMustChange, expiry)
				}
			},
		},
		{
			name: "password_expiry as a time.Time",
			data: map[string]any{"password_expiry": expiry.In(time.FixedZone("CET", 3600))},
			check: func(t *testing.T, before, after *attrcache.User) {
				if !after.PasswordExpiry.Equal(expiry) {
					t.Errorf("password_expiry = %v, want %v", after.PasswordExpiry, expiry)
				}
			},
		},
		{
			name: "nulls that count as absent",
			data: map[string]any{"password_expiry": nil, "is_locked": nil, "password_must_change": nil, "sign_up_status": "final"},
			check: func(t *testing.T, before, after *attrcache.User) {
				if !after.PasswordExpiry.Equal(before.PasswordExpiry) || after.IsLocked || after.PasswordMustChange {
					t.Errorf("password_expiry, is_locked, must_change = %v %v %v; want them unchanged", after.PasswordExpiry, after.IsLocked, after.PasswordMustChange)
				}
			},
		},
		{
			name: "approval and sign-up status",
			data: map[string]any{"approval_status": "before_decision", "sign_up_status": "before_confirmation"},
			check: func(t *testing.T, before, after *attrcache.User) {
				if after.ApprovalStatus != attrcache.ApprovalBeforeDecision || after.ApprovalStatusModBy != super.UserID ||
					after.SignUpStatus != attrcache.SignUpBeforeConfirmation {
					t.Errorf("approval %s by %s, sign-up %s; want before_decision by %s, before_confirmation",
						after.ApprovalStatus, after.ApprovalStatusModBy, after.SignUpStatus, super.UserID)
				}
			},
		},
		{name: "unparseable password_expiry", data: map[string]any{"password_expiry": "next tuesday"}, wantCode: attrcache.CodeInvalidInput},
		{name: "password_expiry a number", data: map[string]any{"password_expiry": 1.5}, wantCode: attrcache.CodeInvalidInput},
		{name: "is_locked a string", data: map[string]any{"is_locked": "yes"}, wantCode: attrcache.CodeInvalidInput},
		{name: "sign_up_status unknown", data: map[string]any{"sign_up_status": "to_approve"}, wantCode: attrcache.CodeInvalidInput},
		{name: "sign_up_status null", data: map[string]any{"sign_up_status": nil}, wantCode: attrcache.CodeInvalidInput},
		{name: "approval_status unknown", data: map[string]any{"approval_status": "maybe"}, wantCode: attrcache.CodeInvalidInput},
		{name: "approval_status null", data: map[string]any{"approval_status": nil}, wantCode: attrcache.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.createUser(t, false)
			err := e.api.UpdateUserByID(ctx, "cid", u.UserID, tt.data, superUST, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
			if tt.check != nil {
				tt.check(t, u.User, e.getUser(t, u.UserID))
			}
		})
	}
	t.Run("unlock clears locked_time and locked_by", func(t *testing.T) {
		u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.IsLocked = true })
		if err := e.api.UpdateUserByID(ctx, "cid", u.UserID, map[string]any{"is_locked": false}, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		if got := e.getUser(t, u.UserID); got.IsLocked || got.LockedBy != nil || got.LockedTime != nil {
			t.Errorf("locked = %v by %v at %v, want false, nil, nil", got.IsLocked, got.LockedBy, got.LockedTime)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		err := e.api.UpdateUserByID(ctx, "cid", attrcache.NewUserID(), map[string]any{"first_name": "x"}, superUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeNotAllowed)
	})
	t.Run("locking ends the user's sessions at once", func(t *testing.T) {
		u, ust := e.regularUser(t)
		if err := e.api.UpdateUserByID(ctx, "cid", u.UserID, map[string]any{"is_locked": true}, superUST, testApp, testAddr); err != nil {
			t.Fatal(err)
		}
		_, err := e.api.GetCurrentUser(ctx, "cid", ust, testApp, testAddr)
		wantCode(t, err, attrcache.CodeLocked)
	})
}
