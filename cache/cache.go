// Package cache keeps users' principals, sessions and attributes in Redis in front of other
// store implementations (in production the MySQL ones): *Store implements attrcache.UserStore and
// attrcache.SessionStore by wrapping them, and *AttrStore, which shares a Store's Redis client and
// state, implements attrcache.AttrStore.
//
// Reads of sessions and attributes are served from Redis when it holds them, and otherwise read
// through to the inner stores once however many requests wait, filling Redis. Writes commit to
// the inner stores first and then update Redis. Every Redis write carries the row's version and
// goes through one script that never replaces a newer version and never replaces a tombstone, the
// mark a deletion leaves, unless a later write of the row outranks it. Redis failing never fails a
// request. A committed change that this Store could not store in Redis is applied from the inner
// store's change log by the Relay of any instance (relay.go). Every key expires within the max TTL.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

// DefaultPrincipalTTL is how long a cached principal lives when Options.PrincipalTTL is 0.
const DefaultPrincipalTTL = 5 * time.Minute

// DefaultAbsentTTL is how long Redis remembers that an attribute does not exist when
// Options.AbsentTTL is 0.
const DefaultAbsentTTL = 5 * time.Minute

// DefaultMaxTTL is the longest a key lives in Redis when Options.MaxTTL is 0.
const DefaultMaxTTL = 24 * time.Hour

// DefaultAbsentMax is the most absent markers one user may have in Redis at once when
// Options.AbsentMax is 0.
const DefaultAbsentMax = 256

// Cache look-up operations, the op label of the cache metrics.
const (
	opSession              = "session"
	opSessionWithPrincipal = "session_with_principal"
	opUserAttrs            = "attr"
	opSessionAttrs         = "session_attr"
)

// tombstoneTTL is how long a deletion's mark blocks fills: longer than any read of the inner
// store can take.
const tombstoneTTL = 10 * time.Minute

var (
	_ attrcache.UserStore    = (*Store)(nil)
	_ attrcache.SessionStore = (*Store)(nil)
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key the store writes.
	Prefix string
	// PrincipalTTL is how long a principal stays cached after it was last stored; 0 means
	// DefaultPrincipalTTL. Sessions stay cached until they expire.
	PrincipalTTL time.Duration
	// AbsentTTL is how long a read that found no attribute remembers it in Redis, so that asking
	// again does not reach the inner store; 0 means DefaultAbsentTTL. A write of the attribute
	// ends it at once.
	AbsentTTL time.Duration
	// AbsentMax is the most absent markers one user may have in Redis at once (keys.go); 0
	// means DefaultAbsentMax. A read of a missing attribute past it is not remembered.
	AbsentMax int
	// Metrics counts cache hits, misses and errors; nil counts nothing.
	Metrics *metrics.Metrics
	// Logger receives warnings about Redis failures; nil discards them.
	Logger *slog.Logger
	// Coalescers is how many pipelines of concurrent callers' commands may be in flight at once
	// (see coalesce.go); 0 means DefaultCoalescers.
	Coalescers int
	// MaxTTL bounds how long any key lives in Redis, also the copy of what never expires in the
	// inner store; 0 means DefaultMaxTTL.
	MaxTTL time.Duration
	// AfterCommit, for tests of crashes, runs after the inner store committed a write and before
	// Redis is updated; when it returns false the update is abandoned there, as a writer that
	// died at that point would abandon it. nil: always go on.
	AfterCommit func(ctx context.Context) bool
}

// Store is the Redis cache in front of a UserStore and a SessionStore. It is safe for concurrent
// use; Close stops its background work.
type Store struct {
	rdb          redis.UniversalClient
	keys         keyspace
	principalTTL time.Duration
	absentTTL    time.Duration
	absentMax    int
	maxTTL       time.Duration
	afterCommit  func(ctx context.Context) bool
	metrics      *metrics.Metrics
	log          *slog.Logger
	users        attrcache.UserStore
	sessions     attrcache.SessionStore

	loads    singleflight.Group
	co       *coalescer
	memo     *decodeMemo
	trust    redisTrust
	failover failoverState

	closeOnce sync.Once
}

// New returns a Store that caches users and sessions in rdb in front of users and sessions. rdb
// may be a single node, Sentinel or Cluster client; the Store does not close it.
func New(rdb redis.UniversalClient, opts Options, users attrcache.UserStore, sessions attrcache.SessionStore) *Store {
	if opts.PrincipalTTL <= 0 {
		opts.PrincipalTTL = DefaultPrincipalTTL
	}
	if opts.AbsentTTL <= 0 {
		opts.AbsentTTL = DefaultAbsentTTL
	}
	if opts.AbsentMax <= 0 {
		opts.AbsentMax = DefaultAbsentMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Coalescers <= 0 {
		opts.Coalescers = DefaultCoalescers
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	return &Store{
		rdb:          rdb,
		keys:         keyspace{prefix: opts.Prefix},
		principalTTL: opts.PrincipalTTL,
		absentTTL:    opts.AbsentTTL,
		absentMax:    opts.AbsentMax,
		maxTTL:       opts.MaxTTL,
		afterCommit:  opts.AfterCommit,
		metrics:      opts.Metrics,
		log:          opts.Logger,
		users:        users,
		sessions:     sessions,
		co:           newCoalescer(rdb, opts.Coalescers, opts.Metrics),
		memo:         &decodeMemo{},
	}
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: redis ping: %w", err)
	}
	return nil
}

// Close stops the coalescer. It does not close the Redis client, and the Store still works after
// it, without coalescing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopFailoverWatch()
		s.co.close()
	})
	return nil
}

// update stores writes in Redis, in one pipeline (one per maxCoalescedCmds writes), after the
// inner store committed the changes they carry, and reports whether every write reached Redis
// (stored, or refused for a newer copy). When it fails it deletes the keys if Redis lets it; either
// way the change's pending mark stays in the inner store's log, and a relay applies it within its
// bound. It runs to the end even when ctx is cancelled, since stopping half-way could leave a
// stale value. The writes must all be keys of one user (one hash slot).
func (s *Store) update(ctx context.Context, writes ...write) bool {
	if s.afterCommit != nil && !s.afterCommit(ctx) {
		return false
	}
	ctx = context.WithoutCancel(ctx)
	ok := true
	// A long list (a deleted user's attributes) goes in calls of at most maxCoalescedCmds, so that
	// other callers' commands are not held behind one huge pipeline.
	for chunk := range slices.Chunk(writes, maxCoalescedCmds) {
		if _, err := s.apply(ctx, chunk...); err != nil {
			ok = false
			s.trust.failed()
			keys := make([]string, len(chunk))
			for i, w := range chunk {
				keys[i] = w.key
			}
			s.invalidate(ctx, err, keys...)
		}
	}
	return ok
}

// invalidate deletes keys, which may hold values older than a committed change because storing
// that change failed with cause. That is only a shortcut: whether or not it works, the change's
// pending mark stays in the inner store's log for the relay. The keys must all be of one user
// (one hash slot).
func (s *Store) invalidate(ctx context.Context, cause error, keys ...string) {
	ctx = context.WithoutCancel(ctx)
	s.warn(ctx, "cache: update after commit failed; deleting the key, the relay applies the change", keys[0], cause)
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		s.warn(ctx, "cache: deleting a key after a failed update failed; the relay applies the change", keys[0], err)
	}
}

// redisTrust says whether reads may use Redis. While a Relay runs (gated), a Redis failure makes
// the Store read from the inner stores alone until the relay has applied every change pending
// after it (Relay.catchUp): Redis may then hold copies that changes committed meanwhile, by this
// instance or another, made stale. It only skips Redis: the change log, not this state, is what
// ends stale copies for every instance.
type redisTrust struct {
	gated     atomic.Bool
	failures  atomic.Uint64 // Redis failures met
	trustedAt atomic.Uint64 // failures when the relay last caught up
}

// failed records a Redis failure.
func (t *redisTrust) failed() { t.failures.Add(1) }

// readFailed records the failure of a read on ctx, unless it failed because ctx ended (the caller
// gave up, which says nothing of Redis).
func (t *redisTrust) readFailed(ctx context.Context) {
	if ctx.Err() == nil {
		t.failed()
	}
}

// ok reports whether reads may use Redis.
func (t *redisTrust) ok() bool {
	return !t.gated.Load() || t.failures.Load() == t.trustedAt.Load()
}

// fill stores what a read loaded from the inner stores. A failure is only logged: the script
// never lets a fill replace a newer value, a tombstone or a floor above it.
func (s *Store) fill(ctx context.Context, writes ...write) {
	if len(writes) == 0 {
		return
	}
	if _, err := s.apply(ctx, writes...); err != nil {
		s.warn(ctx, "cache: fill failed", writes[0].key, err)
	}
}

// warn logs a Redis failure about key (the first, when there are several of one user) without
// showing a whole session hash.
func (s *Store) warn(ctx context.Context, msg, key string, err error) {
	s.log.WarnContext(ctx, msg, "key", s.keys.redact(key), "err", err)
}

// shareLoad runs load once for all concurrent callers with the same flight name. load runs on a
// context that is not cancelled with the caller's, so one caller giving up does not fail the
// others; each caller still stops waiting when its own ctx is done.
func shareLoad[T any](ctx context.Context, g *singleflight.Group, flight string, load func(context.Context) (T, error)) (T, error) {
	detached := context.WithoutCancel(ctx)
	ch := g.DoChan(flight, func() (any, error) { return load(detached) })
	select {
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			var zero T
			return zero, r.Err
		}
		return r.Val.(T), nil
	}
}
