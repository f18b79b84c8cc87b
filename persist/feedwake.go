package persist

import (
	"context"
	"sync"
	"time"

	"github.com/attrcache/attrcache"
)

// feedWake carries two wake-ups within one instance: a change this DB logged wakes its
// sequencer (RunFeedSequencer), and events its sequencer added wake whoever waits on FeedGrown.
// Changes logged by other instances reach the feed through their own sequencers, or through this
// one's idle poll when theirs did not run (a crash, changes.feed off there).
type feedWake struct {
	logged chan struct{} // holds a token once a change was committed since the sequencer last looked
	mu     sync.Mutex
	grown  chan struct{} // closed once the sequencer added events, then replaced
	// idlePoll is how often the sequencer looks for changes when this DB has logged none: those
	// of instances that did not number theirs, and expiries.
	idlePoll time.Duration
}

func newFeedWake() *feedWake {
	return &feedWake{logged: make(chan struct{}, 1), grown: make(chan struct{}), idlePoll: feedIdlePoll}
}

// changeLogged records that a change was committed to the log: called after the commit.
func (w *feedWake) changeLogged() {
	select {
	case w.logged <- struct{}{}:
	default:
	}
}

// added wakes those waiting on the channel FeedGrown gave them.
func (w *feedWake) added() {
	w.mu.Lock()
	close(w.grown)
	w.grown = make(chan struct{})
	w.mu.Unlock()
}

// FeedGrown returns a channel that is closed once this DB's sequencer has added events to the
// feed after the call: take it before reading the feed's bounds, wait on it after.
func (db *DB) FeedGrown() <-chan struct{} {
	db.feedWake.mu.Lock()
	defer db.feedWake.mu.Unlock()
	return db.feedWake.grown
}

// feedIdlePoll is feedWake.idlePoll but in tests: well within the 5 s an expire event may take.
const feedIdlePoll = 250 * time.Millisecond

// RunFeedSequencer runs SequenceFeed (at attrcache.Now()) once this DB has logged a change, at
// most once per interval, else every feedIdlePoll; expiries are looked for every feedExpiryEvery.
// It purges what is older than retention once a minute, until ctx ends; failures go to onError
// when not nil.
func (db *DB) RunFeedSequencer(ctx context.Context, interval, retention time.Duration, onError func(error)) {
	idleEvery := max(interval, db.feedWake.idlePoll)
	idle := time.NewTimer(idleEvery)
	defer idle.Stop()
	spacing := time.NewTimer(0)
	defer spacing.Stop()
	var lastPurge, lastExpiry time.Time
	for {
		start := time.Now()
		expiries := start.Sub(lastExpiry) >= feedExpiryEvery
		if expiries {
			lastExpiry = start
		}
		_, err := db.SequenceFeed(ctx, attrcache.Now(), expiries)
		if err == nil && time.Since(lastPurge) >= time.Minute {
			lastPurge = time.Now()
			_, err = db.PurgeFeed(ctx, time.Now().Add(-retention))
		}
		if err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		idle.Reset(idleEvery)
		select {
		case <-ctx.Done():
			return
		case <-db.feedWake.logged:
		case <-idle.C:
		}
		spacing.Reset(interval - time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-spacing.C:
		}
	}
}
