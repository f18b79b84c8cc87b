package sso

import (
	"context"
	"time"

	"github.com/attrcache/attrcache"
)

// GetSession returns the session of targetUST to a super-user currentUST (E005001 otherwise).
// The target is checked as a caller would be: an invalid, unknown or ended session gives E007001
// and its owner's state the codes of checkSession.
func (a *API) GetSession(ctx context.Context, cid, targetUST, currentUST, app, remoteAddr string) (_ *attrcache.Session, err error) {
	rec := a.auditUST("session.get", cid, currentUST, remoteAddr)
	rec.target(a.auditUSTOwner(rec, targetUST))
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	if err := a.requireSuperUserSession(ctx, currentUST, app, now); err != nil {
		return nil, err
	}
	target, err := a.checkSession(ctx, targetUST, now)
	if err != nil {
		return nil, err
	}
	return target.session, nil
}

// VerifySession tells a super-user currentUST (E005001 otherwise) whether targetUST is a live
// session whose owner may still use it. Any problem with the target is false, not an error; only
// a backend failure while looking it up is.
func (a *API) VerifySession(ctx context.Context, cid, targetUST, currentUST, app, remoteAddr string) (_ bool, err error) {
	rec := a.auditUST("session.verify", cid, currentUST, remoteAddr)
	rec.target(a.auditUSTOwner(rec, targetUST))
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	if err := a.requireSuperUserSession(ctx, currentUST, app, now); err != nil {
		return false, err
	}
	_, err = a.checkSession(ctx, targetUST, now)
	switch {
	case err == nil:
		return true, nil
	case isDenied(err):
		return false, nil
	default:
		return false, err
	}
}

func (a *API) requireSuperUserSession(ctx context.Context, ust, app string, now time.Time) error {
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return err
	}
	return c.requireSuperUser(attrcache.CodeNotAllowed)
}

// RenewSession extends the caller's session by the session expiry from now, records the renewal
// in the session's history and returns the session's new end.
func (a *API) RenewSession(ctx context.Context, cid, ust, app, remoteAddr string) (_ time.Time, err error) {
	rec := a.auditUST("session.renew", cid, ust, remoteAddr)
	rec.target(rec.actor())
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return time.Time{}, err
	}
	idx := 1
	if history := c.session.StateChanges; len(history) > 0 {
		idx = history[len(history)-1].Idx + 1
	}
	change := attrcache.SessionStateChange{
		RemoteAddr:   remoteAddr,
		TimestampUTC: attrcache.FormatTime(now),
		CtxSource:    "renew",
		Idx:          idx,
	}
	s, err := a.sessions.RenewSession(ctx, c.userID(), c.session.Hash, now.Add(a.cfg.SessionExpiry), change)
	if err != nil {
		return time.Time{}, storeError(err, "renew session", noSuchSession())
	}
	return s.ExpirationTime, nil
}

// ListSessions returns the caller's live sessions, oldest first. A session holds only the hash of
// its token, never a UST.
func (a *API) ListSessions(ctx context.Context, cid, ust, app, remoteAddr string) (_ []*attrcache.Session, err error) {
	rec := a.auditUST("session.list", cid, ust, remoteAddr)
	rec.target(rec.actor())
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return nil, err
	}
	sessions, err := a.sessions.UserSessions(ctx, c.userID(), now)
	if err != nil {
		return nil, storeError(err, "list sessions", nil)
	}
	return sessions, nil
}
