package cache

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

// sessionKeys names a session and the keys that cache it and its owner's principal.
type sessionKeys struct {
	userID    string
	hash      attrcache.SessionHash
	session   string
	principal string
}

func (s *Store) sessionKeys(userID string, hash attrcache.SessionHash) sessionKeys {
	return sessionKeys{
		userID:    userID,
		hash:      hash,
		session:   s.keys.session(userID, hash),
		principal: s.keys.principal(userID),
	}
}

// sessionLookup is what is known of a session and its owner.
type sessionLookup struct {
	session   *attrcache.Session   // nil: not known (for a cached session: absent or expired)
	principal *attrcache.Principal // nil: not known
	deleted   bool                 // a tombstone stands for the session or its owner
}

// answer returns what Redis alone says of a session: done is false when the inner stores must
// be asked. A session is served only with its owner's principal, so that deleting the user ends
// their cached sessions too.
func (l sessionLookup) answer() (found sessionLookup, done bool, err error) {
	switch {
	case l.deleted:
		return sessionLookup{}, true, attrcache.ErrNotFound
	case l.session != nil && l.principal != nil:
		return l, true, nil
	}
	return sessionLookup{}, false, nil
}

// sessionLoader reads from the inner stores what Redis lacks of k's session and owner (cached is
// what Redis holds, zero when it could not be read) and returns the answer with the writes that
// would cache it.
type sessionLoader func(ctx context.Context, k sessionKeys, cached sessionLookup) (sessionLookup, []write, error)

// CreateSession creates sess in the inner store and caches it.
func (s *Store) CreateSession(ctx context.Context, sess *attrcache.Session) error {
	if err := s.sessions.CreateSession(ctx, sess); err != nil {
		return err
	}
	s.storeSession(ctx, sess)
	return nil
}

// Session returns the session from Redis when Redis holds it and its owner, else from the inner
// store (which also returns an expired session). Unknown gives attrcache.ErrNotFound.
func (s *Store) Session(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, error) {
	found, err := s.readThrough(ctx, s.sessionKeys(userID, hash), opSession, s.loadSession)
	return found.session, err
}

// SessionWithPrincipal returns the session and its owner's principal: from Redis in one round
// trip when it holds both, else from the inner stores, caching what they return. An expired
// session is never served from Redis. Either missing gives attrcache.ErrNotFound.
func (s *Store) SessionWithPrincipal(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error) {
	found, err := s.readThrough(ctx, s.sessionKeys(userID, hash), opSessionWithPrincipal, s.loadSessionWithPrincipal)
	return found.session, found.principal, err
}

// RenewSession renews the session in the inner store and caches it with its new expiry.
func (s *Store) RenewSession(ctx context.Context, userID string, hash attrcache.SessionHash, expiresAt time.Time, change attrcache.SessionStateChange) (*attrcache.Session, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	sess, err := s.sessions.RenewSession(ctx, userID, hash, expiresAt, change)
	if err != nil {
		return nil, err
	}
	if s.storeSession(ctx, sess) {
		receipt.Applied()
	}
	return sess, nil
}

// DeleteSession deletes the session from the inner store and leaves a tombstone in its place in
// Redis. Unknown is not an error.
func (s *Store) DeleteSession(ctx context.Context, userID string, hash attrcache.SessionHash) error {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	if err := s.sessions.DeleteSession(ctx, userID, hash); err != nil {
		return err
	}
	if s.update(ctx, tombstoneWrite(s.keys.session(userID, hash), time.Now().Add(tombstoneTTL))) {
		receipt.Applied()
	}
	return nil
}

// UserSessions returns the user's live sessions from the inner store.
func (s *Store) UserSessions(ctx context.Context, userID string, now time.Time) ([]*attrcache.Session, error) {
	return s.sessions.UserSessions(ctx, userID, now)
}

// readThrough answers the look-up op of k from Redis when it can, and otherwise from load, once
// for all concurrent callers of the same op and keys, caching what load returns. A failing
// Redis, or one not trusted since it failed (redisTrust), sends the look-up to load without
// caching anything.
func (s *Store) readThrough(ctx context.Context, k sessionKeys, op string, load sessionLoader) (sessionLookup, error) {
	bypass := func() (sessionLookup, error) {
		found, _, err := load(ctx, k, sessionLookup{})
		return found, err
	}
	if !s.trust.ok() || s.hides(k.session) {
		s.metrics.ObserveCache(op, metrics.CacheMiss)
		return bypass()
	}
	cached, err := s.readSession(ctx, k)
	if err != nil {
		s.trust.readFailed(ctx)
		s.metrics.ObserveCache(op, metrics.CacheError)
		s.warn(ctx, "cache: read failed; using the store", k.session, err)
		return bypass()
	}
	if found, done, err := cached.answer(); done {
		s.metrics.ObserveCache(op, metrics.CacheHit)
		return found, err
	}
	s.metrics.ObserveCache(op, metrics.CacheMiss)
	return shareLoad(ctx, &s.loads, op+" "+k.session, func(ctx context.Context) (sessionLookup, error) {
		// Read again: an earlier flight may have filled the keys since the read above.
		cached, readErr := s.readSession(ctx, k)
		if readErr != nil {
			s.warn(ctx, "cache: read failed; using the store", k.session, readErr)
			cached = sessionLookup{}
		} else if found, done, err := cached.answer(); done {
			return found, err
		}
		found, writes, err := load(ctx, k, cached)
		if err != nil {
			return sessionLookup{}, err
		}
		if readErr == nil {
			s.fill(ctx, writes...)
		}
		return found, nil
	})
}

// loadSession reads the session from the inner store, and caches it when Redis lacks it and it
// is live. The principal is not loaded: Session's callers do not need it.
func (s *Store) loadSession(ctx context.Context, k sessionKeys, cached sessionLookup) (sessionLookup, []write, error) {
	sess, err := s.sessions.Session(ctx, k.userID, k.hash)
	if err != nil {
		return sessionLookup{}, nil, err
	}
	found := sessionLookup{session: sess}
	if cached.session != nil {
		return found, nil, nil
	}
	return found, s.sessionFill(ctx, sess), nil
}

// loadSessionWithPrincipal reads the owner's principal alone when Redis holds the live session,
// and both from the inner store otherwise.
func (s *Store) loadSessionWithPrincipal(ctx context.Context, k sessionKeys, cached sessionLookup) (sessionLookup, []write, error) {
	if cached.session != nil {
		u, err := s.users.UserByID(ctx, k.userID)
		if err != nil {
			return sessionLookup{}, nil, err
		}
		p := u.Principal()
		return sessionLookup{session: cached.session, principal: p}, s.principalFill(ctx, p), nil
	}
	sess, p, err := s.sessions.SessionWithPrincipal(ctx, k.userID, k.hash)
	if err != nil {
		return sessionLookup{}, nil, err
	}
	writes := append(s.sessionFill(ctx, sess), s.principalFill(ctx, p)...)
	return sessionLookup{session: sess, principal: p}, writes, nil
}

// readSession reads a session and its owner's principal in one round trip (one MGET: both keys
// share a hash slot), coalesced with other callers'. They are decoded through the memo (every
// UST call of an active caller reads the same values again) and copied, so that the caller owns
// what it gets, as it does from the inner store.
func (s *Store) readSession(ctx context.Context, k sessionKeys) (sessionLookup, error) {
	values, err := s.co.mget(ctx, k.session, k.principal)
	if err != nil {
		return sessionLookup{}, err
	}
	if len(values) != 2 {
		return sessionLookup{}, fmt.Errorf("MGET of 2 keys returned %d values", len(values))
	}
	found, err := parseSessionLookup(k, values[0], values[1], time.Now(), s.memo)
	if err != nil {
		return sessionLookup{}, err
	}
	return found.copied(), nil
}

// copied returns l with copies of its session and principal, which may be shared with the memo.
func (l sessionLookup) copied() sessionLookup {
	if l.session != nil {
		sess := *l.session
		sess.StateChanges = slices.Clone(sess.StateChanges)
		l.session = &sess
	}
	if l.principal != nil {
		p := *l.principal
		l.principal = &p
	}
	return l
}

// parseSessionLookup reads what MGET returned of k's session and principal keys. A session that
// has ended at now is not known. With a memo, the session and principal may be shared with other
// look-ups (see memo.go); nil decodes them afresh.
func parseSessionLookup(k sessionKeys, rawSession, rawPrincipal any, now time.Time, memo *decodeMemo) (sessionLookup, error) {
	sessionEntry, err := parseEntry(rawSession)
	if err != nil {
		return sessionLookup{}, fmt.Errorf("session: %w", err)
	}
	principalEntry, err := parseEntry(rawPrincipal)
	if err != nil {
		return sessionLookup{}, fmt.Errorf("principal: %w", err)
	}
	var found sessionLookup
	found.deleted = sessionEntry.state == entryTombstone || principalEntry.state == entryTombstone
	if sessionEntry.state == entryLive {
		sess, err := memo.session(k, sessionEntry)
		if err != nil {
			return sessionLookup{}, fmt.Errorf("session: %w", err)
		}
		if !sess.Expired(now) {
			found.session = sess
		}
	}
	if principalEntry.state == entryLive {
		if found.principal, err = memo.principal(k.principal, principalEntry); err != nil {
			return sessionLookup{}, fmt.Errorf("principal: %w", err)
		}
	}
	return found, nil
}

// storeSession caches sess after a write committed it, and reports whether Redis has it (see
// update); a session that has already ended is replaced by a tombstone.
func (s *Store) storeSession(ctx context.Context, sess *attrcache.Session) bool {
	key := s.keys.session(sess.UserID, sess.Hash)
	if sess.Expired(time.Now()) {
		return s.update(ctx, tombstoneWrite(key, time.Now().Add(tombstoneTTL)))
	}
	w, err := s.sessionWrite(sess)
	if err != nil {
		s.invalidate(ctx, err, key)
		return false
	}
	return s.update(ctx, w)
}

// sessionWrite returns the write that caches sess until it expires.
func (s *Store) sessionWrite(sess *attrcache.Session) (write, error) {
	value, err := encodeSession(sess)
	if err != nil {
		return write{}, fmt.Errorf("encoding the session: %w", err)
	}
	return write{key: s.keys.session(sess.UserID, sess.Hash), value: value, version: sess.Version, expireAt: sess.ExpirationTime}, nil
}

// sessionFill returns the writes that cache a session read from the inner store: none when it
// has expired or cannot be encoded.
func (s *Store) sessionFill(ctx context.Context, sess *attrcache.Session) []write {
	if sess.Expired(time.Now()) {
		return nil
	}
	w, err := s.sessionWrite(sess)
	if err != nil {
		s.warn(ctx, "cache: not filling", s.keys.session(sess.UserID, sess.Hash), err)
		return nil
	}
	return []write{w}
}

// principalFill returns the writes that cache a principal read from the inner store: none when it
// cannot be encoded.
func (s *Store) principalFill(ctx context.Context, p *attrcache.Principal) []write {
	w, err := s.principalWrite(p)
	if err != nil {
		s.warn(ctx, "cache: not filling", s.keys.principal(p.UserID), err)
		return nil
	}
	return []write{w}
}
