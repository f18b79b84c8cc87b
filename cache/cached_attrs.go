package cache

import (
	"context"
	"fmt"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

var _ attrcache.CachedAttrReader = (*AttrStore)(nil)

// CachedAttrs answers a read of attributes with the caller's session and principal, and the
// scope's owner when it is not the caller's own user scope, in one round trip: one MGET when the
// caller owns the scope (all of one user's keys share a hash slot), else one pipeline of an MGET
// per user. It answers only when Redis holds all of it: the caller's live session and principal,
// the owner's, and every attribute or the mark of its absence. A session is served only with its
// owner's principal, as the other reads serve it.
func (a *AttrStore) CachedAttrs(ctx context.Context, q attrcache.CachedAttrQuery) (attrcache.CachedAttrAnswer, bool) {
	if len(q.Names) == 0 {
		return attrcache.CachedAttrAnswer{}, false
	}
	caller := a.s.sessionKeys(q.CallerID, q.Caller)
	var owner sessionKeys
	ownerKeys := []string{}
	switch {
	case q.Scope.IsSession():
		owner = a.s.sessionKeys(q.Scope.UserID, q.Scope.Session)
		ownerKeys = append(ownerKeys, owner.session, owner.principal)
	case q.Scope.UserID != q.CallerID:
		owner = sessionKeys{userID: q.Scope.UserID, principal: a.s.keys.principal(q.Scope.UserID)}
		ownerKeys = append(ownerKeys, owner.principal)
	}
	attrKeys := a.s.keys.attrs(q.Scope, q.Names)
	ownerGroup := append(ownerKeys, attrKeys...)
	keys := append([]string{caller.session, caller.principal}, ownerGroup...)
	if !a.s.trust.ok() || a.s.hides(keys...) {
		return attrcache.CachedAttrAnswer{}, false
	}
	// A failure is neither logged nor counted here: the usual path, which the caller takes next,
	// meets it again and does both.
	values, err := a.mgetByUser(ctx, q, keys, len(keys)-len(ownerGroup))
	if err != nil {
		return attrcache.CachedAttrAnswer{}, false
	}
	answer, ok, err := parseCachedAttrs(q, caller, owner, values, a.s.memo)
	if err == nil && ok {
		a.s.metrics.ObserveCache(opSessionWithPrincipal, metrics.CacheHit)
		a.s.metrics.ObserveCache(attrOp(q.Scope), metrics.CacheHit)
	}
	return answer, ok
}

// mgetByUser reads keys, of which the first callerKeys are the caller's and the rest the scope
// owner's, in one round trip: one MGET when caller and owner are one user, else a pipeline of two.
func (a *AttrStore) mgetByUser(ctx context.Context, q attrcache.CachedAttrQuery, keys []string, callerKeys int) ([]any, error) {
	var values []any
	if q.Scope.UserID == q.CallerID {
		var err error
		if values, err = a.s.co.mget(ctx, keys...); err != nil {
			return nil, err
		}
	} else {
		callers, owners := newMGet(ctx, keys[:callerKeys]), newMGet(ctx, keys[callerKeys:])
		if err := a.s.co.do(ctx, callers, owners); err != nil {
			return nil, err
		}
		values = append(callers.Val(), owners.Val()...)
	}
	if len(values) != len(keys) {
		return nil, fmt.Errorf("MGET of %d keys returned %d values", len(keys), len(values))
	}
	return values, nil
}

// parseCachedAttrs reads what mgetByUser returned for q: ok is false when Redis lacks something
// the answer needs. values holds the caller's session and principal, then the owner's keys (for
// a session scope its session and principal, for another user's scope the principal), then the
// attributes in the order of q.Names.
func parseCachedAttrs(q attrcache.CachedAttrQuery, caller, owner sessionKeys, values []any, memo *decodeMemo) (attrcache.CachedAttrAnswer, bool, error) {
	var answer attrcache.CachedAttrAnswer
	callerFound, ok, err := liveSession(caller, values[0], values[1], q, memo)
	if !ok || err != nil {
		return answer, false, err
	}
	answer.CallerSession, answer.CallerPrincipal = callerFound.session, callerFound.principal
	values = values[2:]
	switch {
	case q.Scope.IsSession():
		ownerFound, ok, err := liveSession(owner, values[0], values[1], q, memo)
		if !ok || err != nil {
			return answer, false, err
		}
		answer.OwnerSession, answer.OwnerPrincipal = ownerFound.session, ownerFound.principal
		values = values[2:]
	case q.Scope.UserID != q.CallerID:
		e, err := parseEntry(values[0])
		if err != nil || e.state != entryLive {
			return answer, false, err
		}
		if answer.OwnerPrincipal, err = memo.principal(owner.principal, e); err != nil {
			return answer, false, fmt.Errorf("principal: %w", err)
		}
		values = values[1:]
	}
	answer.Attrs = make(map[string]*attrcache.Attr, len(q.Names))
	for i, raw := range values {
		e, err := parseEntry(raw)
		if err != nil {
			return answer, false, fmt.Errorf("attribute %q: %w", q.Names[i], err)
		}
		switch e.state {
		case entryNoKey, entryFloor:
			return answer, false, nil
		case entryLive:
			attr, err := decodeAttr(q.Scope, q.Names[i], e)
			if err != nil {
				return answer, false, fmt.Errorf("attribute %q: %w", q.Names[i], err)
			}
			if !attr.Live(q.Now) { // Redis has not expired it yet: the store decides
				return answer, false, nil
			}
			answer.Attrs[q.Names[i]] = attr
		}
		// A tombstone or an absent marker: known not to exist.
	}
	return answer, true, nil
}

// liveSession reads a session and its owner's principal as MGET returned them: ok only when Redis
// holds both and the session has not ended at q.Now.
func liveSession(k sessionKeys, rawSession, rawPrincipal any, q attrcache.CachedAttrQuery, memo *decodeMemo) (sessionLookup, bool, error) {
	lookup, err := parseSessionLookup(k, rawSession, rawPrincipal, q.Now, memo)
	if err != nil {
		return sessionLookup{}, false, err
	}
	found, done, err := lookup.answer()
	return found, done && err == nil, nil
}

// attrOp is the cache metrics' op label of a read of scope's attributes.
func attrOp(scope attrcache.AttrScope) string {
	if scope.IsSession() {
		return opSessionAttrs
	}
	return opUserAttrs
}
