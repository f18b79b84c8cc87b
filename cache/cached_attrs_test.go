package cache

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

// cachedAttrScope says whose attributes a CachedAttrs test reads, relative to the caller.
type cachedAttrScope int

const (
	callerUserScope    cachedAttrScope = iota // the caller's own user attributes
	callerSessionScope                        // the attributes of the caller's own session
	otherSessionScope                         // the attributes of a session of another user
	otherUserScope                            // another user's user attributes
)

var cachedAttrScopes = []cachedAttrScope{callerUserScope, callerSessionScope, otherSessionScope, otherUserScope}

func (k cachedAttrScope) String() string {
	return [...]string{"caller's user", "caller's session", "other user's session", "other user"}[k]
}

// The attributes every CachedAttrs fixture holds in its scope, and what Redis holds of each.
var cachedAttrStates = map[string]entryState{
	"live":     entryLive,      // never expires
	"expiring": entryLive,      // expires in an hour
	"deleted":  entryTombstone, // set, then deleted
	"absent":   entryAbsent,    // read once while it did not exist
}

// cachedAttrNames are the names of cachedAttrStates, in a fixed order.
var cachedAttrNames = []string{"live", "expiring", "deleted", "absent"}

// Lifetimes of the fixture's sessions: the scope owner's ends first, so that a query can be made
// at a time when one of them has ended and the other has not.
const (
	callerLifetime = 24 * time.Hour
	ownerLifetime  = 12 * time.Hour
)

// cachedAttrsFixture is a caller and a scope whose sessions, principals and attributes Redis
// holds in full, and the query that reads them.
type cachedAttrsFixture struct {
	kind  cachedAttrScope
	a     *AttrStore
	inner *countingStore
	hook  *faultHook
	trips *roundTripHook
	plain redis.UniversalClient // without hooks: for the test's own reads and writes of Redis

	caller *attrcache.Session
	// owner is the scope's session for a session scope, and for another user's scope the
	// session whose look-up cached their principal; nil for the caller's own user scope.
	owner *attrcache.Session
	query attrcache.CachedAttrQuery
}

// newCachedAttrsFixture creates the caller, and for another user's scope that user, in MySQL;
// caches their sessions and principals as a UST call would; writes the attributes of
// cachedAttrStates through the cache; and checks that Redis holds all of it.
func newCachedAttrsFixture(t *testing.T, kind cachedAttrScope, opts Options) *cachedAttrsFixture {
	t.Helper()
	ctx := context.Background()
	f := &cachedAttrsFixture{kind: kind, hook: newFaultHook(), trips: &roundTripHook{}, plain: newRedis(t)}
	f.a, f.inner = newAttrTestStoreWith(t, newRedis(t, f.hook, f.trips), opts)

	callerUser := newUser(t)
	f.caller = newSession(t, callerUser.UserID, callerLifetime)
	warm(t, f.a.s, f.inner, f.caller)
	scope := attrcache.AttrScope{UserID: callerUser.UserID}
	switch kind {
	case callerSessionScope:
		f.owner = f.caller
		scope.Session = f.caller.Hash
	case otherSessionScope, otherUserScope:
		other := newUser(t)
		f.owner = newSession(t, other.UserID, ownerLifetime)
		warm(t, f.a.s, f.inner, f.owner)
		scope.UserID = other.UserID
		if kind == otherSessionScope {
			scope.Session = f.owner.Hash
		}
	}

	now := attrcache.Now()
	writes := []attrcache.AttrWrite{item("live", "one"), item("expiring", "two", now.Add(time.Hour)), item("deleted", "three")}
	if _, err := f.a.SetAttrs(ctx, scope, writes, now); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	if _, err := f.a.DeleteAttrs(ctx, scope, []string{"deleted"}, now); err != nil {
		t.Fatalf("DeleteAttrs: %v", err)
	}
	if got := cachedAttrs(t, f.a, scope, "absent"); len(got) != 0 {
		t.Fatalf("Attrs(absent) = %v, want none", describeAttrs(got))
	}
	for name, want := range cachedAttrStates {
		if got := cachedEntry(t, f.a, scope, name).state; got != want {
			t.Fatalf("Redis holds %q in state %v, want %v", name, got, want)
		}
	}
	checkRedisMatchesMySQL(t, f.a, scope, cachedAttrNames...)

	f.query = attrcache.CachedAttrQuery{
		CallerID: callerUser.UserID,
		Caller:   f.caller.Hash,
		Scope:    scope,
		Names:    slices.Clone(cachedAttrNames),
		Now:      attrcache.Now(),
	}
	f.inner.reset()
	f.hook.reset()
	f.trips.reset()
	return f
}

// Keys of the fixture's caller, scope owner and attributes.
func (f *cachedAttrsFixture) callerSessionKey() string {
	return f.a.s.keys.session(f.caller.UserID, f.caller.Hash)
}

func (f *cachedAttrsFixture) callerPrincipalKey() string {
	return f.a.s.keys.principal(f.caller.UserID)
}

func (f *cachedAttrsFixture) ownerSessionKey() string {
	return f.a.s.keys.session(f.owner.UserID, f.owner.Hash)
}

func (f *cachedAttrsFixture) ownerPrincipalKey() string {
	return f.a.s.keys.principal(f.owner.UserID)
}

func (f *cachedAttrsFixture) attrKey(name string) string {
	return f.a.s.keys.attrPrefix(f.query.Scope) + name
}

// cachedRead calls CachedAttrs and fails the test if the call reached the inner (MySQL) stores.
func (f *cachedAttrsFixture) cachedRead(t *testing.T, q attrcache.CachedAttrQuery) (attrcache.CachedAttrAnswer, bool) {
	t.Helper()
	f.inner.reset()
	answer, ok := f.a.CachedAttrs(context.Background(), q)
	if calls := f.inner.counts(); len(calls) != 0 {
		t.Errorf("CachedAttrs reached the inner stores: %v, want no calls", calls)
	}
	return answer, ok
}

// checkAnswer fails the test unless answer holds what MySQL holds of q: the caller's session and
// principal, the scope owner's as the kind of scope calls for, and the attributes of q.Names
// that exist.
func (f *cachedAttrsFixture) checkAnswer(t *testing.T, q attrcache.CachedAttrQuery, answer attrcache.CachedAttrAnswer) {
	t.Helper()
	wantSession, wantPrincipal := storedSession(t, f.caller)
	if !reflect.DeepEqual(answer.CallerSession, wantSession) {
		t.Errorf("CallerSession = %+v, want the stored %+v", answer.CallerSession, wantSession)
	}
	if !reflect.DeepEqual(answer.CallerPrincipal, wantPrincipal) {
		t.Errorf("CallerPrincipal = %+v, want the stored %+v", answer.CallerPrincipal, wantPrincipal)
	}

	var wantOwnerSession *attrcache.Session
	var wantOwnerPrincipal *attrcache.Principal
	switch f.kind {
	case callerSessionScope, otherSessionScope:
		wantOwnerSession, wantOwnerPrincipal = storedSession(t, f.owner)
	case otherUserScope:
		_, wantOwnerPrincipal = storedSession(t, f.owner)
	}
	if !reflect.DeepEqual(answer.OwnerSession, wantOwnerSession) {
		t.Errorf("OwnerSession = %+v, want %+v", answer.OwnerSession, wantOwnerSession)
	}
	if !reflect.DeepEqual(answer.OwnerPrincipal, wantOwnerPrincipal) {
		t.Errorf("OwnerPrincipal = %+v, want %+v", answer.OwnerPrincipal, wantOwnerPrincipal)
	}

	want := mysqlAttrs(t, q.Scope, q.Names...)
	for _, name := range q.Names {
		if exists := cachedAttrStates[name] == entryLive; exists != (want[name] != nil) {
			t.Fatalf("MySQL holds %q: %v, but the fixture says %v", name, want[name] != nil, exists)
		}
	}
	if !reflect.DeepEqual(answer.Attrs, want) {
		t.Errorf("Attrs = %v, want MySQL's %v", describeAttrs(answer.Attrs), describeAttrs(want))
	}
}

// storedSession returns sess and its owner's principal as MySQL holds them.
func storedSession(t *testing.T, sess *attrcache.Session) (*attrcache.Session, *attrcache.Principal) {
	t.Helper()
	s, p, err := testDB.SessionWithPrincipal(context.Background(), sess.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("reading the session from MySQL: %v", err)
	}
	return s, p
}

// roundTripHook counts the round trips a client makes: each command sent alone, and each
// pipeline, is one.
type roundTripHook struct {
	mu    sync.Mutex
	trips int
}

func (h *roundTripHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trips
}

func (h *roundTripHook) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips = 0
}

func (h *roundTripHook) add() {
	h.mu.Lock()
	h.trips++
	h.mu.Unlock()
}

func (h *roundTripHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add()
		return next(ctx, cmd)
	}
}

func (h *roundTripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add()
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*roundTripHook)(nil)

// setKey makes Redis hold value at key, without expiry.
func setKey(t *testing.T, rdb redis.UniversalClient, key, value string) {
	t.Helper()
	if err := rdb.Set(context.Background(), key, value, 0).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

// checkTombstone fails the test unless Redis holds a tombstone at key.
func checkTombstone(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	raw, ok := rawValue(t, rdb, key)
	if !ok {
		t.Fatalf("%s does not exist, want a tombstone", key)
	}
	if e, err := parseEntry(raw); err != nil || e.state != entryTombstone {
		t.Fatalf("%s holds state %v (err %v), want a tombstone", key, e.state, err)
	}
}

// markFloor puts over key a floor above any version, as the relay leaves over a stale copy.
func (f *cachedAttrsFixture) markFloor(t *testing.T, key string) {
	t.Helper()
	if _, ok := rawValue(t, f.plain, key); !ok {
		t.Fatalf("%s is not in Redis before the floor covers it", key)
	}
	setKey(t, f.plain, key, floorMark+"9000000000000000000")
}

// without returns names without drop.
func without(names []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == drop })
}

func TestCachedAttrsHit(t *testing.T) {
	for _, kind := range cachedAttrScopes {
		t.Run(kind.String(), func(t *testing.T) {
			f := newCachedAttrsFixture(t, kind, Options{})
			answer, ok := f.cachedRead(t, f.query)
			if !ok {
				t.Fatal("CachedAttrs ok = false with everything cached, want true")
			}
			f.checkAnswer(t, f.query, answer)
			if _, ok := answer.Attrs["deleted"]; ok {
				t.Error("a deleted attribute (tombstone) is in the answer")
			}
			if _, ok := answer.Attrs["absent"]; ok {
				t.Error("an absent attribute (absent marker) is in the answer")
			}

			// One round trip of MGETs: one MGET when the caller owns the scope, else one per user.
			wantMGets := 1
			if kind == otherSessionScope || kind == otherUserScope {
				wantMGets = 2
			}
			if got, want := f.hook.sentAll(), map[string]int{"mget": wantMGets}; !maps.Equal(got, want) {
				t.Errorf("commands sent = %v, want %v", got, want)
			}
			if n := f.trips.count(); n != 1 {
				t.Errorf("round trips = %d, want 1", n)
			}
		})
	}
}

// cachedAttrsCase changes a fixture, or the query, so that CachedAttrs must (or still can)
// answer. Cases that want ok true check the answer fully; the others check that the query
// answered before the change.
type cachedAttrsCase struct {
	name   string
	kinds  []cachedAttrScope // nil: every kind
	change func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery)
	wantOK bool
}

func TestCachedAttrsNeedsEverythingInRedis(t *testing.T) {
	ctx := context.Background()
	tests := []cachedAttrsCase{
		// The caller.
		{
			name: "caller's session not in Redis",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				deleteKey(t, f.a.s, f.callerSessionKey())
			},
		},
		{
			name: "caller's principal not in Redis",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				deleteKey(t, f.a.s, f.callerPrincipalKey())
			},
		},
		{
			name: "caller's session deleted (tombstone)",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				if err := f.a.s.DeleteSession(ctx, f.caller.UserID, f.caller.Hash); err != nil {
					t.Fatalf("DeleteSession: %v", err)
				}
				checkTombstone(t, f.plain, f.callerSessionKey())
			},
		},
		{
			name: "caller deleted (tombstone)",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				if _, err := f.a.s.DeleteUser(ctx, f.caller.UserID); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
				checkTombstone(t, f.plain, f.callerPrincipalKey())
			},
		},
		{
			name:  "just before the caller's session ends",
			kinds: []cachedAttrScope{callerUserScope, callerSessionScope, otherUserScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Names = without(q.Names, "expiring")
				q.Now = f.caller.ExpirationTime.Add(-time.Microsecond)
			},
			wantOK: true,
		},
		{
			name:  "caller's session ended at Now, still in Redis",
			kinds: []cachedAttrScope{callerUserScope, callerSessionScope, otherUserScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Names = without(q.Names, "expiring")
				q.Now = f.caller.ExpirationTime
			},
		},
		{
			name: "caller's session under a floor",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.callerSessionKey())
			},
		},
		{
			name: "caller's principal under a floor",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.callerPrincipalKey())
			},
		},

		// The attributes.
		{
			name: "an attribute's key not in Redis",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				deleteKey(t, f.a.s, f.attrKey("live"))
			},
		},
		{
			name: "a name Redis knows nothing of",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Names = append(q.Names, "never-read")
			},
		},
		{
			name: "just before an attribute expires",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Now = mysqlAttrs(t, q.Scope, "expiring")["expiring"].ExpirationTime.Add(-time.Microsecond)
			},
			wantOK: true,
		},
		{
			name: "an attribute expired at Now, still in Redis",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Now = mysqlAttrs(t, q.Scope, "expiring")["expiring"].ExpirationTime
				if _, ok := rawValue(t, f.plain, f.attrKey("expiring")); !ok {
					t.Fatal("Redis no longer holds the expiring attribute")
				}
			},
		},
		{
			name: "an attribute's key holds something unreadable",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				setKey(t, f.plain, f.attrKey("live"), "garbage")
			},
		},
		{
			name: "an attribute's key under a floor",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.attrKey("live"))
			},
		},
		{
			name: "an absent marker's key under a floor",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.attrKey("absent"))
			},
		},

		// The scope's owner, when not the caller.
		{
			name:  "scope's session not in Redis",
			kinds: []cachedAttrScope{otherSessionScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				deleteKey(t, f.a.s, f.ownerSessionKey())
			},
		},
		{
			name:  "scope's session deleted (tombstone)",
			kinds: []cachedAttrScope{otherSessionScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				if err := f.a.s.DeleteSession(ctx, f.owner.UserID, f.owner.Hash); err != nil {
					t.Fatalf("DeleteSession: %v", err)
				}
				checkTombstone(t, f.plain, f.ownerSessionKey())
			},
		},
		{
			name:  "just before the scope's session ends",
			kinds: []cachedAttrScope{otherSessionScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Names = without(q.Names, "expiring")
				q.Now = f.owner.ExpirationTime.Add(-time.Microsecond)
			},
			wantOK: true,
		},
		{
			name:  "scope's session ended at Now, still in Redis",
			kinds: []cachedAttrScope{otherSessionScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				q.Names = without(q.Names, "expiring")
				q.Now = f.owner.ExpirationTime
			},
		},
		{
			name:  "scope's session under a floor",
			kinds: []cachedAttrScope{otherSessionScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.ownerSessionKey())
			},
		},
		{
			name:  "scope owner's principal not in Redis",
			kinds: []cachedAttrScope{otherSessionScope, otherUserScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				deleteKey(t, f.a.s, f.ownerPrincipalKey())
			},
		},
		{
			name:  "scope owner deleted (tombstone)",
			kinds: []cachedAttrScope{otherSessionScope, otherUserScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				if _, err := f.a.s.DeleteUser(ctx, f.owner.UserID); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
				checkTombstone(t, f.plain, f.ownerPrincipalKey())
			},
		},
		{
			name:  "scope owner's principal under a floor",
			kinds: []cachedAttrScope{otherSessionScope, otherUserScope},
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				f.markFloor(t, f.ownerPrincipalKey())
			},
		},

		// Redis.
		{
			name:   "Redis fails",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) { f.hook.setFailing(true) },
		},
		{
			name: "Redis unreachable",
			change: func(t *testing.T, f *cachedAttrsFixture, q *attrcache.CachedAttrQuery) {
				// The same prefix, and so the same keys, on a client that cannot connect.
				f.a, f.inner = newAttrTestStore(t, unreachableRedis(t))
			},
		},
	}
	for _, kind := range cachedAttrScopes {
		t.Run(kind.String(), func(t *testing.T) {
			for _, tt := range tests {
				if tt.kinds != nil && !slices.Contains(tt.kinds, kind) {
					continue
				}
				t.Run(tt.name, func(t *testing.T) {
					f := newCachedAttrsFixture(t, kind, Options{})
					q := f.query
					if _, ok := f.cachedRead(t, q); !ok {
						t.Fatal("CachedAttrs ok = false before the change, want true")
					}
					q.Names = slices.Clone(q.Names)
					tt.change(t, f, &q)
					f.hook.reset()

					answer, ok := f.cachedRead(t, q)
					if ok != tt.wantOK {
						t.Fatalf("CachedAttrs ok = %v, want %v", ok, tt.wantOK)
					}
					if ok {
						f.checkAnswer(t, q, answer)
					}
				})
			}
		})
	}
}

func TestCachedAttrsMetrics(t *testing.T) {
	for _, kind := range []cachedAttrScope{callerUserScope, otherSessionScope} {
		t.Run(kind.String(), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			f := newCachedAttrsFixture(t, kind, Options{Metrics: metrics.New(reg)})
			attrOp := opUserAttrs
			if f.query.Scope.IsSession() {
				attrOp = opSessionAttrs
			}
			counters := []struct{ op, result string }{
				{opSessionWithPrincipal, metrics.CacheHit},
				{opSessionWithPrincipal, metrics.CacheMiss},
				{opSessionWithPrincipal, metrics.CacheError},
				{attrOp, metrics.CacheHit},
				{attrOp, metrics.CacheMiss},
				{attrOp, metrics.CacheError},
			}
			read := func() map[string]float64 {
				out := make(map[string]float64, len(counters))
				for _, c := range counters {
					out[c.op+" "+c.result] = cacheRequests(t, reg, c.op, c.result)
				}
				return out
			}

			// A hit counts a hit of the session look-up and one of the attribute read.
			before := read()
			if _, ok := f.cachedRead(t, f.query); !ok {
				t.Fatal("CachedAttrs ok = false with everything cached, want true")
			}
			want := maps.Clone(before)
			want[opSessionWithPrincipal+" "+metrics.CacheHit]++
			want[attrOp+" "+metrics.CacheHit]++
			if got := read(); !maps.Equal(got, want) {
				t.Errorf("after a hit, counters = %v, want %v", got, want)
			}

			// Neither a miss nor a failure counts: the usual path, taken next, counts them.
			q := f.query
			q.Names = append(slices.Clone(q.Names), "never-read")
			before = read()
			if _, ok := f.cachedRead(t, q); ok {
				t.Fatal("CachedAttrs ok = true with a name Redis knows nothing of, want false")
			}
			f.hook.setFailing(true)
			if _, ok := f.cachedRead(t, f.query); ok {
				t.Fatal("CachedAttrs ok = true with Redis failing, want false")
			}
			if got := read(); !maps.Equal(got, before) {
				t.Errorf("after a miss and a failure, counters = %v, want them unchanged at %v", got, before)
			}
		})
	}
}
