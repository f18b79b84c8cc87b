package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeScript is the only way anything is stored in Redis. KEYS[1] is the key, ARGV[1] the value
// (an encoded value or the tombstone), ARGV[2] the value's version, ARGV[3] when the key expires
// (Unix milliseconds).
//
// A value is stored only if the key is absent or holds an older or equal version: a fill that
// read the inner store before a write committed can never replace what that write stored. It is
// never stored over a tombstone, so a fill racing a deletion cannot bring the entry back.
//
// A tombstone replaces anything. It expires at ARGV[3], or sooner when the value it replaces would
// have expired sooner (a session's natural end): past that point no fill would store it anyway.
//
// It returns 1 when it stored the value, 0 when it refused.
var writeScript = redis.NewScript(`
local current = redis.call('GET', KEYS[1])
local expireAt = tonumber(ARGV[3])
if ARGV[1] == '` + tombstone + `' then
	if current and current ~= '` + tombstone + `' then
		local ttl = redis.call('PTTL', KEYS[1])
		if ttl > 0 then
			local now = redis.call('TIME')
			local endsAt = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
			if endsAt < expireAt then
				expireAt = endsAt
			end
		end
	end
	redis.call('SET', KEYS[1], ARGV[1], 'PXAT', string.format('%d', expireAt))
	return 1
end
if current then
	if current == '` + tombstone + `' then
		return 0
	end
	local stored = tonumber(string.match(current, '^` + versionMark + `(%-?%d+)` + versionEnd + `'))
	if stored and stored > tonumber(ARGV[2]) then
		return 0
	end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', string.format('%d', expireAt))
return 1
`)

// write is one key to store through writeScript.
type write struct {
	key      string
	value    string // encoded by encodeValue, or tombstone
	version  int64
	expireAt time.Time
}

// tombstoneWrite returns the write that marks key deleted until expireAt at the latest.
func tombstoneWrite(key string, expireAt time.Time) write {
	return write{key: key, value: tombstone, expireAt: expireAt}
}

// scriptRunner is writeScript.EvalSha or writeScript.Eval.
type scriptRunner func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd

// apply runs writeScript for every write in one pipeline, by digest first and by source when
// Redis does not know the script (after a restart or SCRIPT FLUSH). stored[i] reports whether
// writes[i] was stored or refused.
func (s *Store) apply(ctx context.Context, writes ...write) (stored []bool, err error) {
	stored, err = s.applyWith(ctx, writeScript.EvalSha, writes)
	if errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		stored, err = s.applyWith(ctx, writeScript.Eval, writes)
	}
	return stored, err
}

func (s *Store) applyWith(ctx context.Context, run scriptRunner, writes []write) ([]bool, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(writes))
	for i, w := range writes {
		cmds[i] = run(ctx, pipe, []string{w.key}, w.value, w.version, w.expireAt.UnixMilli())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	stored := make([]bool, len(writes))
	for i, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil {
			return nil, fmt.Errorf("write script on %s: %w", redactKey(writes[i].key), err)
		}
		stored[i] = n == 1
	}
	return stored, nil
}
