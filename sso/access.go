package sso

import (
	"context"
	"errors"
	"time"

	"github.com/attrcache/attrcache"
)

// attrFacts is what decides whether a caller may make an attribute call. The store path and the
// one-round-trip cached path gather them each their own way; decideAttrCall alone decides.
type attrFacts struct {
	now   time.Time
	appOK bool
	// caller is the session of the caller's UST and its owner; target, for session attributes,
	// the session of the target UST and its owner.
	caller, target sessionFacts
	forSession     bool
	// ownerID is the user whose attributes are asked for, for user attributes ("" is the
	// caller); owner says whether that user exists, when it is not the caller.
	ownerID string
	owner   fact
}

// sessionFacts is a session found for a UST, with its owner's principal; missing when the UST
// does not open or names no session.
type sessionFacts struct {
	session   *attrcache.Session
	principal *attrcache.Principal
	fact
}

// fact is the outcome of one look-up: found, missing, or err when the store could not answer.
type fact struct {
	found bool
	err   error
}

// decideAttrCall applies the access rule of every attribute call (CONTRACT.md §4), in Zato's
// order: the app (E004001); the caller's session and its owner (E007001, E005002, E005003,
// E003004); for session attributes the target session and its owner (the same codes), which a
// caller other than its owner may use only as a super-user (E005001); for user attributes, a
// user other than the caller's own only for a super-user, and only one that exists under the
// exact form of its id (E005001). A look-up that failed is returned where its fact is needed.
func decideAttrCall(f *attrFacts) (*attrCall, error) {
	if !f.appOK {
		return nil, appInvalid()
	}
	c, err := f.caller.check(f.now)
	if err != nil {
		return nil, err
	}
	call := &attrCall{caller: c, now: f.now}
	if f.forSession {
		target, err := f.target.check(f.now)
		if err != nil {
			return nil, err
		}
		if target.userID() != c.userID() {
			if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
				return nil, err
			}
		}
		call.scope = attrcache.AttrScope{UserID: target.userID(), Session: target.session.Hash}
		return call, nil
	}
	if f.ownerID == "" || f.ownerID == c.userID() {
		call.scope = attrcache.AttrScope{UserID: c.userID()}
		return call, nil
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return nil, err
	}
	if err := checkUserID(f.ownerID); err != nil {
		return nil, err
	}
	switch {
	case f.owner.err != nil:
		return nil, storeError(f.owner.err, "look up user", nil)
	case !f.owner.found:
		return nil, noSuchUser()
	}
	call.scope = attrcache.AttrScope{UserID: f.ownerID}
	return call, nil
}

// check returns the caller of a session found for a UST, checked as checkCaller checks it:
// E007001 when there is none.
func (s sessionFacts) check(now time.Time) (*caller, error) {
	switch {
	case s.err != nil:
		return nil, storeError(s.err, "look up session", noSuchSession())
	case !s.found:
		return nil, noSuchSession()
	}
	return checkCaller(s.session, s.principal, now)
}

// gatherAttrFacts looks up, in the stores, every fact decideAttrCall needs for a call of x at
// now. A look-up whose outcome cannot matter is skipped: none after an unknown app, and no
// owner's once the caller's own session is missing.
func (x *AttrAPI) gatherAttrFacts(ctx context.Context, now time.Time) *attrFacts {
	f := &attrFacts{now: now, forSession: x.forSession, ownerID: x.ownerID}
	if f.appOK = x.api.checkApp(x.app) == nil; !f.appOK {
		return f
	}
	if f.caller = x.api.lookUpSession(ctx, x.ust); !f.caller.found {
		return f
	}
	switch {
	case x.forSession:
		f.target = x.api.lookUpSession(ctx, x.targetUST)
	case x.ownerID != "" && x.ownerID != f.caller.principal.UserID && attrcache.ValidUserID(x.ownerID):
		f.owner = x.lookUpOwner(ctx)
	}
	return f
}

// lookUpSession finds the session of ust and its owner's principal.
func (a *API) lookUpSession(ctx context.Context, ust string) sessionFacts {
	userID, hash, ok := a.openUST(ust)
	if !ok {
		return sessionFacts{}
	}
	s, p, err := a.sessions.SessionWithPrincipal(ctx, userID, hash)
	switch {
	case errors.Is(err, attrcache.ErrNotFound):
		return sessionFacts{}
	case err != nil:
		return sessionFacts{fact: fact{err: err}}
	}
	return sessionFacts{session: s, principal: p, fact: fact{found: true}}
}

// lookUpOwner finds whether the user whose attributes x names exists. Once found, x remembers it,
// and later calls do not look again (UserAttrs makes the first call itself).
func (x *AttrAPI) lookUpOwner(ctx context.Context) fact {
	if x.ownerFound.Load() {
		return fact{found: true}
	}
	_, err := x.api.users.UserByID(ctx, x.ownerID)
	switch {
	case errors.Is(err, attrcache.ErrNotFound):
		return fact{}
	case err != nil:
		return fact{err: err}
	}
	x.ownerFound.Store(true)
	return fact{found: true}
}

// cachedAttrFacts gathers the facts of a read of names from the attribute store's cache, with
// the attributes, in one round trip (attrcache.CachedAttrReader). ok is false when the store has
// no such cache or the cache does not hold every fact.
func (x *AttrAPI) cachedAttrFacts(ctx context.Context, names []string, now time.Time) (f *attrFacts, attrs map[string]*attrcache.Attr, ok bool) {
	reader, ok := x.api.attrs.(attrcache.CachedAttrReader)
	if !ok || x.api.checkApp(x.app) != nil {
		return nil, nil, false
	}
	callerID, callerHash, ok := x.api.openUST(x.ust)
	if !ok {
		return nil, nil, false
	}
	f = &attrFacts{now: now, appOK: true, forSession: x.forSession, ownerID: x.ownerID}
	scope := attrcache.AttrScope{UserID: x.ownerID}
	switch {
	case x.forSession:
		if scope.UserID, scope.Session, ok = x.api.openUST(x.targetUST); !ok {
			return nil, nil, false
		}
	case scope.UserID == "":
		scope.UserID = callerID
	case !attrcache.ValidUserID(scope.UserID):
		return nil, nil, false
	}
	answer, ok := reader.CachedAttrs(ctx, attrcache.CachedAttrQuery{
		CallerID: callerID, Caller: callerHash, Scope: scope, Names: names, Now: now,
	})
	if !ok {
		return nil, nil, false
	}
	f.caller = sessionFacts{session: answer.CallerSession, principal: answer.CallerPrincipal, fact: fact{found: true}}
	switch {
	case x.forSession:
		f.target = sessionFacts{session: answer.OwnerSession, principal: answer.OwnerPrincipal, fact: fact{found: true}}
	case scope.UserID != callerID:
		f.owner = fact{found: answer.OwnerPrincipal != nil}
	}
	return f, answer.Attrs, true
}
