package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
)

// Defaults of RelayOptions.
const (
	DefaultRelayGrace     = 300 * time.Millisecond
	DefaultRelayInterval  = 150 * time.Millisecond
	DefaultRelayRetention = 7 * 24 * time.Hour
)

const (
	// relayPage bounds the batches one poll of the change log takes.
	relayPage = 500
	// purgeEvery is how often a relay deletes the log's batches older than the retention.
	purgeEvery = time.Minute
	// purgeChunk bounds the batches one purge statement deletes.
	purgeChunk = 10000
	// floorTTL is how long a floor stands when no fill replaces it: longer than any read of the
	// inner store can take, as tombstoneTTL.
	floorTTL = tombstoneTTL
)

// RelayOptions configure a Relay.
type RelayOptions struct {
	// Grace is how old a pending change must be before the relay applies it: the writer usually
	// has stored it and dropped its mark by then. 0 means DefaultRelayGrace.
	Grace time.Duration
	// Interval is the time between two polls of the log; 0 means DefaultRelayInterval.
	Interval time.Duration
	// Retention is how long the log keeps a batch; 0 means DefaultRelayRetention.
	Retention time.Duration
}

// Relay applies to Redis the committed changes that no writer is known to have stored: a writer
// that died after its commit, or lost Redis while this instance kept it. Every instance runs one;
// they may apply the same change, which is harmless (ApplyChanges is idempotent). A change is
// applied within Grace + Interval (and a poll) of its commit.
type Relay struct {
	s    *Store
	log  attrcache.ChangeLog
	opts RelayOptions
}

// NewRelay returns a Relay that applies log's pending changes to s's Redis.
func NewRelay(s *Store, log attrcache.ChangeLog, opts RelayOptions) *Relay {
	if opts.Grace <= 0 {
		opts.Grace = DefaultRelayGrace
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultRelayInterval
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRelayRetention
	}
	return &Relay{s: s, log: log, opts: opts}
}

// Run polls the log every Interval and applies what is pending, and purges the batches older
// than the retention once a minute, until ctx ends. Failures are logged when they start and end.
//
// While it runs, the Store reads nothing from Redis after a Redis failure until the relay has
// applied every change pending at the time (catchUp): what this instance failed to store, and
// what others failed to store while Redis was out of reach.
func (r *Relay) Run(ctx context.Context) {
	ticker := time.NewTicker(r.opts.Interval)
	defer ticker.Stop()
	r.s.trust.gated.Store(true)
	defer r.s.trust.gated.Store(false)
	var lastPurge time.Time
	failing := false
	for {
		err := r.catchUp(ctx)
		if err == nil {
			err = r.drain(ctx)
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			r.s.log.WarnContext(ctx, "cache: relay of the change log failing", "err", err)
			failing = true
		case err == nil && failing:
			r.s.log.InfoContext(ctx, "cache: relay of the change log working again")
			failing = false
		}
		if time.Since(lastPurge) >= purgeEvery {
			lastPurge = time.Now()
			if err := r.purge(ctx); err != nil && ctx.Err() == nil {
				r.s.log.WarnContext(ctx, "cache: purging the change log failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// drain relays pages of pending changes at least Grace old until a page is not full.
func (r *Relay) drain(ctx context.Context) error {
	for {
		n, err := r.relayPage(ctx, r.opts.Grace)
		if err != nil || n < relayPage {
			return err
		}
	}
}

// catchUp, when the Store has met a Redis failure since it last trusted Redis, applies every
// pending change, whatever its age, and then lets the Store trust Redis again unless another
// failure came meanwhile.
func (r *Relay) catchUp(ctx context.Context) error {
	failures, trusted := r.s.trust.failures.Load(), r.s.trust.trustedAt.Load()
	if failures == trusted {
		return nil
	}
	for {
		n, err := r.relayPage(ctx, 0)
		if err != nil {
			return err
		}
		if n < relayPage {
			break
		}
	}
	r.s.trust.trustedAt.CompareAndSwap(trusted, failures)
	return nil
}

// RelayOnce applies the pending changes at least Grace old, at most one page of batches, and
// drops their marks; it returns how many batches it applied.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	return r.relayPage(ctx, r.opts.Grace)
}

// relayPage is RelayOnce for the changes at least grace old.
func (r *Relay) relayPage(ctx context.Context, grace time.Duration) (int, error) {
	batches, err := r.log.PendingChanges(ctx, grace, relayPage)
	if err != nil || len(batches) == 0 {
		return 0, err
	}
	var changes []attrcache.Change
	ids := make([]int64, len(batches))
	for i, b := range batches {
		changes = append(changes, b.Changes...)
		ids[i] = b.ID
	}
	if err := r.s.ApplyChanges(ctx, changes); err != nil {
		return 0, err
	}
	if err := r.log.ForgetPending(ctx, ids); err != nil {
		return 0, err
	}
	return len(batches), nil
}

var _ attrcache.ChangeReplayer = (*Relay)(nil)

// Replay applies every change logged at since or later (by the database's clock), oldest first:
// after a Redis failover, what the promoted replica may lack. It returns the first failure.
func (r *Relay) Replay(ctx context.Context, since time.Time) error {
	return r.ReplayChanges(ctx, since, func(string) bool { return true })
}

// ReplayChanges is Replay limited to the changes of the users for whom users reports true: the
// users whose keys are in the slots a failover touched.
func (r *Relay) ReplayChanges(ctx context.Context, since time.Time, users func(userID string) bool) error {
	var after int64
	for {
		batches, err := r.log.ChangesSince(ctx, since, after, relayPage)
		if err != nil {
			return err
		}
		var changes []attrcache.Change
		for _, b := range batches {
			for _, c := range b.Changes {
				if users(c.UserID) {
					changes = append(changes, c)
				}
			}
			after = b.ID
		}
		if err := r.s.ApplyChanges(ctx, changes); err != nil {
			return err
		}
		if len(batches) < relayPage {
			return nil
		}
	}
}

// purge deletes the log's batches older than the retention.
func (r *Relay) purge(ctx context.Context) error {
	before := time.Now().Add(-r.opts.Retention)
	for {
		n, err := r.log.PurgeChanges(ctx, before, purgeChunk)
		if err != nil || n < purgeChunk {
			return err
		}
	}
}

// ApplyChanges makes Redis hold nothing older than changes, committed changes of the inner
// stores: a set leaves a floor of its version (an older copy is not served, and the next read
// fills the row from the inner store), an attribute's deletion its versioned tombstone, and a
// user, session or attribute gone for good the final tombstone. It is idempotent, and never
// hides a copy as new as the change or newer. It returns the first failure of Redis.
func (s *Store) ApplyChanges(ctx context.Context, changes []attrcache.Change) error {
	if len(changes) == 0 {
		return nil
	}
	now := time.Now()
	writes := make([]write, 0, len(changes))
	for _, c := range changes {
		w, err := s.changeWrite(c, now)
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	var errs []error
	for chunk := range slices.Chunk(writes, maxCoalescedCmds) {
		if _, err := s.applyAlone(ctx, chunk...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cache: applying %d changes: %w", len(changes), err)
	}
	return nil
}

// changeWrite returns the write that applies c at now.
func (s *Store) changeWrite(c attrcache.Change, now time.Time) (write, error) {
	var key string
	switch c.Kind {
	case attrcache.ChangeAttr:
		key = s.keys.attr(attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: c.UserID, Session: c.Session}, Name: c.Name})
	case attrcache.ChangePrincipal:
		key = s.keys.principal(c.UserID)
	case attrcache.ChangeSession:
		key = s.keys.session(c.UserID, c.Session)
	default:
		return write{}, fmt.Errorf("cache: a change of unknown kind %q", c.Kind)
	}
	switch {
	case c.Op == attrcache.ChangeSet:
		return floorWrite(key, c.Version, now.Add(floorTTL)), nil
	case c.Op == attrcache.ChangeDelete && c.Kind == attrcache.ChangeAttr:
		return versionedTombstoneWrite(key, c.Version, now.Add(tombstoneTTL)), nil
	case c.Op == attrcache.ChangeGone:
		return tombstoneWrite(key, now.Add(tombstoneTTL)), nil
	}
	return write{}, fmt.Errorf("cache: a change of unknown op %q for kind %q", c.Op, c.Kind)
}

// Start runs Run in the background until ctx ends or stop is called; stop waits for it to end.
func (r *Relay) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
