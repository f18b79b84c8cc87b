package sso

import (
	"container/list"
	"sync"
	"time"
)

// defaultMaxTracked is how many usernames (and as many addresses) the throttle remembers when
// ThrottleConfig.MaxTracked is 0.
const defaultMaxTracked = 100_000

// loginThrottle counts failed logins per username and per client address.
type loginThrottle struct {
	byUsername *failureWindow
	byAddress  *failureWindow
}

func newLoginThrottle(cfg ThrottleConfig) *loginThrottle {
	maxTracked := cfg.MaxTracked
	if maxTracked <= 0 {
		maxTracked = defaultMaxTracked
	}
	return &loginThrottle{
		byUsername: newFailureWindow(cfg.PerUsername, cfg.Window, maxTracked),
		byAddress:  newFailureWindow(cfg.PerAddress, cfg.Window, maxTracked),
	}
}

// retryAfter returns how long a login for username from remoteAddr must wait, 0 if it may go on.
// An empty remoteAddr (a Go caller that does not know it) is not limited by address.
func (t *loginThrottle) retryAfter(username, remoteAddr string, now time.Time) time.Duration {
	wait := t.byUsername.retryAfter(username, now)
	if remoteAddr != "" {
		wait = max(wait, t.byAddress.retryAfter(remoteAddr, now))
	}
	return wait
}

// failed records a failed login.
func (t *loginThrottle) failed(username, remoteAddr string, now time.Time) {
	t.byUsername.add(username, now)
	if remoteAddr != "" {
		t.byAddress.add(remoteAddr, now)
	}
}

// succeeded forgets the username's failures; the address keeps its own, so that one good
// account does not let an address go on guessing others.
func (t *loginThrottle) succeeded(username string) { t.byUsername.forget(username) }

// failureWindow is a sliding-window counter of failures per key, safe for concurrent use. A nil
// *failureWindow (a disabled limit) never refuses anything.
type failureWindow struct {
	limit      int
	window     time.Duration
	maxTracked int

	mu    sync.Mutex
	byKey map[string]*list.Element // of *failures
	// recent orders the keys by their last failure, the most recent first, so that the keys
	// whose failures have all left the window are found at the back.
	recent list.List
}

type failures struct {
	key string
	// times are the newest failures, at most limit of them, oldest first: enough to know when
	// the count drops below the limit.
	times []time.Time
}

// newFailureWindow returns a counter of at most limit failures per window, or nil when limit or
// window is not positive.
func newFailureWindow(limit int, window time.Duration, maxTracked int) *failureWindow {
	if limit <= 0 || window <= 0 {
		return nil
	}
	return &failureWindow{limit: limit, window: window, maxTracked: maxTracked, byKey: make(map[string]*list.Element)}
}

// retryAfter returns how long key must wait until it has fewer than limit failures in the
// window, 0 if it has fewer already.
func (w *failureWindow) retryAfter(key string, now time.Time) time.Duration {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	el, ok := w.byKey[key]
	if !ok {
		return 0
	}
	live := w.inWindow(el.Value.(*failures).times, now)
	if len(live) < w.limit {
		return 0
	}
	return live[len(live)-w.limit].Add(w.window).Sub(now)
}

// add records a failure of key at now and forgets the keys that have no failure in the window
// or that exceed maxTracked.
func (w *failureWindow) add(key string, now time.Time) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	el, ok := w.byKey[key]
	if ok {
		w.recent.MoveToFront(el)
	} else {
		el = w.recent.PushFront(&failures{key: key})
		w.byKey[key] = el
	}
	f := el.Value.(*failures)
	f.times = append(w.inWindow(f.times, now), now)
	if len(f.times) > w.limit {
		f.times = f.times[len(f.times)-w.limit:]
	}
	w.evict(now)
}

// forget drops every failure of key.
func (w *failureWindow) forget(key string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if el, ok := w.byKey[key]; ok {
		w.remove(el)
	}
}

// inWindow returns the failures in times that are still inside the window at now.
func (w *failureWindow) inWindow(times []time.Time, now time.Time) []time.Time {
	start := now.Add(-w.window)
	i := 0
	for i < len(times) && !times[i].After(start) {
		i++
	}
	return times[i:]
}

// evict removes keys from the back of recent while there are too many or their newest failure
// has left the window.
func (w *failureWindow) evict(now time.Time) {
	start := now.Add(-w.window)
	for back := w.recent.Back(); back != nil; back = w.recent.Back() {
		f := back.Value.(*failures)
		if len(w.byKey) <= w.maxTracked && f.times[len(f.times)-1].After(start) {
			return
		}
		w.remove(back)
	}
}

func (w *failureWindow) remove(el *list.Element) {
	delete(w.byKey, el.Value.(*failures).key)
	w.recent.Remove(el)
}
