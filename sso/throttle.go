package sso

import (
	"container/list"
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/attrcache/attrcache"
)

// defaultMaxTracked is how many usernames (and as many addresses) the throttle remembers when
// ThrottleConfig.MaxTracked is 0.
const defaultMaxTracked = 100_000

// Throttle scopes: what each counter of failures counts.
const (
	scopeLoginUsername = "login-user"  // wrong passwords (at login or password change) per username
	scopeLoginAddress  = "login-addr"  // wrong passwords per client address
	scopeSignupAddress = "signup-addr" // sign-up attempts per client address
)

// throttle decides when guessing must stop. It counts in the shared counter (Redis, seen by every
// instance) when there is one, and always in process as well, and it asks the shared counter.
// While that cannot answer it asks the in-process counter instead, which holds this instance's
// failures of the window, those made before Redis failed included: guessing stays bounded, and
// no request fails because the shared counter is down.
type throttle struct {
	login  ThrottleConfig
	signup SignupThrottleConfig
	shared attrcache.FailureCounter // nil: in process only
	local  *localCounter
}

func newThrottle(login ThrottleConfig, signup SignupThrottleConfig, now func() time.Time) *throttle {
	maxTracked := login.MaxTracked
	if maxTracked <= 0 {
		maxTracked = defaultMaxTracked
	}
	return &throttle{login: login, signup: signup, shared: login.Counter, local: newLocalCounter(maxTracked, now)}
}

// loginLimits returns the limits a password guess for username from clientAddr counts against.
// An empty clientAddr (a Go caller that does not know it) is not limited by address.
func (t *throttle) loginLimits(username, clientAddr string) []attrcache.FailureLimit {
	limits := make([]attrcache.FailureLimit, 0, 2)
	if t.login.PerUsername > 0 && t.login.Window > 0 {
		limits = append(limits, attrcache.FailureLimit{Scope: scopeLoginUsername, Name: username, Limit: t.login.PerUsername, Window: t.login.Window})
	}
	if clientAddr != "" && t.login.PerAddress > 0 && t.login.Window > 0 {
		limits = append(limits, attrcache.FailureLimit{Scope: scopeLoginAddress, Name: addressKey(clientAddr), Limit: t.login.PerAddress, Window: t.login.Window})
	}
	return limits
}

// signupLimits returns the limits a sign-up from clientAddr counts against.
func (t *throttle) signupLimits(clientAddr string) []attrcache.FailureLimit {
	if clientAddr == "" || t.signup.PerAddress <= 0 || t.signup.Window <= 0 {
		return nil
	}
	return []attrcache.FailureLimit{{Scope: scopeSignupAddress, Name: addressKey(clientAddr), Limit: t.signup.PerAddress, Window: t.signup.Window}}
}

// check returns a KindThrottled error (E005001, RetryAfter set) when one of limits is reached.
func (t *throttle) check(ctx context.Context, limits []attrcache.FailureLimit) error {
	if len(limits) == 0 {
		return nil
	}
	wait := t.retryAfter(ctx, limits)
	if wait <= 0 {
		return nil
	}
	return &attrcache.Error{Kind: attrcache.KindThrottled, Code: attrcache.CodeNotAllowed, RetryAfter: wait}
}

// retryAfter is the shared counter's answer, or the in-process counter's when there is no
// shared counter or it fails.
func (t *throttle) retryAfter(ctx context.Context, limits []attrcache.FailureLimit) time.Duration {
	if t.shared != nil {
		if wait, err := t.shared.RetryAfter(ctx, limits); err == nil {
			return wait
		}
	}
	wait, _ := t.local.RetryAfter(ctx, limits) // never fails
	return wait
}

// failed counts a failure against each of limits.
func (t *throttle) failed(ctx context.Context, limits []attrcache.FailureLimit) {
	if len(limits) == 0 {
		return
	}
	_ = t.local.AddFailure(ctx, limits)
	if t.shared != nil {
		_ = t.shared.AddFailure(ctx, limits) // the in-process count stands in for it
	}
}

// succeeded forgets the username's failures; the address keeps its own, so that one good
// account does not let an address go on guessing others.
func (t *throttle) succeeded(ctx context.Context, username string) {
	_ = t.local.ResetFailures(ctx, scopeLoginUsername, username)
	if t.shared != nil {
		_ = t.shared.ResetFailures(ctx, scopeLoginUsername, username)
	}
}

// addressKey returns what a client address is counted under: an IPv6 address by its /64, the
// block one host or site usually holds whole, so that stepping through it gains nothing; any
// other address as it is.
func addressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return addr
	}
	prefix, _ := ip.Prefix(64) // never fails for an IPv6 address
	return prefix.String()
}

// localCounter is the in-process attrcache.FailureCounter: a sliding window per scope, created
// at its first use with the limit and window of that use. It never fails.
type localCounter struct {
	maxTracked int
	now        func() time.Time

	mu      sync.Mutex
	byScope map[string]*failureWindow
}

var _ attrcache.FailureCounter = (*localCounter)(nil)

func newLocalCounter(maxTracked int, now func() time.Time) *localCounter {
	return &localCounter{maxTracked: maxTracked, now: now, byScope: make(map[string]*failureWindow)}
}

// window returns the window of l's scope.
func (c *localCounter) window(l attrcache.FailureLimit) *failureWindow {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.byScope[l.Scope]
	if !ok {
		w = newFailureWindow(l.Limit, l.Window, c.maxTracked)
		c.byScope[l.Scope] = w
	}
	return w
}

func (c *localCounter) RetryAfter(_ context.Context, limits []attrcache.FailureLimit) (time.Duration, error) {
	now := c.now()
	var wait time.Duration
	for _, l := range limits {
		wait = max(wait, c.window(l).retryAfter(l.Name, now))
	}
	return wait, nil
}

func (c *localCounter) AddFailure(_ context.Context, limits []attrcache.FailureLimit) error {
	now := c.now()
	for _, l := range limits {
		c.window(l).add(l.Name, now)
	}
	return nil
}

func (c *localCounter) ResetFailures(_ context.Context, scope, name string) error {
	c.mu.Lock()
	w := c.byScope[scope]
	c.mu.Unlock()
	w.forget(name)
	return nil
}

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
