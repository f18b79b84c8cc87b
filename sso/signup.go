package sso

import (
	"context"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/attrcache/attrcache"
)

// SignupInput is a self-service sign-up.
type SignupInput struct {
	Username   string
	Password   string
	Email      *string
	AppList    []string
	CurrentApp string
	RemoteAddr string
}

// maxSignupUsername is the longest username sign-up accepts, in characters.
const maxSignupUsername = 128

// reservedUsernameParts may not appear in a signed-up username, in any case.
var reservedUsernameParts = []string{"zato", "admin", "root", "system", "sso"}

// Signup creates a user waiting for confirmation and returns the confirmation token. The user
// also waits for approval when Config.ApprovalNeeded is set.
//
// current_app must be one of Config.Apps (E004001) and, like every app of AppList, one of
// Config.SignupApps (E004002). The username must be given and hold no reserved word (E001001),
// be at most 128 characters (E001003) with no white space (E001004), pass attrcache.CheckUsername
// as every new username does (no control or invisible character: E001001), and be free
// (E001002); the password must pass the policy (its specific code). The e-mail is optional and
// not checked. Past Config.SignupThrottle's attempts from in.RemoteAddr, the client's address, a
// sign-up gets a KindThrottled error (E005001, RetryAfter set) before anything but current_app is
// checked.
func (a *API) Signup(ctx context.Context, cid string, in SignupInput) (_ string, err error) {
	rec := a.audit("signup", cid, in.RemoteAddr)
	defer func() { rec.doneLogin(ctx, in.Username, err) }()
	if err := a.checkApp(in.CurrentApp); err != nil {
		return "", err
	}
	limits := a.throttle.signupLimits(in.RemoteAddr)
	if err := a.throttle.check(ctx, limits); err != nil {
		return "", err
	}
	a.throttle.failed(ctx, limits) // every attempt counts: each may create a user or probe a name
	for _, app := range append([]string{in.CurrentApp}, in.AppList...) {
		if !slices.Contains(a.cfg.SignupApps, app) {
			return "", attrcache.Denied(attrcache.CodeAppNoSignup, "sign-up is not allowed for %q", app)
		}
	}
	if err := checkSignupUsername(in.Username); err != nil {
		return "", err
	}
	token := randomToken()
	role := newUserRole{
		approval:         a.initialApproval(false),
		createdBy:        attrcache.ModByAuto,
		confirmTokenHash: attrcache.HashSignUpToken(token),
	}
	u, err := a.createUser(ctx, CreateUserInput{
		Username:     in.Username,
		Password:     &in.Password,
		Email:        in.Email,
		SignUpStatus: attrcache.SignUpBeforeConfirmation,
	}, role, a.now())
	if err != nil {
		return "", err
	}
	rec.target(u.UserID)
	return token, nil
}

// checkSignupUsername applies the username rules of sign-up alone.
func checkSignupUsername(username string) error {
	switch {
	case username == "":
		return attrcache.Denied(attrcache.CodeUsernameInvalid, "a username is required")
	case utf8.RuneCountInString(username) > maxSignupUsername:
		return attrcache.Denied(attrcache.CodeUsernameTooLong, "the username is longer than %d characters", maxSignupUsername)
	case strings.ContainsFunc(username, unicode.IsSpace):
		return attrcache.Denied(attrcache.CodeUsernameWhitespace, "the username contains white space")
	}
	lower := strings.ToLower(username)
	for _, reserved := range reservedUsernameParts {
		if strings.Contains(lower, reserved) {
			return attrcache.Denied(attrcache.CodeUsernameInvalid, "the username contains a reserved word")
		}
	}
	return nil
}

// ConfirmSignup confirms the sign-up of token: its sign_up_status becomes final. An unknown token
// gives E005006, one already confirmed E005007.
func (a *API) ConfirmSignup(ctx context.Context, cid, token, app, remoteAddr string) (err error) {
	rec := a.audit("signup.confirm", cid, remoteAddr)
	defer func() { rec.done(ctx, err) }()
	if err := a.checkApp(app); err != nil {
		return err
	}
	noSuchToken := attrcache.Denied(attrcache.CodeNoSuchSignupToken, "no such sign-up token")
	if token == "" {
		return noSuchToken
	}
	u, err := a.users.UserBySignUpToken(ctx, attrcache.HashSignUpToken(token))
	if err != nil {
		return storeError(err, "look up sign-up token", noSuchToken)
	}
	if u.SignUpStatus != attrcache.SignUpBeforeConfirmation {
		return attrcache.Denied(attrcache.CodeSignupConfirmed, "the sign-up is already confirmed")
	}
	rec.target(u.UserID)
	now := a.now()
	return a.updateUserByID(ctx, u.UserID, attrcache.UserUpdate{
		SignUpStatus:      attrcache.SetTo(attrcache.SignUpFinal),
		SignUpConfirmTime: attrcache.SetTo(&now),
	})
}
