package sso

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// LoginInput is what a login sends. Empty strings stand for both absent and null values.
//
// RemoteAddr is the address the session records, which a client may choose (Zato's remote_addr
// input). ClientAddr is the address the request came from, which the guessing throttle counts
// against, so that a client cannot escape it by naming another address; "" means RemoteAddr.
type LoginInput struct {
	Username    string
	Password    string
	CurrentApp  string
	TOTPCode    string
	NewPassword string
	RemoteAddr  string
	ClientAddr  string
	UserAgent   string
}

// LoginResult is a successful login. Warning is attrcache.CodePasswordAboutToExpire when the
// password is about to expire (status "warning" on the wire), else "".
type LoginResult struct {
	UST            string
	Warning        string
	ExpirationTime time.Time
}

// Login checks the credentials in Zato's order (zato-sso-reference.md §2.1) and opens a session.
//
// The app comes first (E004001). A username or address that failed too often within the throttle
// window gets a KindThrottled error (code E005001, RetryAfter set) before the password is looked
// at. Then: an unknown or unapproved user, an empty or wrong password, or a wrong TOTP code give
// E005001; a missing TOTP code E005008; a locked user E005002; an unconfirmed sign-up E005003; an
// expired password E005001; a password that must change and no new one E003007, and a new one
// that fails the policy its specific code (E003002, E003003, E003001). Every failed check counts
// against the username and the client address (LoginInput.ClientAddr); a success clears the
// username's count.
func (a *API) Login(ctx context.Context, cid string, in LoginInput) (_ *LoginResult, err error) {
	rec := a.audit("login", cid, cmp.Or(in.ClientAddr, in.RemoteAddr))
	defer func() { rec.doneLogin(ctx, in.Username, err) }()
	if err := a.checkApp(in.CurrentApp); err != nil {
		return nil, err
	}
	now := a.now()
	limits := a.throttle.loginLimits(in.Username, cmp.Or(in.ClientAddr, in.RemoteAddr))
	if err := a.throttle.check(ctx, limits); err != nil {
		return nil, err
	}
	u, warning, err := a.admit(ctx, in, now)
	if err != nil {
		if isDenied(err) {
			a.throttle.failed(ctx, limits)
		}
		return nil, err
	}
	a.throttle.succeeded(ctx, in.Username)
	rec.actorAndTarget(u.UserID)
	return a.openSession(ctx, u, in, warning, now)
}

// admit runs the checks of a login after the app and the throttle, saves the new password of a
// user who had to change it, and returns the user and the warning to give.
func (a *API) admit(ctx context.Context, in LoginInput, now time.Time) (*attrcache.User, string, error) {
	u, err := a.approvedUser(ctx, in.Username)
	if err != nil {
		return nil, "", err
	}
	if u == nil || in.Password == "" {
		// As slow as a real check, so that the time taken does not tell whether the username
		// exists; the answer is no anyway.
		_, _ = verifyPassword(a.dummyHash, in.Password)
		return nil, "", attrcache.NotAllowed()
	}
	ok, err := verifyPassword(u.PasswordHash, in.Password)
	if err != nil {
		return nil, "", attrcache.Internal(fmt.Errorf("sso: login of user %s: %w", u.UserID, err))
	}
	if !ok {
		return nil, "", attrcache.NotAllowed()
	}
	if err := checkTOTP(u, in.TOTPCode, now); err != nil {
		return nil, "", err
	}
	if err := checkUser(u.Principal(), now); err != nil {
		if attrcache.CodeOf(err) == attrcache.CodePasswordExpired {
			return nil, "", attrcache.NotAllowed() // Zato's password.inform_if_expired is false
		}
		return nil, "", err
	}
	warning := ""
	if now.After(u.PasswordExpiry.Add(-a.cfg.AboutToExpire)) {
		warning = attrcache.CodePasswordAboutToExpire
	}
	if u.PasswordMustChange {
		if in.NewPassword == "" {
			return nil, "", attrcache.Denied(attrcache.CodePasswordMustSendNew, "the password must be changed: send new_password")
		}
		if err := a.cfg.Password.Validate(in.NewPassword); err != nil {
			return nil, "", err
		}
		if err := a.savePassword(ctx, u.UserID, in.NewPassword, a.passwordExpiryAt(now, 0), false, now); err != nil {
			return nil, "", err
		}
		warning = "" // the new password is fresh
	}
	return u, warning, nil
}

// approvedUser returns the approved user called username, nil if there is none.
func (a *API) approvedUser(ctx context.Context, username string) (*attrcache.User, error) {
	if username == "" {
		return nil, nil
	}
	u, err := a.users.UserByUsername(ctx, username)
	switch {
	case errors.Is(err, attrcache.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, storeError(err, "look up user", nil)
	case u.ApprovalStatus != attrcache.ApprovalApproved:
		return nil, nil
	}
	return u, nil
}

// checkTOTP checks the second factor of a user who has it on: no code gives E005008, a wrong one
// E005001.
func checkTOTP(u *attrcache.User, code string, now time.Time) error {
	if !u.IsTOTPEnabled {
		return nil
	}
	if code == "" {
		return attrcache.Denied(attrcache.CodeTOTPMissing, "a TOTP code is required")
	}
	key, err := attrcache.DecodeTOTPKey(u.TOTPKey)
	if err != nil {
		return attrcache.Internal(fmt.Errorf("sso: TOTP key of user %s: %w", u.UserID, err))
	}
	if !attrcache.VerifyTOTP(key, code, now) {
		return attrcache.NotAllowed()
	}
	return nil
}

// openSession stores a new session of u and returns its UST.
func (a *API) openSession(ctx context.Context, u *attrcache.User, in LoginInput, warning string, now time.Time) (*LoginResult, error) {
	rawID := attrcache.NewSessionID()
	s := &attrcache.Session{
		Hash:           attrcache.HashSessionID(rawID),
		UserID:         u.UserID,
		CreationTime:   now,
		ExpirationTime: now.Add(a.cfg.SessionExpiry),
		RemoteAddr:     in.RemoteAddr,
		UserAgent:      in.UserAgent,
		AuthType:       "default",
		AuthPrincipal:  u.Username,
		StateChanges: []attrcache.SessionStateChange{{
			RemoteAddr:   in.RemoteAddr,
			UserAgent:    in.UserAgent,
			TimestampUTC: attrcache.FormatTime(now),
			CtxSource:    "login",
			Idx:          1,
		}},
	}
	ust, err := attrcache.NewUST(a.keys, rawID, u.UserID)
	if err != nil {
		return nil, attrcache.Internal(fmt.Errorf("sso: UST of user %s: %w", u.UserID, err))
	}
	if err := a.sessions.CreateSession(ctx, s); err != nil {
		return nil, storeError(err, "create session", nil)
	}
	return &LoginResult{UST: ust, Warning: warning, ExpirationTime: s.ExpirationTime}, nil
}

// Logout ends the session of ust. Whatever the UST is, it answers nil (so that it tells nothing
// about which USTs are valid); it fails only for an unknown app (E004001) or when the session
// cannot be deleted because a backend is unavailable.
func (a *API) Logout(ctx context.Context, cid, ust, app, remoteAddr string) (err error) {
	ctx = attrcache.WithCID(ctx, cid)
	rec := a.auditUST("logout", cid, ust, remoteAddr)
	rec.target(rec.actor())
	defer func() { rec.done(ctx, err) }()
	if err := a.checkApp(app); err != nil {
		return err
	}
	rawID, userID, err := attrcache.ParseUST(a.keys, ust)
	if err != nil {
		return nil
	}
	err = a.sessions.DeleteSession(ctx, userID, attrcache.HashSessionID(rawID))
	return storeError(err, "delete session", nil)
}
