package sso_test

import (
	"context"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestSignupAndConfirm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name           string
		approvalNeeded bool
		// wantLoginCode is the answer to a login after the confirmation.
		wantLoginCode string
	}{
		{"approval not needed", false, ""},
		{"approval needed", true, attrcache.CodeNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(cfg *sso.Config) { cfg.ApprovalNeeded = tt.approvalNeeded })
			username := uniqueName(t)
			token, err := e.api.Signup(ctx, "cid", sso.SignupInput{
				Username: username, Password: testPassword, Email: ptr("no format check"), AppList: []string{signupApp}, CurrentApp: signupApp,
			})
			if err != nil {
				t.Fatal(err)
			}
			if token == "" {
				t.Fatal("no confirmation token")
			}
			login := func() error {
				_, err := e.api.Login(ctx, "cid", sso.LoginInput{Username: username, Password: testPassword, CurrentApp: testApp})
				return err
			}
			if !tt.approvalNeeded {
				wantCode(t, login(), attrcache.CodeInvalidSignupStatus)
			}
			if err := e.api.ConfirmSignup(ctx, "cid", token, signupApp, testAddr); err != nil {
				t.Fatal(err)
			}
			wantCode(t, login(), tt.wantLoginCode)
			wantCode(t, e.api.ConfirmSignup(ctx, "cid", token, signupApp, testAddr), attrcache.CodeSignupConfirmed)
		})
	}
}

func TestConfirmSignupErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	for _, tt := range []struct {
		name, token, app, wantCode string
	}{
		{"unknown app", "whatever", "nope", attrcache.CodeAppInvalid},
		{"unknown token", "no-such-token", signupApp, attrcache.CodeNoSuchSignupToken},
		{"empty token", "", signupApp, attrcache.CodeNoSuchSignupToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, e.api.ConfirmSignup(ctx, "cid", tt.token, tt.app, testAddr), tt.wantCode)
		})
	}
}

func TestSignupErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	taken := e.createUser(t, false)
	tests := []struct {
		name     string
		edit     func(in *sso.SignupInput)
		wantCode string
	}{
		{"unknown app", func(in *sso.SignupInput) { in.CurrentApp = "nope" }, attrcache.CodeAppInvalid},
		{"app without sign-up", func(in *sso.SignupInput) { in.CurrentApp = testApp }, attrcache.CodeAppNoSignup},
		{"app list with an app without sign-up", func(in *sso.SignupInput) { in.AppList = []string{signupApp, testApp} }, attrcache.CodeAppNoSignup},
		{"no username", func(in *sso.SignupInput) { in.Username = "" }, attrcache.CodeUsernameInvalid},
		{"username too long", func(in *sso.SignupInput) { in.Username = strings.Repeat("é", 129) }, attrcache.CodeUsernameTooLong},
		{"username with white space", func(in *sso.SignupInput) { in.Username = "two\twords" }, attrcache.CodeUsernameWhitespace},
		{"reserved word", func(in *sso.SignupInput) { in.Username = "theADMINistrator" }, attrcache.CodeUsernameInvalid},
		{"username taken", func(in *sso.SignupInput) { in.Username = taken.Username }, attrcache.CodeUsernameExists},
		{"password too short", func(in *sso.SignupInput) { in.Password = "short" }, attrcache.CodePasswordTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sso.SignupInput{Username: uniqueName(t), Password: testPassword, CurrentApp: signupApp}
			tt.edit(&in)
			_, err := e.api.Signup(ctx, "cid", in)
			wantCode(t, err, tt.wantCode)
		})
	}
	t.Run("128 characters", func(t *testing.T) {
		in := sso.SignupInput{Username: uniqueName(t) + strings.Repeat("é", 128-13), Password: testPassword, CurrentApp: signupApp}
		_, err := e.api.Signup(ctx, "cid", in)
		wantCode(t, err, "")
	})
}

// TestSignupTokenIsNotStored checks that the database holds only the SHA-256 of a sign-up's
// confirmation token, and that the stored form itself does not confirm the sign-up.
func TestSignupTokenIsNotStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	username := uniqueName(t)
	token, err := e.api.Signup(ctx, "cid", sso.SignupInput{
		Username: username, Password: testPassword, AppList: []string{signupApp}, CurrentApp: signupApp,
	})
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := testSQL.QueryRowContext(ctx, "SELECT sign_up_confirm_token FROM sso_user WHERE username = ?", username).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == token || stored != attrcache.HashSignUpToken(token) {
		t.Fatalf("stored token %q, want the SHA-256 of the token given to the user", stored)
	}
	wantCode(t, e.api.ConfirmSignup(ctx, "cid", stored, signupApp, testAddr), attrcache.CodeNoSuchSignupToken)
	if err := e.api.ConfirmSignup(ctx, "cid", token, signupApp, testAddr); err != nil {
		t.Fatalf("ConfirmSignup with the token itself: %v", err)
	}
}
