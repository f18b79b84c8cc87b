package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeScript is the only way anything is stored in Redis. Each of KEYS (of one hash slot) has
// three of ARGV: the value, its version and when the key expires (Unix ms; 0: never); or KEYS[1]
// is an absent marker's key and KEYS[2] its budget, with ARGV[4] the budget's most. It answers,
// for each key in order, 1 when it stored the value, 0 when it refused. It stores:
//   - a value or a versioned tombstone only over an absent key, one holding no version (the
//     absent marker, or something malformed) or an older or equal version;
//   - a floor ("f<version>") unless the key holds the final tombstone or anything of that
//     version or higher;
//   - the final tombstone ("x") over anything, and nothing replaces it; it expires at its expiry
//     or when the value it replaced would have, whichever is sooner;
//   - the absent marker only where the key does not exist and within its budget ("<count>:<expiry
//     ms>", kept until the latest expiry of the markers it counted), which storing one counts.
var writeScript = redis.NewScript(writeScriptSource)

// writeScriptSource is writeScript's Lua source, which EVAL sends when Redis lacks the digest.
const writeScriptSource = `
local function write(key, value, version, expireAt, budgetKey, budgetMax)
	local current = redis.call('GET', key)
	if value == '` + absentMarker + `' then
		if current then
			return 0
		end
		if budgetKey then
			local count, budgetEnds = 0, expireAt
			local budget = redis.call('GET', budgetKey)
			if budget then
				local c, e = string.match(budget, '^(%d+):(%d+)$')
				if c then
					count = tonumber(c)
					if tonumber(e) > budgetEnds then
						budgetEnds = tonumber(e)
					end
				end
			end
			if count >= tonumber(budgetMax) then
				return 0
			end
			redis.call('SET', budgetKey, string.format('%d:%d', count + 1, budgetEnds), 'PXAT', string.format('%d', budgetEnds))
		end
	elseif value == '` + tombstone + `' then
		if current and current ~= '` + tombstone + `' then
			local ttl = redis.call('PTTL', key)
			if ttl > 0 then
				local now = redis.call('TIME')
				local endsAt = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
				if endsAt < expireAt then
					expireAt = endsAt
				end
			end
		end
	elseif string.sub(value, 1, 1) == '` + floorMark + `' then
		if current then
			if current == '` + tombstone + `' then
				return 0
			end
			local stored = tonumber(string.match(current, '^[` + versionMark + tombstone + floorMark + `](%-?%d+)'))
			if stored and stored >= tonumber(version) then
				return 0
			end
		end
	elseif current then
		if current == '` + tombstone + `' then
			return 0
		end
		local stored = tonumber(string.match(current, '^[` + versionMark + tombstone + floorMark + `](%-?%d+)'))
		if stored and stored > tonumber(version) then
			return 0
		end
	end
	if expireAt > 0 then
		redis.call('SET', key, value, 'PXAT', string.format('%d', expireAt))
	else
		redis.call('SET', key, value)
	end
	return 1
end
if #KEYS == 2 and #ARGV == 4 then
	return {write(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), KEYS[2], ARGV[4])}
end
local stored = {}
for i = 1, #KEYS do
	local a = 3 * (i - 1)
	stored[i] = write(KEYS[i], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]))
end
return stored
`

// write is one key to store through writeScript.
type write struct {
	key      string
	value    string // encoded by encodeValue, a tombstone or absentMarker
	version  int64
	expireAt time.Time // zero: never (for a value)
	// budgetKey, for an absent marker, is the key of its user's absent budget ("": none), which
	// lets budgetMax markers be stored at once.
	budgetKey string
	budgetMax int
}

// tombstoneWrite returns the write that marks key deleted for good until expireAt at the latest.
func tombstoneWrite(key string, expireAt time.Time) write {
	return write{key: key, value: tombstone, expireAt: expireAt}
}

// versionedTombstoneWrite returns the write that marks key deleted until expireAt, or until a
// write of a version above version.
func versionedTombstoneWrite(key string, version int64, expireAt time.Time) write {
	return write{key: key, value: tombstone + strconv.FormatInt(version, 10), version: version, expireAt: expireAt}
}

// floorWrite returns the write that makes any copy at key older than version unservable until
// expireAt, or until a write of version or a higher one.
func floorWrite(key string, version int64, expireAt time.Time) write {
	return write{key: key, value: floorMark + strconv.FormatInt(version, 10), version: version, expireAt: expireAt}
}

// absentWrite returns the write that records, until expireAt, that the inner store has nothing
// at key, unless Redis already holds something there.
func absentWrite(key string, expireAt time.Time) write {
	return write{key: key, value: absentMarker, expireAt: expireAt}
}

// withBudget returns the absent marker w that is stored only within the budget at budgetKey,
// which allows max markers at once.
func (w write) withBudget(budgetKey string, max int) write {
	w.budgetKey, w.budgetMax = budgetKey, max
	return w
}

// expireAtArg returns w's expiry as writeScript takes it.
func (w write) expireAtArg() int64 {
	if w.expireAt.IsZero() {
		return 0
	}
	return w.expireAt.UnixMilli()
}

// apply runs writeScript for every write in one pipeline (coalesced with other callers'), by
// digest first and by source when Redis does not know the script (after a restart or SCRIPT
// FLUSH). stored[i] reports whether writes[i] was stored or refused.
func (s *Store) apply(ctx context.Context, writes ...write) (stored []bool, err error) {
	return s.applyVia(ctx, s.co.do, writes)
}

// applyAlone is apply in a pipeline of its own, which holds up no other caller's commands.
func (s *Store) applyAlone(ctx context.Context, writes ...write) (stored []bool, err error) {
	return s.applyVia(ctx, func(ctx context.Context, cmds ...redis.Cmder) error {
		pipe := s.rdb.Pipeline()
		for _, cmd := range cmds {
			_ = pipe.Process(ctx, cmd)
		}
		_, err := pipe.Exec(ctx)
		return err
	}, writes)
}

// applyVia is apply, sending each pipeline through send.
func (s *Store) applyVia(ctx context.Context, send func(context.Context, ...redis.Cmder) error, writes []write) (stored []bool, err error) {
	stored, err = s.applyWith(ctx, send, "evalsha", writeScript.Hash(), writes)
	if errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		stored, err = s.applyWith(ctx, send, "eval", writeScriptSource, writes)
	}
	return stored, err
}

// applyWith runs writeScript for every write with the command eval or evalsha, given the source
// or the digest, in one pipeline sent through send: one call for each run of consecutive writes
// of one hash slot (at most maxScriptKeys), one for each absent marker with a budget. Every key
// expires by the max TTL at the latest, also what never expires in the inner store.
func (s *Store) applyWith(ctx context.Context, send func(context.Context, ...redis.Cmder) error, eval, script string, writes []write) ([]bool, error) {
	latest := time.Now().Add(s.maxTTL).UnixMilli()
	expireArg := func(w write) int64 {
		if at := w.expireAtArg(); at != 0 && at < latest {
			return at
		}
		return latest
	}
	var cmds []redis.Cmder
	var runs [][]write // the writes of each call
	for rest := writes; len(rest) > 0; rest = rest[len(runs[len(runs)-1]):] {
		if w := rest[0]; w.budgetKey != "" {
			cmds = append(cmds, redis.NewCmd(ctx, eval, script, 2, w.key, w.budgetKey, w.value, w.version, expireArg(w), w.budgetMax))
			runs = append(runs, rest[:1])
			continue
		}
		run := sameSlotRun(rest)
		args := make([]any, 0, 3+4*len(run))
		args = append(args, eval, script, len(run))
		for _, w := range run {
			args = append(args, w.key)
		}
		for _, w := range run {
			args = append(args, w.value, w.version, expireArg(w))
		}
		cmds = append(cmds, redis.NewCmd(ctx, args...))
		runs = append(runs, run)
	}
	if err := send(ctx, cmds...); err != nil {
		return nil, err
	}
	stored := make([]bool, 0, len(writes))
	for c, cmd := range cmds {
		replies, err := cmd.(*redis.Cmd).Int64Slice()
		if err == nil && len(replies) != len(runs[c]) {
			err = fmt.Errorf("%d replies for %d keys", len(replies), len(runs[c]))
		}
		if err != nil {
			return nil, fmt.Errorf("write script on %s: %w", s.keys.redact(runs[c][0].key), err)
		}
		for _, n := range replies {
			stored = append(stored, n == 1)
		}
	}
	return stored, nil
}

// maxScriptKeys bounds the keys of one writeScript call, so that one call holds Redis for a
// bounded time.
const maxScriptKeys = 128

// sameSlotRun returns the longest prefix of writes, at most maxScriptKeys long, that has no
// absent marker with a budget and whose keys share the first's hash slot.
func sameSlotRun(writes []write) []write {
	slot := slotOf(writes[0].key)
	n := 1
	for n < len(writes) && n < maxScriptKeys && writes[n].budgetKey == "" && slotOf(writes[n].key) == slot {
		n++
	}
	return writes[:n]
}
