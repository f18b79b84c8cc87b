// Package cache keeps users' principals and sessions in Redis in front of other store
// implementations (in production the MySQL ones): *Store implements attrcache.UserStore and
// attrcache.SessionStore by wrapping them.
//
// Reads of sessions are served from Redis when it holds them, and otherwise read through to the
// inner stores once however many requests wait, filling Redis. Writes commit to the inner stores
// first and then update Redis. Every Redis write carries the row's version and goes through one
// script that never replaces a newer version and never replaces a tombstone, the mark a deletion
// leaves. Redis failing never fails a request, and never lets a stale value be served: a key
// whose update failed is deleted, or, when that fails too, bypassed until a background loop
// manages to delete it.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/attrcache/attrcache"
)

// DefaultPrincipalTTL is how long a cached principal lives when Options.PrincipalTTL is 0.
const DefaultPrincipalTTL = time.Hour

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
	// Logger receives warnings about Redis failures; nil discards them.
	Logger *slog.Logger
}

// Store is the Redis cache in front of a UserStore and a SessionStore. It is safe for concurrent
// use; Close stops its background work.
type Store struct {
	rdb          redis.UniversalClient
	keys         keyspace
	principalTTL time.Duration
	log          *slog.Logger
	users        attrcache.UserStore
	sessions     attrcache.SessionStore

	loads    singleflight.Group
	suspects *suspects

	stopRetries context.CancelFunc
	retriesDone chan struct{}
	closeOnce   sync.Once
}

// New returns a Store that caches users and sessions in rdb in front of users and sessions, and
// starts the background loop that Close stops. rdb may be a single node, Sentinel or Cluster
// client; the Store does not close it.
func New(rdb redis.UniversalClient, opts Options, users attrcache.UserStore, sessions attrcache.SessionStore) *Store {
	if opts.PrincipalTTL <= 0 {
		opts.PrincipalTTL = DefaultPrincipalTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		rdb:          rdb,
		keys:         keyspace{prefix: opts.Prefix},
		principalTTL: opts.PrincipalTTL,
		log:          opts.Logger,
		users:        users,
		sessions:     sessions,
		suspects:     newSuspects(),
		stopRetries:  cancel,
		retriesDone:  make(chan struct{}),
	}
	go func() {
		defer close(s.retriesDone)
		s.retrySuspects(ctx)
	}()
	return s
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: redis ping: %w", err)
	}
	return nil
}

// Close stops the background loop and waits for it to end. It does not close the Redis client.
// Keys still suspect then stay in Redis until they expire.
func (s *Store) Close() error {
	s.closeOnce.Do(s.stopRetries)
	<-s.retriesDone
	return nil
}

// update stores w in Redis after the inner store committed the change it carries. It does not
// fail: if Redis does, the key is invalidated. It runs to the end even when ctx is cancelled,
// since stopping half-way could leave a stale value.
func (s *Store) update(ctx context.Context, w write) {
	ctx = context.WithoutCancel(ctx)
	if s.suspects.contains(w.key) {
		return // the retry loop deletes it; until then nobody reads it
	}
	if _, err := s.apply(ctx, w); err != nil {
		s.invalidate(ctx, w.key, err)
	}
}

// invalidate deletes key, which may hold a value older than a committed change because storing
// that change failed with cause. If the deletion fails too, the key is left to the retry loop and
// bypassed by reads until then.
func (s *Store) invalidate(ctx context.Context, key string, cause error) {
	ctx = context.WithoutCancel(ctx)
	s.suspects.updateFailed()
	s.warn(ctx, "cache: update after commit failed; deleting the key", key, cause)
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		s.warn(ctx, "cache: deleting a key after a failed update failed; bypassing it until deleted", key, err)
		s.suspects.add(key)
	}
}

// fill stores what a read loaded from the inner stores, unless an update failed since epoch (the
// value may be the one that update was meant to replace) or a key has become suspect. A failure
// is only logged: the script never lets a fill replace a newer value.
func (s *Store) fill(ctx context.Context, epoch uint64, writes ...write) {
	if len(writes) == 0 || s.suspects.currentEpoch() != epoch {
		return
	}
	for _, w := range writes {
		if s.suspects.contains(w.key) {
			return
		}
	}
	if _, err := s.apply(ctx, writes...); err != nil {
		s.warn(ctx, "cache: fill failed", writes[0].key, err)
	}
}

// warn logs a Redis failure about key without showing a whole session hash.
func (s *Store) warn(ctx context.Context, msg, key string, err error) {
	s.log.WarnContext(ctx, msg, "key", redactKey(key), "err", err)
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
