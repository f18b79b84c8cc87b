package cache

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

func TestWriteScript(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	s, _ := newTestStore(t, rdb)
	later := time.Now().Add(time.Hour)

	value := func(version int64) write {
		p := &attrcache.Principal{UserID: "zusr-script", Version: version}
		encoded, err := encodePrincipal(p)
		if err != nil {
			t.Fatalf("encoding: %v", err)
		}
		return write{value: encoded, version: version, expireAt: later}
	}
	tomb := tombstoneWrite("", later)
	floor := func(version int64) write { return floorWrite("", version, later) }

	tests := []struct {
		name       string
		before     []write // stored first, in order
		write      write
		wantStored bool
		wantValue  string
	}{
		{name: "absent key", write: value(5), wantStored: true, wantValue: value(5).value},
		{name: "older version is replaced", before: []write{value(4)}, write: value(5), wantStored: true, wantValue: value(5).value},
		{name: "equal version is rewritten", before: []write{value(5)}, write: value(5), wantStored: true, wantValue: value(5).value},
		{name: "newer version is kept", before: []write{value(6)}, write: value(5), wantStored: false, wantValue: value(6).value},
		{name: "tombstone is kept", before: []write{value(4), tomb}, write: value(5), wantStored: false, wantValue: tombstone},
		{name: "tombstone replaces a newer version", before: []write{value(9)}, write: tomb, wantStored: true, wantValue: tombstone},
		{name: "floor replaces an older version", before: []write{value(4)}, write: floor(5), wantStored: true, wantValue: floor(5).value},
		{name: "floor keeps an equal version", before: []write{value(5)}, write: floor(5), wantStored: false, wantValue: value(5).value},
		{name: "floor keeps a newer version", before: []write{value(6)}, write: floor(5), wantStored: false, wantValue: value(6).value},
		{name: "floor replaces an absent marker", before: []write{absentWrite("", later)}, write: floor(5), wantStored: true, wantValue: floor(5).value},
		{name: "floor over nothing", write: floor(5), wantStored: true, wantValue: floor(5).value},
		{name: "floor keeps the final tombstone", before: []write{tomb}, write: floor(5), wantStored: false, wantValue: tombstone},
		{name: "floor keeps a newer versioned tombstone", before: []write{versionedTombstoneWrite("", 6, later)}, write: floor(5), wantStored: false, wantValue: "x6"},
		{name: "floor replaces an older floor", before: []write{floor(4)}, write: floor(5), wantStored: true, wantValue: floor(5).value},
		{name: "older value is refused by a floor", before: []write{floor(5)}, write: value(4), wantStored: false, wantValue: floor(5).value},
		{name: "value of the floor's version replaces it", before: []write{floor(5)}, write: value(5), wantStored: true, wantValue: value(5).value},
		{name: "newer tombstone replaces a floor", before: []write{floor(5)}, write: versionedTombstoneWrite("", 6, later), wantStored: true, wantValue: "x6"},
		{name: "absent marker is refused by a floor", before: []write{floor(5)}, write: absentWrite("", later), wantStored: false, wantValue: floor(5).value},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := s.keys.principal(attrcache.NewUserID())
			for _, w := range tt.before {
				w.key = key
				if _, err := s.apply(ctx, w); err != nil {
					t.Fatalf("storing %q first: %v", w.value, err)
				}
			}
			w := tt.write
			w.key = key
			stored, err := s.apply(ctx, w)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if stored[0] != tt.wantStored {
				t.Errorf("stored = %v, want %v", stored[0], tt.wantStored)
			}
			if got, _ := rawValue(t, rdb, key); got != tt.wantValue {
				t.Errorf("Redis holds %q, want %q", got, tt.wantValue)
			}
		})
	}
}

// TestWriteScriptRuns checks one apply of writes that take several script calls: runs of keys of
// one hash slot, cut by another user's key and by an absent marker with a budget. Each write gets
// its own outcome, in order, and each key what its write says.
func TestWriteScriptRuns(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	s, _ := newTestStore(t, rdb)
	later := time.Now().Add(time.Hour)
	a, b := attrcache.NewUserID(), attrcache.NewUserID()
	key := func(userID, name string) string {
		return s.keys.attr(attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: userID}, Name: name})
	}
	// Newer floors are there first: the writes of their keys are refused.
	for _, k := range []string{key(a, "2"), key(b, "2")} {
		if _, err := s.apply(ctx, floorWrite(k, 9, later)); err != nil {
			t.Fatal(err)
		}
	}
	writes := []write{
		floorWrite(key(a, "1"), 5, later),
		floorWrite(key(a, "2"), 5, later), // refused: floor 9
		floorWrite(key(a, "3"), 5, later),
		floorWrite(key(b, "1"), 5, later),
		absentWrite(key(b, "absent"), later).withBudget(s.keys.absentBudget(b), 10),
		floorWrite(key(b, "2"), 5, later), // refused: floor 9
		floorWrite(key(a, "4"), 5, later),
	}
	want := []bool{true, false, true, true, true, false, true}
	stored, err := s.apply(ctx, writes...)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !slices.Equal(stored, want) {
		t.Errorf("stored = %v, want %v", stored, want)
	}
	for i, w := range writes {
		wantValue := w.value
		if !want[i] {
			wantValue = floorWrite("", 9, later).value
		}
		if got, _ := rawValue(t, rdb, w.key); got != wantValue {
			t.Errorf("write %d: Redis holds %q, want %q", i, got, wantValue)
		}
	}
}

func TestWriteScriptReplacesMalformedValue(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	s, _ := newTestStore(t, rdb)
	key := s.keys.principal(attrcache.NewUserID())
	if err := rdb.Set(ctx, key, "garbage", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	w := principalWriteForTest(t, s, &attrcache.Principal{UserID: "zusr-x", Version: 1})
	w.key = key
	stored, err := s.apply(ctx, w)
	if err != nil || !stored[0] {
		t.Fatalf("apply over a malformed value = %v, %v; want stored", stored, err)
	}
}

func TestWriteScriptExpiry(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	s, _ := newTestStore(t, rdb)
	// Whole milliseconds, as Redis keeps them.
	soon := time.UnixMilli(time.Now().Add(2 * time.Minute).UnixMilli())
	later := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())

	tests := []struct {
		name       string
		before     *write
		write      write
		wantExpiry time.Time
	}{
		{name: "value expires when told", write: write{value: "v1:{}", version: 1, expireAt: later}, wantExpiry: later},
		{name: "far future is capped by the max TTL", write: write{value: "v1:{}", version: 1, expireAt: attrcache.NeverExpires}, wantExpiry: time.Now().Add(DefaultMaxTTL)},
		{name: "never is capped by the max TTL", write: write{value: "v1:{}", version: 1}, wantExpiry: time.Now().Add(DefaultMaxTTL)},
		{name: "tombstone over nothing lasts its own time", write: tombstoneWrite("", soon), wantExpiry: soon},
		{name: "tombstone never outlives the value it replaces", before: &write{value: "v1:{}", version: 1, expireAt: soon}, write: tombstoneWrite("", later), wantExpiry: soon},
		{name: "tombstone ends first when it is shorter", before: &write{value: "v1:{}", version: 1, expireAt: later}, write: tombstoneWrite("", soon), wantExpiry: soon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := s.keys.session(attrcache.NewUserID(), attrcache.HashSessionID(attrcache.NewSessionID()))
			if tt.before != nil {
				w := *tt.before
				w.key = key
				if _, err := s.apply(ctx, w); err != nil {
					t.Fatalf("storing first: %v", err)
				}
			}
			w := tt.write
			w.key = key
			if _, err := s.apply(ctx, w); err != nil {
				t.Fatalf("apply: %v", err)
			}
			got := expiresAt(t, rdb, key)
			// Capping by the replaced value's PTTL goes through Redis's clock: allow its rounding.
			if diff := got.Sub(tt.wantExpiry).Abs(); diff > time.Second {
				t.Errorf("key expires at %v, want %v", got, tt.wantExpiry)
			}
		})
	}
}

// TestWriteScriptNotLoaded checks the fallback from EVALSHA to EVAL when Redis has forgotten the
// script, as after a restart. SCRIPT FLUSH runs on a server of the test's own: on the shared
// one, another package's EVAL could load the script again between the flush and the check.
func TestWriteScriptNotLoaded(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	srv := startRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	rdb.AddHook(hook)
	t.Cleanup(func() { _ = rdb.Close() })
	s, _ := newTestStore(t, rdb)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	w := principalWriteForTest(t, s, &attrcache.Principal{UserID: attrcache.NewUserID(), Version: 1})
	stored, err := s.apply(ctx, w)
	if err != nil || !stored[0] {
		t.Fatalf("apply = %v, %v; want stored", stored, err)
	}
	if got := hook.sent("eval"); got != 1 {
		t.Errorf("EVAL sent %d times, want 1 (the fallback)", got)
	}
	if _, ok := rawValue(t, rdb, w.key); !ok {
		t.Errorf("%s was not stored", w.key)
	}
}

func principalWriteForTest(t *testing.T, s *Store, p *attrcache.Principal) write {
	t.Helper()
	w, err := s.principalWrite(p)
	if err != nil {
		t.Fatalf("principalWrite: %v", err)
	}
	return w
}
