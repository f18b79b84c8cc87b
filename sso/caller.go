package sso

import (
	"context"
	"time"

	"github.com/attrcache/attrcache"
)

// caller is who a UST call acts for, once every check has passed.
type caller struct {
	session   *attrcache.Session
	principal *attrcache.Principal
}

func (c *caller) userID() string { return c.principal.UserID }

// requireSuperUser fails with code (which differs per call, as in Zato) unless c is a super-user.
func (c *caller) requireSuperUser(code string) error {
	if c.principal.IsSuperUser {
		return nil
	}
	return superUserRequired(code)
}

// authenticate runs the checks every UST call starts with: the app (E004001), then the session
// and its owner (see checkSession).
func (a *API) authenticate(ctx context.Context, ust, app string, now time.Time) (*caller, error) {
	if err := a.checkApp(app); err != nil {
		return nil, err
	}
	return a.checkSession(ctx, ust, now)
}

// checkSession finds the live session of ust and checks its owner as a login would: a UST that
// does not open, an unknown or expired session or an owner who is not approved give E007001; a
// locked owner E005002, one whose sign-up is not final E005003, one whose password has expired
// E003004.
func (a *API) checkSession(ctx context.Context, ust string, now time.Time) (*caller, error) {
	return a.lookUpSession(ctx, ust).check(now)
}

// openUST returns the owner and session of ust, if it is a UST this service issued.
func (a *API) openUST(ust string) (userID string, hash attrcache.SessionHash, ok bool) {
	rawID, userID, err := attrcache.ParseUST(a.keys, ust)
	if err != nil {
		return "", "", false
	}
	return userID, attrcache.HashSessionID(rawID), true
}

// checkCaller checks a session found for a UST, and its owner, as checkSession does.
func checkCaller(s *attrcache.Session, p *attrcache.Principal, now time.Time) (*caller, error) {
	if s.Expired(now) || p.ApprovalStatus != attrcache.ApprovalApproved {
		return nil, noSuchSession()
	}
	if err := checkUser(p, now); err != nil {
		return nil, err
	}
	return &caller{session: s, principal: p}, nil
}

// checkUser runs Zato's user checks in their order (zato-sso-reference.md §2.1 step 5): not
// locked (E005002), sign-up final (E005003), password not expired (E003004).
func checkUser(p *attrcache.Principal, now time.Time) error {
	switch {
	case p.IsLocked:
		return attrcache.Denied(attrcache.CodeLocked, "the user is locked")
	case p.SignUpStatus != attrcache.SignUpFinal:
		return attrcache.Denied(attrcache.CodeInvalidSignupStatus, "the sign-up is not confirmed")
	case passwordExpired(p.PasswordExpiry, now):
		return attrcache.Denied(attrcache.CodePasswordExpired, "the password has expired")
	}
	return nil
}

func passwordExpired(expiry, now time.Time) bool { return now.After(expiry) }
