package cache

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

// newTestFailureCounter returns a counter in the test Redis under a prefix of the test's own.
func newTestFailureCounter(t *testing.T, rdb redis.UniversalClient) *FailureCounter {
	t.Helper()
	return NewFailureCounter(rdb, testPrefix+strings.ReplaceAll(t.Name(), "/", ".")+":", nil)
}

func TestFailureCounterCountsAndExpires(t *testing.T) {
	ctx := t.Context()
	rdb := newRedis(t)
	c := newTestFailureCounter(t, rdb)
	user := attrcache.FailureLimit{Scope: "login-user", Name: "alice", Limit: 3, Window: time.Minute}
	addr := attrcache.FailureLimit{Scope: "login-addr", Name: "192.0.2.1", Limit: 5, Window: time.Minute}
	both := []attrcache.FailureLimit{user, addr}

	for i := range 3 {
		if wait, err := c.RetryAfter(ctx, both); err != nil || wait != 0 {
			t.Fatalf("after %d failures: RetryAfter = %v, %v; want 0, nil", i, wait, err)
		}
		if err := c.AddFailure(ctx, both); err != nil {
			t.Fatalf("AddFailure: %v", err)
		}
	}
	wait, err := c.RetryAfter(ctx, both)
	if err != nil || wait <= 0 || wait > time.Minute {
		t.Fatalf("after 3 failures: RetryAfter = %v, %v; want in (0, 1m]", wait, err)
	}
	if wait, err := c.RetryAfter(ctx, []attrcache.FailureLimit{addr}); err != nil || wait != 0 {
		t.Errorf("the address alone, 3 of 5 failures: RetryAfter = %v, %v; want 0", wait, err)
	}
	other := attrcache.FailureLimit{Scope: "login-user", Name: "alice ", Limit: 3, Window: time.Minute}
	if wait, err := c.RetryAfter(ctx, []attrcache.FailureLimit{other}); err != nil || wait != 0 {
		t.Errorf(`"alice ", counted apart from "alice": RetryAfter = %v, %v; want 0`, wait, err)
	}

	for _, key := range []string{c.keys.failures(user.Scope, user.Name), c.keys.failures(addr.Scope, addr.Name)} {
		if strings.Contains(key, "alice") || strings.Contains(key, "192.0.2.1") {
			t.Errorf("key %q holds the name it counts", key)
		}
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("key %q has TTL %v, want in (0, 1m]", key, ttl)
		}
	}

	if err := c.ResetFailures(ctx, user.Scope, user.Name); err != nil {
		t.Fatal(err)
	}
	if wait, err := c.RetryAfter(ctx, []attrcache.FailureLimit{user}); err != nil || wait != 0 {
		t.Errorf("after ResetFailures: RetryAfter = %v, %v; want 0", wait, err)
	}
}

// TestFailureCounterConcurrent checks that concurrent failures, as two instances make them, all
// count and leave a counter that expires.
func TestFailureCounterConcurrent(t *testing.T) {
	ctx := t.Context()
	rdb := newRedis(t)
	c := newTestFailureCounter(t, rdb)
	limit := attrcache.FailureLimit{Scope: "login-user", Name: "bob", Limit: 100, Window: time.Minute}
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := c.AddFailure(ctx, []attrcache.FailureLimit{limit}); err != nil {
					t.Errorf("AddFailure: %v", err)
				}
			}
		})
	}
	wg.Wait()
	key := c.keys.failures(limit.Scope, limit.Name)
	if got, err := rdb.Get(ctx, key).Int(); err != nil || got != workers*each {
		t.Errorf("count = %d, %v; want %d", got, err, workers*each)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
		t.Errorf("TTL = %v, want positive", ttl)
	}
}

// TestFailureCounterScriptFlushed checks that a failure counts once when some nodes lack the
// script (a restart, SCRIPT FLUSH): on a cluster, the counters of one call live on several nodes,
// and only those refused are counted again by source.
func TestFailureCounterScriptFlushed(t *testing.T) {
	ctx := t.Context()
	rdb := newRedis(t)
	c := newTestFailureCounter(t, rdb)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	first := attrcache.FailureLimit{Scope: "signup-addr", Name: "198.51.100.1", Limit: 1, Window: time.Minute}
	if err := c.AddFailure(ctx, []attrcache.FailureLimit{first}); err != nil { // loads the script on first's node
		t.Fatalf("AddFailure after SCRIPT FLUSH: %v", err)
	}
	limits := []attrcache.FailureLimit{first}
	for i := range 12 { // on a cluster, some surely on the other nodes
		limits = append(limits, attrcache.FailureLimit{Scope: "signup-addr", Name: fmt.Sprint("198.51.100.", 10+i), Limit: 1, Window: time.Minute})
	}
	if err := c.AddFailure(ctx, limits); err != nil {
		t.Fatalf("AddFailure: %v", err)
	}
	for i, l := range limits {
		want := 1
		if i == 0 {
			want = 2
		}
		if got, err := rdb.Get(ctx, c.keys.failures(l.Scope, l.Name)).Int(); err != nil || got != want {
			t.Errorf("count of %s = %d, %v; want %d", l.Name, got, err, want)
		}
	}
}

func TestFailureCounterRedisDown(t *testing.T) {
	c := NewFailureCounter(unreachableRedis(t), "down:", nil)
	limit := []attrcache.FailureLimit{{Scope: "login-user", Name: "carol", Limit: 1, Window: time.Minute}}
	if _, err := c.RetryAfter(t.Context(), limit); err == nil {
		t.Error("RetryAfter with Redis down: nil error, want one")
	}
	if err := c.AddFailure(t.Context(), limit); err == nil {
		t.Error("AddFailure with Redis down: nil error, want one")
	}
}

// TestFailureCounterLeavesFailingRedisAlone checks that after a Redis failure the counter fails
// at once, without a command, until RedisRetryInterval has passed, and then tries Redis again.
func TestFailureCounterLeavesFailingRedisAlone(t *testing.T) {
	ctx := t.Context()
	hook := newFaultHook()
	c := newTestFailureCounter(t, newRedis(t, hook))
	now := time.Now()
	c.now = func() time.Time { return now }
	limits := []attrcache.FailureLimit{{Scope: "login-user", Name: "heidi", Limit: 1, Window: time.Minute}}

	hook.setFailing(true)
	if err := c.AddFailure(ctx, limits); !errors.Is(err, errInjected) {
		t.Fatalf("AddFailure with Redis failing: %v, want the injected error", err)
	}
	hook.setFailing(false)
	hook.reset()
	if _, err := c.RetryAfter(ctx, limits); !errors.Is(err, ErrRedisSkipped) {
		t.Errorf("RetryAfter just after a failure: %v, want ErrRedisSkipped", err)
	}
	if err := c.ResetFailures(ctx, "login-user", "heidi"); !errors.Is(err, ErrRedisSkipped) {
		t.Errorf("ResetFailures just after a failure: %v, want ErrRedisSkipped", err)
	}
	if sent := hook.sentAll(); len(sent) != 0 {
		t.Errorf("commands sent within the retry interval: %v, want none", sent)
	}

	now = now.Add(RedisRetryInterval)
	if err := c.AddFailure(ctx, limits); err != nil {
		t.Fatalf("AddFailure once the interval has passed: %v", err)
	}
	if wait, err := c.RetryAfter(ctx, limits); err != nil || wait <= 0 {
		t.Errorf("RetryAfter after Redis came back: %v, %v; want a wait and no error", wait, err)
	}
}
