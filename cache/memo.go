package cache

import (
	"sync"

	"github.com/attrcache/attrcache"
)

// Decoding the cached session and principal of a caller is most of what a cached read costs the
// CPU, and an active caller's are read again and again unchanged. The one-round-trip read
// (CachedAttrs) and the session look-ups (readSession) therefore keep what they decoded, keyed by
// the Redis key and the value read there: a value carries its row's version, so the same key and
// value always decode alike, and a changed row is a new entry. What the memo hands out is shared:
// CachedAttrs hands it on read-only, as CachedAttrAnswer says; readSession hands out copies.

// maxMemoEntries bounds each memo; a full memo starts again empty, which costs one decoding per
// active caller.
const maxMemoEntries = 8192

// memoKey is a Redis key and what was read there.
type memoKey struct {
	key     string
	version int64
	payload string
}

// memo keeps decoded values of one kind.
type memo[T any] struct {
	mu      sync.RWMutex
	entries map[memoKey]T
}

// get returns the value decoded from e at key, decoding it with decode the first time.
func (m *memo[T]) get(key string, e entry, decode func(entry) (T, error)) (T, error) {
	k := memoKey{key: key, version: e.version, payload: e.payload}
	m.mu.RLock()
	v, ok := m.entries[k]
	m.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := decode(e)
	if err != nil {
		return v, err
	}
	m.mu.Lock()
	if m.entries == nil || len(m.entries) >= maxMemoEntries {
		m.entries = make(map[memoKey]T)
	}
	m.entries[k] = v
	m.mu.Unlock()
	return v, nil
}

// decodeMemo keeps decoded sessions and principals.
type decodeMemo struct {
	sessions   memo[*attrcache.Session]
	principals memo[*attrcache.Principal]
}

// session decodes the live session entry e of k, or returns it as decoded before.
func (m *decodeMemo) session(k sessionKeys, e entry) (*attrcache.Session, error) {
	if m == nil {
		return decodeSession(k.userID, k.hash, e)
	}
	return m.sessions.get(k.session, e, func(e entry) (*attrcache.Session, error) {
		return decodeSession(k.userID, k.hash, e)
	})
}

// principal decodes the live principal entry e at key, or returns it as decoded before.
func (m *decodeMemo) principal(key string, e entry) (*attrcache.Principal, error) {
	if m == nil {
		return decodePrincipal(e)
	}
	return m.principals.get(key, e, decodePrincipal)
}
