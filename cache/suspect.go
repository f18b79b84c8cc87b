package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of the delay between attempts to delete suspect keys while Redis keeps failing.
const (
	retryMinDelay = 50 * time.Millisecond
	retryMaxDelay = 5 * time.Second
)

// suspects is the set of keys that may hold a stale value: updating one after a commit failed
// and so did deleting it. Reads bypass a suspect key until the retry loop has deleted it.
//
// It also counts failed updates (the epoch), so that a fill that read the inner store before such
// a failure is dropped: its value may be the very one the failed update was meant to replace.
type suspects struct {
	size  atomic.Int64 // len(keys), read without the lock on every cache read
	epoch atomic.Uint64
	wake  chan struct{} // holds a token while there is work for the retry loop

	mu    sync.Mutex
	keys  map[string]uint64 // key → number of the mark that last added it
	marks uint64
}

func newSuspects() *suspects {
	return &suspects{wake: make(chan struct{}, 1), keys: make(map[string]uint64)}
}

// updateFailed records that an update of Redis failed: fills begun before now are dropped.
func (ss *suspects) updateFailed() { ss.epoch.Add(1) }

// currentEpoch returns the number of failed updates so far; a fill compares it with the number
// it saw before reading the inner store.
func (ss *suspects) currentEpoch() uint64 { return ss.epoch.Load() }

// add marks key suspect and wakes the retry loop.
func (ss *suspects) add(key string) {
	ss.mu.Lock()
	ss.marks++
	ss.keys[key] = ss.marks
	ss.size.Store(int64(len(ss.keys)))
	ss.mu.Unlock()
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// contains reports whether any of keys is suspect.
func (ss *suspects) contains(keys ...string) bool {
	if ss.size.Load() == 0 {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, k := range keys {
		if _, ok := ss.keys[k]; ok {
			return true
		}
	}
	return false
}

// snapshot returns the suspect keys with their mark numbers.
func (ss *suspects) snapshot() map[string]uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	snap := make(map[string]uint64, len(ss.keys))
	for k, mark := range ss.keys {
		snap[k] = mark
	}
	return snap
}

// deleted clears key, deleted from Redis after it was marked by mark; a key marked again since
// then stays suspect.
func (ss *suspects) deleted(key string, mark uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.keys[key] == mark {
		delete(ss.keys, key)
		ss.size.Store(int64(len(ss.keys)))
	}
}

// retrySuspects deletes suspect keys from Redis whenever there are some, retrying with a growing
// delay while Redis fails, until ctx is done.
func (s *Store) retrySuspects(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.suspects.wake:
		}
		delay := retryMinDelay
		for !s.deleteSuspects(ctx) {
			timer := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			delay = min(2*delay, retryMaxDelay)
		}
	}
}

// deleteSuspects deletes every suspect key from Redis in one pipeline and clears them. It reports
// whether it succeeded; on failure it clears none, since a failed pipeline does not tell reliably
// which of its commands ran.
func (s *Store) deleteSuspects(ctx context.Context) bool {
	snap := s.suspects.snapshot()
	if len(snap) == 0 {
		return true
	}
	pipe := s.rdb.Pipeline()
	for key := range snap {
		pipe.Del(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "cache: deleting suspect keys failed; retrying", "keys", len(snap), "err", err)
		return false
	}
	for key, mark := range snap {
		s.suspects.deleted(key, mark)
	}
	return true
}
