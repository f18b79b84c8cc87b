package sso

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/attrcache/attrcache"
)

// Limits of a change feed read (CONTRACT.md §10 "Change feed").
const (
	FeedDefaultLimit = 100
	FeedMaxLimit     = 1000
	FeedMaxWait      = 30 * time.Second
)

// feedDefaultPollInterval is how often an instance with waiting readers asks the feed whether
// it has grown, when Config.FeedPollInterval is 0.
const feedDefaultPollInterval = 20 * time.Millisecond

// feedRecheck is how long a change stream trusts its caller's session before checking it again.
const feedRecheck = 10 * time.Second

// Changes is one answer of the change feed: its events, oldest first, and the cursor to read on
// from (the after of the next read).
type Changes struct {
	Events []attrcache.FeedEvent
	Next   string
	// Waited says that the read found no event at first and waited for these.
	Waited bool
}

// ChangeStream reads the change feed for one caller: their own events, one user's or everyone's
// (a super-user's). It checks the caller's session again now and then, so that a stream ends
// once its session does. A stream is used by one goroutine at a time.
type ChangeStream struct {
	api       *API
	ust, app  string
	userID    string // whose events; "": everyone's
	checkedAt time.Time
}

// OpenChanges opens the change feed for the caller: with userID "" a regular user's own events
// and a super-user's everyone's; with userID that user's, which a regular user may name only
// when it is their own (E005001 otherwise, as for a malformed user_id).
func (a *API) OpenChanges(ctx context.Context, cid, userID, ust, app, remoteAddr string) (*ChangeStream, error) {
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return nil, err
	}
	switch {
	case userID == "" && !c.principal.IsSuperUser:
		userID = c.userID()
	case userID != "" && userID != c.userID():
		if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
			return nil, err
		}
		if err := checkUserID(userID); err != nil {
			return nil, err
		}
	}
	if a.cfg.Feed == nil {
		return nil, attrcache.Unavailable(errors.New("sso: no change feed is configured"))
	}
	return &ChangeStream{api: a, ust: ust, app: app, userID: userID, checkedAt: now}, nil
}

// ParseFeedLimit returns the limit a client sent ("" the default), refusing what is not an
// integer from 1 to FeedMaxLimit (E008002).
func ParseFeedLimit(s string) (int, error) {
	if s == "" {
		return FeedDefaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > FeedMaxLimit {
		return 0, attrcache.InvalidInput("limit must be an integer from 1 to %d", FeedMaxLimit)
	}
	return n, nil
}

// ParseFeedWait returns the wait a client sent in seconds ("" none), refusing what is not a
// number from 0 to FeedMaxWait's (E008002).
func ParseFeedWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= FeedMaxWait.Seconds()) {
		return 0, attrcache.InvalidInput("wait must be a number of seconds from 0 to %d", int(FeedMaxWait.Seconds()))
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseCursor returns the seq a cursor names; "" is -1, the start of what the feed keeps.
func parseCursor(cursor string) (int64, error) {
	if cursor == "" {
		return -1, nil
	}
	seq, err := strconv.ParseInt(cursor, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != cursor {
		return 0, attrcache.InvalidInput("after is not a cursor of the change feed")
	}
	return seq, nil
}

// FormatCursor returns the cursor of an event, the after that reads on from it.
func FormatCursor(e attrcache.FeedEvent) string { return strconv.FormatInt(e.Seq, 10) }

// Read returns at most limit events after the cursor after ("": from the oldest event kept),
// oldest first: fewer only when it has read to the feed's end, which Next then names. When there are none it waits up to wait for one. A cursor older than the oldest
// event kept fails with E009102 (HTTP 410), one that names no event yet handed out with E008002.
func (s *ChangeStream) Read(ctx context.Context, after string, limit int, wait time.Duration) (*Changes, error) {
	seq, err := parseCursor(after)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > FeedMaxLimit {
		return nil, attrcache.InvalidInput("limit must be an integer from 1 to %d", FeedMaxLimit)
	}
	if err := s.recheck(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(min(wait, FeedMaxWait))
	feed := s.api.cfg.Feed
	waited := false
	var events []attrcache.FeedEvent
	for {
		oldest, last, err := feed.FeedBounds(ctx)
		if err != nil {
			return nil, storeError(err, "change feed", nil)
		}
		if seq < 0 {
			seq = last
			if oldest > 0 {
				seq = oldest - 1
			}
		}
		switch {
		case seq > last:
			return nil, attrcache.InvalidInput("after names no event of the change feed")
		case oldest > 0 && seq < oldest-1, oldest == 0 && seq < last:
			return nil, attrcache.CursorTooOld()
		}
		got, readTo, err := feed.FeedEvents(ctx, s.userID, seq, last, limit-len(events))
		if err != nil {
			return nil, storeError(err, "change feed", nil)
		}
		// The retention may have purged events after the cursor while they were read.
		if oldest, _, err = feed.FeedBounds(ctx); err != nil {
			return nil, storeError(err, "change feed", nil)
		} else if oldest > seq+1 || oldest == 0 && seq < last {
			return nil, attrcache.CursorTooOld()
		}
		events, seq = append(events, got...), readTo
		if len(events) < limit && seq < last {
			continue // a bound of the feed's stopped the read short of last: read on
		}
		if len(events) > 0 || !time.Now().Before(deadline) {
			return &Changes{Events: events, Next: strconv.FormatInt(seq, 10), Waited: waited}, nil
		}
		waited = true
		if err := s.api.feedWatcher().wait(ctx, seq, deadline); err != nil {
			return nil, err
		}
	}
}

// recheck checks the caller's session again once feedRecheck has passed since the last check.
func (s *ChangeStream) recheck(ctx context.Context) error {
	now := s.api.now()
	if now.Sub(s.checkedAt) < feedRecheck {
		return nil
	}
	if _, err := s.api.authenticate(ctx, s.ust, s.app, now); err != nil {
		return err
	}
	s.checkedAt = now
	return nil
}

// feedWatcher returns the API's watcher of the feed's last seq, starting it on first use.
func (a *API) feedWatcher() *feedWatcher {
	a.feedOnce.Do(func() {
		interval := a.cfg.FeedPollInterval
		if interval <= 0 {
			interval = feedDefaultPollInterval
		}
		a.watcher = &feedWatcher{feed: a.cfg.Feed, interval: interval, grown: make(chan struct{})}
	})
	return a.watcher
}

// feedWatcher asks the feed for its last seq every interval while some reader waits, and wakes
// the readers when it grows: one query an interval for the instance, however many wait.
type feedWatcher struct {
	feed     attrcache.ChangeFeed
	interval time.Duration

	mu      sync.Mutex
	waiters int
	polling bool
	last    int64
	grown   chan struct{} // closed when last grows, then replaced
}

// wait returns once the feed's last seq is above seq (nil), or at deadline (nil), or when ctx
// ends (its error).
func (w *feedWatcher) wait(ctx context.Context, seq int64, deadline time.Time) error {
	w.mu.Lock()
	w.waiters++
	if !w.polling {
		w.polling = true
		go w.poll()
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiters--
		w.mu.Unlock()
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		last, grown := w.last, w.grown
		w.mu.Unlock()
		if last > seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-grown:
		}
	}
}

// feedGrowth is a feed that also says when this instance added events to it.
type feedGrowth interface {
	// FeedGrown returns a channel closed once this instance has added events after the call.
	FeedGrown() <-chan struct{}
}

// poll runs while some reader waits: every interval, and at once when the feed says that this
// instance added events (events added by other instances wait for the interval).
func (w *feedWatcher) poll() {
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	growth, _ := w.feed.(feedGrowth)
	for {
		var added <-chan struct{} // nil, never ready, without growth
		if growth != nil {
			added = growth.FeedGrown()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, last, err := w.feed.FeedBounds(ctx)
		cancel()
		w.mu.Lock()
		if err == nil && last > w.last {
			w.last = last
			close(w.grown)
			w.grown = make(chan struct{})
		}
		if w.waiters == 0 {
			w.polling = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		select {
		case <-ticker.C:
		case <-added:
			ticker.Reset(w.interval)
		}
	}
}
