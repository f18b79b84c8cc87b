package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

var _ attrcache.AttrStore = (*AttrStore)(nil)

// AttrStore is the Redis cache in front of an attrcache.AttrStore: one key per attribute, which
// expires in Redis when the attribute does. It shares its Store's Redis client, key prefix,
// and logger, and is safe for concurrent use.
//
// A session's attributes are served from Redis only while Redis also holds the live session and
// its owner's principal, so that they end with the session as they do in the inner store.
type AttrStore struct {
	s     *Store
	inner attrcache.AttrStore
}

// NewAttrStore returns an AttrStore that caches inner's attributes in s's Redis. It has nothing of
// its own to close: s.Close stops the background work both share.
func NewAttrStore(s *Store, inner attrcache.AttrStore) *AttrStore {
	return &AttrStore{s: s, inner: inner}
}

// SetAttrs sets the items in the inner store, then caches them as stored.
func (a *AttrStore) SetAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	stored, err := a.inner.SetAttrs(ctx, scope, items, now)
	if err != nil {
		return nil, err
	}
	if a.store(ctx, scope, stored) {
		receipt.Applied()
	}
	return stored, nil
}

// CreateAttrs creates the items in the inner store, then caches them as stored.
func (a *AttrStore) CreateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	created, err := a.inner.CreateAttrs(ctx, scope, items, now)
	if err != nil {
		return nil, err
	}
	if a.store(ctx, scope, created) {
		receipt.Applied()
	}
	return created, nil
}

// UpdateAttrs updates the items in the inner store, then caches those it updated as stored.
func (a *AttrStore) UpdateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	updated, err := a.inner.UpdateAttrs(ctx, scope, items, now)
	if err != nil {
		return nil, err
	}
	if a.store(ctx, scope, updated) {
		receipt.Applied()
	}
	return updated, nil
}

// DeleteAttrs deletes the attributes from the inner store, then leaves in Redis, for each name, a
// tombstone of the version the inner store returns: it keeps out every copy read before the
// deletion, and gives way to the next write of the name.
func (a *AttrStore) DeleteAttrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (int64, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	version, err := a.inner.DeleteAttrs(ctx, scope, names, now)
	if err != nil || len(names) == 0 {
		return version, err
	}
	if a.tombstones(ctx, scope, names, version) {
		receipt.Applied()
	}
	return version, nil
}

// tombstones leaves in Redis a tombstone of version for each of names of scope, and reports
// whether Redis took them all.
func (a *AttrStore) tombstones(ctx context.Context, scope attrcache.AttrScope, names []string, version int64) bool {
	expireAt := time.Now().Add(tombstoneTTL)
	writes := make([]write, len(names))
	for i, key := range a.s.keys.attrs(scope, names) {
		writes[i] = versionedTombstoneWrite(key, version, expireAt)
	}
	return a.s.update(ctx, writes...)
}

// WriteAttrsChecked writes in the inner store, then caches what it wrote as SetAttrs and
// DeleteAttrs do: the attributes as stored, and a tombstone for each name deleted.
func (a *AttrStore) WriteAttrsChecked(ctx context.Context, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, atomic bool, now time.Time) ([]attrcache.AttrOutcome, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	outcomes, err := a.inner.WriteAttrsChecked(ctx, scope, op, items, atomic, now)
	if err != nil {
		return nil, err
	}
	var stored []*attrcache.Attr
	var deleted []string
	var tombstone int64
	for i, o := range outcomes {
		switch {
		case o.Stored != nil:
			stored = append(stored, o.Stored)
		case o.Tombstone != 0:
			deleted, tombstone = append(deleted, items[i].Name), o.Tombstone
		}
	}
	applied := true
	if len(stored) > 0 {
		applied = a.store(ctx, scope, stored)
	}
	if len(deleted) > 0 {
		applied = a.tombstones(ctx, scope, deleted, tombstone) && applied
	}
	if applied {
		receipt.Applied()
	}
	return outcomes, nil
}

// AttrNames returns the names from the inner store: single keys cannot answer for a listing.
func (a *AttrStore) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	return a.inner.AttrNames(ctx, scope, now)
}

// Attrs returns the named attributes that exist and are live at now, keyed by name. Redis answers
// for the names it knows, in one round trip however many there are; the others are read from the
// inner store in one call shared by every concurrent caller asking for the same names, and then
// cached, those that do not exist as absent for a while. A failing Redis, or one not trusted
// since it failed (redisTrust), sends the whole call to the inner store.
func (a *AttrStore) Attrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (map[string]*attrcache.Attr, error) {
	if len(names) == 0 {
		return map[string]*attrcache.Attr{}, nil
	}
	op := opUserAttrs
	if scope.IsSession() {
		op = opSessionAttrs
	}
	keys := a.s.keys.attrs(scope, names)
	if !a.s.trust.ok() || a.s.hides(keys[0]) {
		a.s.metrics.ObserveCache(op, metrics.CacheMiss)
		return a.inner.Attrs(ctx, scope, names, now)
	}
	cached, err := a.read(ctx, scope, names, keys, now)
	if err != nil {
		a.s.trust.readFailed(ctx)
		a.s.metrics.ObserveCache(op, metrics.CacheError)
		a.s.warn(ctx, "cache: read failed; using the store", keys[0], err)
		return a.inner.Attrs(ctx, scope, names, now)
	}
	if len(cached.missing) == 0 {
		a.s.metrics.ObserveCache(op, metrics.CacheHit)
		return cached.found, nil
	}
	a.s.metrics.ObserveCache(op, metrics.CacheMiss)
	flight := attrFlight(op, scope, cached.missing, cached.ownerUnknown)
	loaded, err := shareLoad(ctx, &a.s.loads, flight, func(ctx context.Context) (map[string]*attrcache.Attr, error) {
		return a.load(ctx, scope, cached.missing, cached.ownerUnknown, now)
	})
	if err != nil {
		return nil, err
	}
	// The load may be another caller's, with an earlier now and callers of its own: keep what is
	// live at this caller's now, each in a copy of its own.
	for name, attr := range loaded {
		if attr.Live(now) {
			own := *attr
			cached.found[name] = &own
		}
	}
	return cached.found, nil
}

// attrLookup is what Redis says of some of one scope's attributes.
type attrLookup struct {
	found map[string]*attrcache.Attr // live at now
	// missing lists the names Redis cannot answer for, sorted, without repetition.
	missing []string
	// ownerUnknown is set for a session scope when Redis does not hold the live session and its
	// owner: every name is missing then, and the session must be checked before the attributes.
	ownerUnknown bool
}

// ownerKeys returns the keys, besides the attributes', that a read of scope depends on: for a
// session scope those of the session and its owner's principal.
func (a *AttrStore) ownerKeys(scope attrcache.AttrScope) []string {
	if !scope.IsSession() {
		return nil
	}
	k := a.s.sessionKeys(scope.UserID, scope.Session)
	return []string{k.session, k.principal}
}

// read reads the attributes called names, at keys, in one MGET (all of one user's keys share a
// hash slot), with the session and principal of a session scope. A value that has expired at now
// counts as missing; a tombstone or an absent marker as known not to exist.
func (a *AttrStore) read(ctx context.Context, scope attrcache.AttrScope, names, keys []string, now time.Time) (attrLookup, error) {
	ownerKeys := a.ownerKeys(scope)
	values, err := a.s.co.mget(ctx, append(ownerKeys, keys...)...)
	if err != nil {
		return attrLookup{}, err
	}
	if want := len(ownerKeys) + len(keys); len(values) != want {
		return attrLookup{}, fmt.Errorf("MGET of %d keys returned %d values", want, len(values))
	}
	lookup := attrLookup{found: make(map[string]*attrcache.Attr, len(names))}
	if len(ownerKeys) > 0 {
		owner, err := parseSessionLookup(a.s.sessionKeys(scope.UserID, scope.Session), values[0], values[1], now, nil)
		if err != nil {
			return attrLookup{}, err
		}
		switch _, done, err := owner.answer(); {
		case done && err != nil: // the session or its owner is deleted, and their attributes with them
			return lookup, nil
		case !done:
			lookup.missing = slices.Compact(slices.Sorted(slices.Values(names)))
			lookup.ownerUnknown = true
			return lookup, nil
		}
		values = values[len(ownerKeys):]
	}
	for i, raw := range values {
		e, err := parseEntry(raw)
		if err != nil {
			return attrLookup{}, fmt.Errorf("attribute %q: %w", names[i], err)
		}
		if e.state == entryLive {
			attr, err := decodeAttr(scope, names[i], e)
			if err != nil {
				return attrLookup{}, fmt.Errorf("attribute %q: %w", names[i], err)
			}
			if attr.Live(now) {
				lookup.found[names[i]] = attr
				continue
			}
		}
		if e.state == entryNoKey || e.state == entryLive || e.state == entryFloor {
			lookup.missing = append(lookup.missing, names[i])
		}
	}
	slices.Sort(lookup.missing)
	lookup.missing = slices.Compact(lookup.missing)
	return lookup, nil
}

// load reads the attributes called names from the inner store, after checking, when
// checkSession is set, that the session of a session scope is live, and caches them: those found
// until they expire, the others as absent for the absent TTL, within the user's absent budget.
func (a *AttrStore) load(ctx context.Context, scope attrcache.AttrScope, names []string, checkSession bool, now time.Time) (map[string]*attrcache.Attr, error) {
	// A caller that missed just before another caller's load filled Redis would otherwise read
	// MySQL a second time for the same names.
	again, err := a.read(ctx, scope, names, a.s.keys.attrs(scope, names), now)
	if err == nil && !again.ownerUnknown && len(again.missing) == 0 {
		return again.found, nil
	}
	if checkSession {
		// Through the Store, which caches the session and its owner for the next reads.
		sess, _, err := a.s.SessionWithPrincipal(ctx, scope.UserID, scope.Session)
		if errors.Is(err, attrcache.ErrNotFound) {
			return map[string]*attrcache.Attr{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cache: session of attributes: %w", err)
		}
		if sess.Expired(now) {
			return map[string]*attrcache.Attr{}, nil
		}
	}
	attrs, err := a.inner.Attrs(ctx, scope, names, now)
	if err != nil {
		return nil, err
	}
	writeTime := time.Now()
	keys := a.s.keys.attrs(scope, names)
	budget := a.s.keys.absentBudget(scope.UserID)
	writes := make([]write, 0, len(names))
	for i, name := range names {
		attr, ok := attrs[name]
		if !ok {
			writes = append(writes, absentWrite(keys[i], writeTime.Add(a.s.absentTTL)).withBudget(budget, a.s.absentMax))
			continue
		}
		w, err := attrCopyWrite(keys[i], attr, writeTime)
		if err != nil {
			a.s.warn(ctx, "cache: not filling", keys[i], err)
			continue
		}
		writes = append(writes, w)
	}
	a.s.fill(ctx, writes...)
	return attrs, nil
}

// store caches attrs, as the inner store returned them after committing a write of scope, in one
// pipeline, and reports whether Redis has every one (see update).
func (a *AttrStore) store(ctx context.Context, scope attrcache.AttrScope, attrs []*attrcache.Attr) bool {
	writeTime := time.Now()
	prefix := a.s.keys.attrPrefix(scope)
	writes := make([]write, 0, len(attrs))
	ok := true
	for _, attr := range attrs {
		key := prefix + attr.Name
		w, err := attrCopyWrite(key, attr, writeTime)
		if err != nil {
			a.s.invalidate(ctx, err, key)
			ok = false
			continue
		}
		writes = append(writes, w)
	}
	return a.s.update(ctx, writes...) && ok
}

// attrCopyWrite returns the write that caches attr at key until it expires, or for good when it
// never does. A copy that has expired at now becomes a tombstone of its version instead: the key
// then keeps out the older copies, as the copy itself would have until it expired.
func attrCopyWrite(key string, attr *attrcache.Attr, now time.Time) (write, error) {
	if !attr.Live(now) {
		return versionedTombstoneWrite(key, attr.Version, now.Add(tombstoneTTL)), nil
	}
	value, err := encodeAttr(attr)
	if err != nil {
		return write{}, fmt.Errorf("encoding attribute %q: %w", attr.Name, err)
	}
	w := write{key: key, value: value, version: attr.Version, expireAt: attr.ExpirationTime}
	if !attr.ExpirationTime.Before(attrcache.NeverExpires) {
		w.expireAt = time.Time{}
	}
	return w, nil
}

// attrFlight names the shared load of the sorted names of scope: each name is preceded by its
// length, so that no two lists of names give the same flight.
func attrFlight(op string, scope attrcache.AttrScope, sortedNames []string, checkSession bool) string {
	var b strings.Builder
	b.WriteString(op)
	b.WriteByte(' ')
	b.WriteString(scope.UserID)
	b.WriteByte(' ')
	b.WriteString(string(scope.Session))
	b.WriteByte(' ')
	b.WriteString(strconv.FormatBool(checkSession))
	for _, name := range sortedNames {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(len(name)))
		b.WriteByte(':')
		b.WriteString(name)
	}
	return b.String()
}
