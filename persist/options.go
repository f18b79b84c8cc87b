package persist

import (
	"errors"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

// Option changes how Open sets up the store.
type Option func(*options)

// options are what Open's Options set.
type options struct {
	maxOpenConns int
	maxIdleConns int
	groupCommit  GroupCommit
	quota        Quota
	metrics      *metrics.Metrics
	noFeed       bool
}

// newOptions applies opts over the defaults and checks the result.
func newOptions(opts []Option) (options, error) {
	o := options{maxOpenConns: defaultMaxOpenConns, maxIdleConns: defaultMaxIdleConns}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxOpenConns < 1 {
		return options{}, fmt.Errorf("pool size: %d open connections, want at least 1", o.maxOpenConns)
	}
	if o.maxIdleConns < 0 || o.maxIdleConns > o.maxOpenConns {
		return options{}, fmt.Errorf("pool size: %d idle connections, want 0 to %d (the open ones)", o.maxIdleConns, o.maxOpenConns)
	}
	if err := o.groupCommit.check(); err != nil {
		return options{}, fmt.Errorf("group commit: %w", err)
	}
	if o.quota.MaxAttrs < 0 || o.quota.MaxBytes < 0 {
		return options{}, fmt.Errorf("quota: %d attributes, %d bytes, want 0 (no limit) or more", o.quota.MaxAttrs, o.quota.MaxBytes)
	}
	return o, nil
}

// WithPoolSize sets the most connections the pool opens and the most it keeps idle (0 to
// maxOpen). The defaults are 64 and 64.
func WithPoolSize(maxOpen, maxIdle int) Option {
	return func(o *options) { o.maxOpenConns, o.maxIdleConns = maxOpen, maxIdle }
}

// WithMetrics makes the store record its metrics (those of group commit) on m; nil records
// nothing, as without the option.
func WithMetrics(m *metrics.Metrics) Option {
	return func(o *options) { o.metrics = m }
}

// WithGroupCommit turns on the group commit of single-attribute writes, as gc says; the zero
// GroupCommit leaves it off.
func WithGroupCommit(gc GroupCommit) Option {
	return func(o *options) { o.groupCommit = gc }
}

// WithQuota bounds what each user may store, as q says; the zero Quota, the default, bounds
// nothing. With a limit set, every write of attributes is a transaction of its own, statement
// by statement (no group commit, no one-round-trip writes), that checks the quota (Quota).
func WithQuota(q Quota) Option {
	return func(o *options) { o.quota = q }
}

// WithChangeFeed(false) says that nothing numbers the change feed (no SequenceFeed runs):
// PurgeExpired then deletes expired attributes without first putting their expire events in the
// feed, and without waiting for them. The default, true, purges an attribute only once its
// expiry is in the feed.
func WithChangeFeed(on bool) Option {
	return func(o *options) { o.noFeed = !on }
}

// GroupCommit configures the group commit of SetAttrs calls that write one attribute: instead
// of a transaction each, Workers goroutines each take the calls waiting in a queue, up to
// MaxRows at a time, and write them with one statement in one transaction. A batch closes when
// it holds MaxRows calls, or MaxWait after its first call arrived, whichever comes first; with
// MaxWait 0 it closes as soon as the queue is empty, so that batches form only from the calls
// that arrive while the workers are busy. The zero GroupCommit (Workers 0) turns it off.
type GroupCommit struct {
	// MaxRows is the most calls one transaction commits: 1 to attrcache.MaxAttrItems.
	MaxRows int
	// MaxWait is the longest a batch waits, from its first call, for more; not negative.
	MaxWait time.Duration
	// Workers is the number of transactions that may run at once; 0 turns group commit off.
	Workers int
}

// on reports whether gc turns group commit on.
func (gc GroupCommit) on() bool { return gc.Workers > 0 }

// check returns an error naming the first setting of gc that is out of range.
func (gc GroupCommit) check() error {
	switch {
	case gc.Workers < 0:
		return fmt.Errorf("%d workers, want 0 (off) or more", gc.Workers)
	case !gc.on():
		return nil
	case gc.MaxRows < 1 || gc.MaxRows > attrcache.MaxAttrItems:
		return fmt.Errorf("at most %d rows per batch, want 1 to %d", gc.MaxRows, attrcache.MaxAttrItems)
	case gc.MaxWait < 0:
		return errors.New("a negative wait")
	}
	return nil
}
