package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

var _ attrcache.FailureCounter = (*FailureCounter)(nil)

// FailureCounter keeps failure counters in Redis, where every instance of the service sees the
// same counts. Each counter is a fixed window that starts at its first failure: an integer key
// that expires one window after it was created, which the following failures increment. Redis's
// clock, not the instances', times the windows.
//
// After Redis fails, the counter leaves it alone for RedisRetryInterval, failing at once with
// ErrRedisSkipped, and then lets one call through to find out whether Redis answers again: a
// Redis that hangs costs one call per interval its timeouts, not every login. It is safe for
// concurrent use.
type FailureCounter struct {
	rdb  redis.UniversalClient
	keys keyspace
	log  *slog.Logger
	now  func() time.Time
	// skipUntil is when, in Unix nanoseconds, Redis may be tried again after a failure; 0 while
	// it answers.
	skipUntil atomic.Int64
}

// RedisRetryInterval is how long a FailureCounter leaves Redis alone after it failed.
const RedisRetryInterval = 5 * time.Second

// ErrRedisSkipped is the error of a FailureCounter call made within RedisRetryInterval of a
// Redis failure: Redis was not tried.
var ErrRedisSkipped = attrcache.Unavailable(errors.New("cache: Redis failed moments ago; failure counters not tried"))

// NewFailureCounter returns counters kept in rdb under prefix (single node, Sentinel or
// Cluster). logger (nil: discard) hears when Redis stops answering and when it answers again.
func NewFailureCounter(rdb redis.UniversalClient, prefix string, logger *slog.Logger) *FailureCounter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FailureCounter{rdb: rdb, keys: keyspace{prefix: prefix}, log: logger, now: time.Now}
}

// begin returns nil when a call may go to Redis: always while Redis answers, and after a
// failure to the first caller once RedisRetryInterval has passed; else ErrRedisSkipped.
func (c *FailureCounter) begin() error {
	until := c.skipUntil.Load()
	if until == 0 {
		return nil
	}
	now := c.now().UnixNano()
	if now < until || !c.skipUntil.CompareAndSwap(until, now+int64(RedisRetryInterval)) {
		return ErrRedisSkipped
	}
	return nil
}

// end records whether Redis answered a call, logs when that changes, and returns err. A call
// whose ctx ended says nothing about Redis.
func (c *FailureCounter) end(ctx context.Context, err error) error {
	switch {
	case err != nil && ctx.Err() == nil:
		if c.skipUntil.Swap(c.now().UnixNano()+int64(RedisRetryInterval)) == 0 {
			c.log.Warn("throttle counters in Redis unavailable; counting in process only", "err", err, "retry_in", RedisRetryInterval)
		}
	case err == nil:
		if c.skipUntil.Swap(0) != 0 {
			c.log.Info("throttle counters in Redis available again")
		}
	}
	return err
}

// RetryAfter returns how long until every limit's counter is below its Limit: the remaining TTL
// of each counter that has reached it, 0 when none has. One pipelined round trip.
func (c *FailureCounter) RetryAfter(ctx context.Context, limits []attrcache.FailureLimit) (time.Duration, error) {
	if len(limits) == 0 {
		return 0, nil
	}
	if err := c.begin(); err != nil {
		return 0, err
	}
	type reply struct {
		count *redis.StringCmd
		ttl   *redis.DurationCmd
	}
	replies := make([]reply, len(limits))
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, l := range limits {
			key := c.keys.failures(l.Scope, l.Name)
			replies[i] = reply{count: p.Get(ctx, key), ttl: p.PTTL(ctx, key)}
		}
		return nil
	}) // each command's error is its own (a missing key's redis.Nil, a failed node's)
	var wait time.Duration
	for i, l := range limits {
		count, err := replies[i].count.Int()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return 0, c.end(ctx, fmt.Errorf("cache: reading a failure counter: %w", err))
		}
		ttl, err := replies[i].ttl.Result()
		if err != nil {
			return 0, c.end(ctx, fmt.Errorf("cache: reading a failure counter's TTL: %w", err))
		}
		if count < l.Limit {
			continue
		}
		switch {
		case ttl == -1: // no TTL: cannot happen to a key this type writes; bound it anyway
			ttl = l.Window
		case ttl < 0: // expired between the two commands
			ttl = 0
		}
		wait = max(wait, ttl)
	}
	return wait, c.end(ctx, nil)
}

// countFailureScript counts one failure against the counter at KEYS[1]: it increments it and,
// when that created it (or found it without expiry), sets its TTL to ARGV[1] milliseconds. Being
// one script, it cannot leave a counter that never expires, whatever runs concurrently.
var countFailureScript = redis.NewScript(countFailureSource)

const countFailureSource = `
local count = redis.call('INCR', KEYS[1])
if count == 1 or redis.call('PTTL', KEYS[1]) == -1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return count
`

// AddFailure counts one failure against each limit's counter, through countFailureScript, all in
// one pipeline (on Redis Cluster, one per node, in parallel): by digest, and again by source for
// the counters whose node does not know the script, so that no failure counts twice.
func (c *FailureCounter) AddFailure(ctx context.Context, limits []attrcache.FailureLimit) error {
	if len(limits) == 0 {
		return nil
	}
	if err := c.begin(); err != nil {
		return err
	}
	missing, err := c.countFailure(ctx, "evalsha", countFailureScript.Hash(), limits)
	if len(missing) > 0 {
		_, err = c.countFailure(ctx, "eval", countFailureSource, missing)
	}
	if err != nil {
		return c.end(ctx, fmt.Errorf("cache: counting a failure: %w", err))
	}
	return c.end(ctx, nil)
}

// countFailure runs countFailureScript for each limit with the command eval or evalsha, given the
// source or the digest. It returns the limits refused because Redis lacked the script, and the
// first other error.
func (c *FailureCounter) countFailure(ctx context.Context, eval, script string, limits []attrcache.FailureLimit) (missing []attrcache.FailureLimit, err error) {
	cmds := make([]*redis.Cmd, len(limits))
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, l := range limits {
			cmds[i] = p.Do(ctx, eval, script, 1, c.keys.failures(l.Scope, l.Name), max(l.Window.Milliseconds(), 1))
		}
		return nil
	})
	for i, cmd := range cmds {
		switch cmdErr := cmd.Err(); {
		case cmdErr == nil:
		case errors.Is(cmdErr, redis.ErrNoScript) || redis.HasErrorPrefix(cmdErr, "NOSCRIPT"):
			missing = append(missing, limits[i])
		case err == nil:
			err = cmdErr
		}
	}
	return missing, err
}

// ResetFailures deletes the counter of name in scope.
func (c *FailureCounter) ResetFailures(ctx context.Context, scope, name string) error {
	if err := c.begin(); err != nil {
		return err
	}
	if err := c.rdb.Del(ctx, c.keys.failures(scope, name)).Err(); err != nil {
		return c.end(ctx, fmt.Errorf("cache: resetting a failure counter: %w", err))
	}
	return c.end(ctx, nil)
}
