package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/attrcache/attrcache/client"
)

func ptr[T any](v T) *T { return &v }

// wantCode fails the test unless err is a *client.Error of the HTTP status with code first in
// its sub_status, found by errors.Is and CodeOf alike.
func wantCode(t *testing.T, err error, httpStatus int, code client.Code) *client.Error {
	t.Helper()
	e, ok := errors.AsType[*client.Error](err)
	if !ok {
		t.Fatalf("error %v (%T), want a *client.Error with %s", err, err, code)
	}
	if e.HTTPStatus != httpStatus || e.Code() != code || !errors.Is(err, code) || client.CodeOf(err) != code {
		t.Fatalf("error %v: HTTP %d, code %q; want HTTP %d, %s", err, e.HTTPStatus, e.Code(), httpStatus, code)
	}
	if len(e.CID) != 24 {
		t.Errorf("error %v: cid %q, want 24 hex digits", err, e.CID)
	}
	return e
}

func TestUserCalls(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		run  func(t *testing.T, u testUser)
	}{
		{"GetUser shows a regular user their regular fields", func(t *testing.T, u testUser) {
			got, err := u.session.GetUser(ctx)
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if got.Username != u.username || got.UserID != "" {
				t.Errorf("GetUser: username %q, user_id %q; want %q and none (a super-user field)", got.Username, got.UserID, u.username)
			}
		}},
		{"GetUserByID shows a super-user every field", func(t *testing.T, u testUser) {
			got, err := admin.GetUserByID(ctx, u.id)
			if err != nil {
				t.Fatalf("GetUserByID: %v", err)
			}
			if got.UserID != u.id || got.ApprovalStatus != "approved" || got.IsSuperUser || got.PasswordLastSet.IsZero() {
				t.Errorf("GetUserByID = %+v, want user_id %s, approved, regular, password_last_set set", got, u.id)
			}
		}},
		{"UpdateUser sets and clears fields", func(t *testing.T, u testUser) {
			err := u.session.UpdateUser(ctx, client.UserChanges{DisplayName: ptr("Ann"), Email: ptr("ann@example.com")})
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			if err := u.session.UpdateUser(ctx, client.UserChanges{Clear: []string{"email"}}); err != nil {
				t.Fatalf("UpdateUser clearing email: %v", err)
			}
			got, err := u.session.GetUser(ctx)
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if got.DisplayName == nil || *got.DisplayName != "Ann" || got.Email != nil {
				t.Errorf("display_name %v, email %v; want Ann and null", got.DisplayName, got.Email)
			}
		}},
		{"UpdateUserByID with nothing to change is E008003", func(t *testing.T, u testUser) {
			wantCode(t, admin.UpdateUserByID(ctx, u.id, client.UserChanges{}), 403, client.CodeMissingInput)
		}},
		{"ChangePassword with the old one; the new one logs in", func(t *testing.T, u testUser) {
			err := u.session.ChangePassword(ctx, client.PasswordChange{OldPassword: u.password, NewPassword: "new-" + u.password})
			if err != nil {
				t.Fatalf("ChangePassword: %v", err)
			}
			if _, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: "new-" + u.password}); err != nil {
				t.Errorf("Login with the new password: %v", err)
			}
		}},
		{"LockUser refuses logins with E005002 until UnlockUser", func(t *testing.T, u testUser) {
			if err := admin.LockUser(ctx, u.id); err != nil {
				t.Fatalf("LockUser: %v", err)
			}
			_, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password})
			wantCode(t, err, 403, client.CodeLocked)
			if err := admin.UnlockUser(ctx, u.id); err != nil {
				t.Fatalf("UnlockUser: %v", err)
			}
			if _, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password}); err != nil {
				t.Errorf("Login after UnlockUser: %v", err)
			}
		}},
		{"RejectUser refuses logins until ApproveUser", func(t *testing.T, u testUser) {
			if err := admin.RejectUser(ctx, u.id); err != nil {
				t.Fatalf("RejectUser: %v", err)
			}
			_, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password})
			wantCode(t, err, 403, client.CodeNotAllowed)
			if err := admin.ApproveUser(ctx, u.id); err != nil {
				t.Fatalf("ApproveUser: %v", err)
			}
			if _, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password}); err != nil {
				t.Errorf("Login after ApproveUser: %v", err)
			}
		}},
		{"SearchUsers finds the user by exact name", func(t *testing.T, u testUser) {
			res, err := admin.SearchUsers(ctx, client.SearchQuery{Username: u.username, NameExact: true})
			if err != nil {
				t.Fatalf("SearchUsers: %v", err)
			}
			if res.Total != 1 || len(res.Users) != 1 || res.Users[0].UserID != u.id {
				t.Errorf("SearchUsers = %+v, want the one user %s", res, u.id)
			}
		}},
		{"a regular user's SearchUsers is E005001", func(t *testing.T, u testUser) {
			_, err := u.session.SearchUsers(ctx, client.SearchQuery{Username: u.username})
			wantCode(t, err, 403, client.CodeNotAllowed)
		}},
		{"DeleteUser ends the user and their sessions", func(t *testing.T, u testUser) {
			if err := admin.DeleteUser(ctx, u.id); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			_, err := admin.GetUserByID(ctx, u.id)
			wantCode(t, err, 403, client.CodeNotAllowed)
			_, err = u.session.GetUser(ctx)
			wantCode(t, err, 403, client.CodeNoSuchSession)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newUser(t)) })
	}
}

func TestCreateUser(t *testing.T) {
	ctx := t.Context()
	name := uniqueName("created")
	u, err := admin.CreateUser(ctx, client.NewUser{Username: name, Email: ptr("c@example.com"), DisplayName: ptr("Cee"), PasswordMustChange: true})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	t.Cleanup(func() { _ = admin.DeleteUser(ctx, u.UserID) })
	if u.Username != name || u.Email == nil || *u.Email != "c@example.com" || u.DisplayName == nil || !u.PasswordMustChange || len(u.UserID) != 30 {
		t.Errorf("CreateUser = %+v, want the fields sent and a user_id", u)
	}
	_, err = admin.CreateUser(ctx, client.NewUser{Username: name})
	wantCode(t, err, 403, client.CodeUsernameExists)
}

func TestLoginWarning(t *testing.T) {
	ctx := t.Context()
	u := newUser(t)
	soon := time.Now().Add(24 * time.Hour)
	if err := admin.UpdateUserByID(ctx, u.id, client.UserChanges{PasswordExpiry: &soon}); err != nil {
		t.Fatalf("UpdateUserByID(password_expiry): %v", err)
	}
	s, err := newClient(t).Login(ctx, client.Credentials{Username: u.username, Password: u.password})
	if err != nil {
		t.Fatalf("Login: %v, want a session with a warning", err)
	}
	if s.UST == "" || len(s.Warnings) != 1 || s.Warnings[0] != client.CodePasswordAboutToExpire {
		t.Errorf("Login: UST %q, warnings %v; want a UST and [W003005]", s.UST, s.Warnings)
	}
}

func TestLoginRefusals(t *testing.T) {
	ctx := t.Context()
	u := newUser(t)
	tests := []struct {
		name       string
		app        string
		cr         client.Credentials
		httpStatus int
		code       client.Code
	}{
		{"wrong password", app, client.Credentials{Username: u.username, Password: "wrong"}, 403, client.CodeNotAllowed},
		{"unknown user", app, client.Credentials{Username: uniqueName("nobody"), Password: "x"}, 403, client.CodeNotAllowed},
		{"unknown app: HTTP 200 with status error", "Nope", client.Credentials{Username: u.username, Password: u.password}, 200, client.CodeAppInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(serverURL, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Login(ctx, tt.cr)
			if s != nil {
				t.Errorf("Login returned a session %+v with error %v", s, err)
			}
			e := wantCode(t, err, tt.httpStatus, tt.code)
			if e.Status != "error" || e.Method != "POST" || e.Path != "/zato/sso/user/login" {
				t.Errorf("error %+v: want status error of POST /zato/sso/user/login", e)
			}
		})
	}
}

func TestLoginThrottled(t *testing.T) {
	ctx := t.Context()
	u := newUser(t)
	c := newClient(t)
	for range throttleLimit {
		_, err := c.Login(ctx, client.Credentials{Username: u.username, Password: "wrong"})
		wantCode(t, err, 403, client.CodeNotAllowed)
	}
	_, err := c.Login(ctx, client.Credentials{Username: u.username, Password: u.password})
	e := wantCode(t, err, 429, client.CodeNotAllowed)
	if e.RetryAfter < time.Second {
		t.Errorf("RetryAfter = %v, want at least 1s from the Retry-After header", e.RetryAfter)
	}
}

func TestSessionCalls(t *testing.T) {
	ctx := t.Context()
	u := newUser(t)
	info, err := admin.GetSession(ctx, u.session.UST)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if info.CreationTime.IsZero() || !info.ExpirationTime.After(time.Now()) {
		t.Errorf("GetSession = %+v, want a creation time and an expiration in the future", info)
	}
	valid, err := admin.VerifySession(ctx, u.session.UST)
	if err != nil || !valid {
		t.Errorf("VerifySession = %v, %v; want true", valid, err)
	}
	expires, err := u.session.Renew(ctx)
	if err != nil || expires.Before(info.ExpirationTime.Time) {
		t.Errorf("Renew = %v, %v; want no earlier than %v", expires, err, info.ExpirationTime)
	}
	list, err := u.session.ListSessions(ctx)
	if err != nil || len(list) != 1 || list[0].CreationTime.IsZero() {
		t.Errorf("ListSessions = %+v, %v; want the one session", list, err)
	}
	_, err = u.session.GetSession(ctx, u.session.UST)
	wantCode(t, err, 403, client.CodeNotAllowed)

	if err := u.session.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if valid, err := admin.VerifySession(ctx, u.session.UST); err != nil || valid {
		t.Errorf("VerifySession after Logout = %v, %v; want false", valid, err)
	}
	_, err = u.session.GetUser(ctx)
	wantCode(t, err, 403, client.CodeNoSuchSession)
	if err := u.session.Logout(ctx); err != nil {
		t.Errorf("a second Logout: %v, want ok", err)
	}
}

func TestSignup(t *testing.T) {
	ctx := t.Context()
	c := newClient(t)
	name := uniqueName("signup")
	token, err := c.Signup(ctx, name, "pass-"+name, "", nil)
	if err != nil || token == "" {
		t.Fatalf("Signup = %q, %v; want a confirm token", token, err)
	}
	t.Cleanup(func() {
		if res, err := admin.SearchUsers(context.Background(), client.SearchQuery{Username: name, NameExact: true}); err == nil && len(res.Users) == 1 {
			_ = admin.DeleteUser(context.Background(), res.Users[0].UserID)
		}
	})
	if err := c.ConfirmSignup(ctx, token); err != nil {
		t.Fatalf("ConfirmSignup: %v", err)
	}
	wantCode(t, c.ConfirmSignup(ctx, token), 403, client.CodeSignupConfirmed)
	res, err := admin.SearchUsers(ctx, client.SearchQuery{Username: name, NameExact: true})
	if err != nil || len(res.Users) != 1 || res.Users[0].SignUpStatus != "final" || !res.Users[0].IsApprovalNeeded {
		t.Errorf("SearchUsers after sign-up = %+v, %v; want the user, final, awaiting approval", res, err)
	}
}

func TestResetTOTPKey(t *testing.T) {
	ctx := t.Context()
	u := newUser(t)
	key, err := u.session.ResetTOTPKey(ctx, "", "", "phone")
	if err != nil || len(key) < 16 {
		t.Fatalf("ResetTOTPKey = %q, %v; want a generated key", key, err)
	}
	_, err = u.session.ResetTOTPKey(ctx, u.id, "", "phone")
	wantCode(t, err, 403, client.CodeInvalidInput)
}
