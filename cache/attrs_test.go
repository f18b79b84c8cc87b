package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

func TestAttrCacheHit(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	for _, kind := range scopeKinds {
		t.Run(kind.name, func(t *testing.T) {
			scope := newScope(t, a, inner, kind.session)
			stored, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{
				item("colour", "red"), item("size", "L", time.Now().Add(time.Hour)), item("shape", "round"),
			}, attrcache.Now())
			if err != nil {
				t.Fatalf("SetAttrs: %v", err)
			}
			// The first read learns that "missing" does not exist.
			cachedAttrs(t, a, scope, "missing")
			inner.reset()
			hook.reset()

			got := cachedAttrs(t, a, scope, "colour", "size", "shape", "missing")
			if calls := inner.counts(); len(calls) != 0 {
				t.Errorf("a cache hit called the inner store: %v", calls)
			}
			if got, want := hook.sentAll(), map[string]int{"mget": 1}; !maps.Equal(got, want) {
				t.Errorf("a cache hit sent %v to Redis, want %v", got, want)
			}
			if want := byName(stored); !reflect.DeepEqual(got, want) {
				t.Errorf("Attrs = %v, want %v", describeAttrs(got), describeAttrs(want))
			}
		})
	}
}

func byName(attrs []*attrcache.Attr) map[string]*attrcache.Attr {
	m := make(map[string]*attrcache.Attr, len(attrs))
	for _, a := range attrs {
		m[a.Name] = a
	}
	return m
}

func TestAttrMissFillsRedis(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	names := []string{"a", "b", "c"}

	tests := []struct {
		name      string
		scope     func(t *testing.T) attrcache.AttrScope
		wantInner map[string]int
	}{
		{
			name:      "user",
			scope:     func(t *testing.T) attrcache.AttrScope { return newScope(t, a, inner, false) },
			wantInner: map[string]int{"Attrs": 1},
		},
		{
			name:      "session cached",
			scope:     func(t *testing.T) attrcache.AttrScope { return newScope(t, a, inner, true) },
			wantInner: map[string]int{"Attrs": 1},
		},
		{
			name: "session not cached",
			scope: func(t *testing.T) attrcache.AttrScope {
				u := newUser(t)
				return attrcache.AttrScope{UserID: u.UserID, Session: newSession(t, u.UserID, time.Hour).Hash}
			},
			wantInner: map[string]int{"SessionWithPrincipal": 1, "Attrs": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := tt.scope(t)
			if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1"), item("b", "2", time.Now().Add(time.Hour))}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs in MySQL: %v", err)
			}
			inner.reset()

			checkReadsMatchMySQL(t, a, scope, names...)
			if got := inner.counts(); !maps.Equal(got, tt.wantInner) {
				t.Errorf("inner calls on a miss = %v, want %v", got, tt.wantInner)
			}
			for _, name := range names {
				if e := cachedEntry(t, a, scope, name); e.state == entryNoKey {
					t.Errorf("the miss left no key for %q", name)
				}
			}
			checkRedisMatchesMySQL(t, a, scope, names...)

			inner.reset()
			hook.reset()
			checkReadsMatchMySQL(t, a, scope, names...)
			if got := inner.counts(); len(got) != 0 {
				t.Errorf("the read after the fill called the inner store: %v", got)
			}
			if got, want := hook.sentAll(), map[string]int{"mget": 1}; !maps.Equal(got, want) {
				t.Errorf("the read after the fill sent %v to Redis, want %v", got, want)
			}
		})
	}
}

func TestAbsentAttrReadOnce(t *testing.T) {
	ctx := context.Background()
	const absentTTL = 2 * time.Minute
	a, inner := newAttrTestStoreWith(t, newRedis(t), Options{AbsentTTL: absentTTL})
	for _, kind := range scopeKinds {
		t.Run(kind.name, func(t *testing.T) {
			scope := newScope(t, a, inner, kind.session)
			for range 2 {
				if got := cachedAttrs(t, a, scope, "nope"); len(got) != 0 {
					t.Fatalf("Attrs of a missing attribute = %v, want none", describeAttrs(got))
				}
			}
			if got := inner.counts()["Attrs"]; got != 1 {
				t.Errorf("inner Attrs calls for two reads of a missing attribute = %d, want 1", got)
			}
			if e := cachedEntry(t, a, scope, "nope"); e.state != entryAbsent {
				t.Fatalf("Redis holds state %v for the missing attribute, want the absent marker", e.state)
			}
			ttl, err := a.s.rdb.PTTL(ctx, a.s.keys.attrPrefix(scope)+"nope").Result()
			if err != nil {
				t.Fatalf("PTTL: %v", err)
			}
			if ttl <= 0 || ttl > absentTTL {
				t.Errorf("absent marker PTTL = %v, want within (0, %v]", ttl, absentTTL)
			}

			// A write replaces the marker at once.
			if _, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("nope", "now it is")}, attrcache.Now()); err != nil {
				t.Fatalf("CreateAttrs: %v", err)
			}
			if e := cachedEntry(t, a, scope, "nope"); e.state != entryLive {
				t.Errorf("after the write Redis holds state %v, want the value", e.state)
			}
			checkReadsMatchMySQL(t, a, scope, "nope")
		})
	}
}

func TestAttrKeyExpiresWithAttr(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	inAnHour := attrcache.Now().Add(time.Hour)

	cacheBy := []struct {
		name  string
		cache func(t *testing.T, scope attrcache.AttrScope, w attrcache.AttrWrite)
	}{
		{"write", func(t *testing.T, scope attrcache.AttrScope, w attrcache.AttrWrite) {
			if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{w}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs: %v", err)
			}
		}},
		{"fill", func(t *testing.T, scope attrcache.AttrScope, w attrcache.AttrWrite) {
			if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{w}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs in MySQL: %v", err)
			}
			cachedAttrs(t, a, scope, w.Name)
		}},
	}
	expiries := []struct {
		name  string
		write attrcache.AttrWrite
	}{
		{"in an hour", item("x", "v", inAnHour)},
		{"never", item("x", "v")},
	}
	for _, by := range cacheBy {
		for _, exp := range expiries {
			t.Run(by.name+"/"+exp.name, func(t *testing.T) {
				scope := newScope(t, a, inner, false)
				by.cache(t, scope, exp.write)
				stored := mysqlAttrs(t, scope, "x")["x"]
				if stored == nil {
					t.Fatal("MySQL does not hold the attribute")
				}
				key := a.s.keys.attrPrefix(scope) + "x"
				got := expireTimeMillis(t, a.s.rdb, key)
				if want, ok := expireTimeMatches(got, stored.ExpirationTime); !ok {
					t.Errorf("PEXPIRETIME = %d, want %d (MySQL's expiration_time %v)", got, want, stored.ExpirationTime)
				}
			})
		}
	}
}

func TestExpiredAttrNotServed(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))

	tests := []struct {
		name string
		// prepare caches the attribute "x" of scope and returns the time to read it at.
		prepare func(t *testing.T, scope attrcache.AttrScope) time.Time
	}{
		{
			name: "read after the expiry",
			prepare: func(t *testing.T, scope attrcache.AttrScope) time.Time {
				at := attrcache.Now().Add(time.Hour)
				if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("x", "v", at)}, attrcache.Now()); err != nil {
					t.Fatalf("SetAttrs: %v", err)
				}
				return at.Add(time.Minute)
			},
		},
		{
			name: "key outlives the value it holds",
			prepare: func(t *testing.T, scope attrcache.AttrScope) time.Time {
				stored, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("x", "v", attrcache.Now().Add(time.Hour))}, attrcache.Now())
				if err != nil {
					t.Fatalf("SetAttrs: %v", err)
				}
				// Say the clocks disagree: Redis keeps a copy that has expired. Its higher version
				// keeps the fills of the reads below from replacing it.
				ended := *stored[0]
				ended.ExpirationTime = time.Now().Add(-time.Minute)
				ended.Version++
				value, err := encodeAttr(&ended)
				if err != nil {
					t.Fatalf("encodeAttr: %v", err)
				}
				w := write{key: a.s.keys.attrPrefix(scope) + "x", value: value, version: ended.Version, expireAt: time.Now().Add(time.Hour)}
				if _, err := a.s.apply(ctx, w); err != nil {
					t.Fatalf("apply: %v", err)
				}
				return attrcache.Now()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := newScope(t, a, inner, false)
			readAt := tt.prepare(t, scope)
			inner.reset()
			got, err := a.Attrs(ctx, scope, []string{"x"}, readAt)
			if err != nil {
				t.Fatalf("Attrs: %v", err)
			}
			want, err := testDB.Attrs(ctx, scope, []string{"x"}, readAt)
			if err != nil {
				t.Fatalf("Attrs in MySQL: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Attrs = %v, want MySQL's %v", describeAttrs(got), describeAttrs(want))
			}
			if n := inner.counts()["Attrs"]; n != 1 {
				t.Errorf("inner Attrs calls = %d, want 1: the expired copy must not answer", n)
			}
		})
	}
}

func TestAttrWritesKeepRedisEqualToMySQL(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	names := []string{"a", "b", "c", "d"}

	// In order, on one scope: each step starts from what the ones before left.
	type step struct {
		name string
		do   func(scope attrcache.AttrScope) error
	}
	set := func(items ...attrcache.AttrWrite) func(attrcache.AttrScope) error {
		return func(scope attrcache.AttrScope) error {
			_, err := a.SetAttrs(ctx, scope, items, attrcache.Now())
			return err
		}
	}
	create := func(items ...attrcache.AttrWrite) func(attrcache.AttrScope) error {
		return func(scope attrcache.AttrScope) error {
			_, err := a.CreateAttrs(ctx, scope, items, attrcache.Now())
			return err
		}
	}
	update := func(items ...attrcache.AttrWrite) func(attrcache.AttrScope) error {
		return func(scope attrcache.AttrScope) error {
			_, err := a.UpdateAttrs(ctx, scope, items, attrcache.Now())
			return err
		}
	}
	del := func(names ...string) func(attrcache.AttrScope) error {
		return func(scope attrcache.AttrScope) error {
			_, err := a.DeleteAttrs(ctx, scope, names, attrcache.Now())
			return err
		}
	}
	read := func(scope attrcache.AttrScope) error {
		_, err := a.Attrs(ctx, scope, names, attrcache.Now())
		return err
	}
	soon := attrcache.Now().Add(10 * time.Minute)
	steps := []step{
		{"read everything missing", read},
		{"create a and b", create(item("a", "1"), item("b", "2"))},
		{"set a, create c", set(item("a", "1.1"), item("c", "3", soon))},
		{"read", read},
		{"update b and missing d", update(item("b", "2.1", soon), item("d", "ignored"))},
		{"delete a and missing d", del("a", "d")},
		{"read after the deletion", read},
		{"create a again", create(item("a", "reborn"))},
		{"update c keeps its expiry", update(item("c", "3.1"))},
		{"set everything", set(item("a", "x"), item("b", "y"), item("c", "z"), item("d", "w"))},
		{"delete everything", del(names...)},
		{"read after deleting everything", read},
		{"set d again", set(item("d", "back"))},
	}
	for _, kind := range scopeKinds {
		t.Run(kind.name, func(t *testing.T) {
			scope := newScope(t, a, inner, kind.session)
			for _, st := range steps {
				if err := st.do(scope); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				checkRedisMatchesMySQL(t, a, scope, names...)
				checkReadsMatchMySQL(t, a, scope, names...)
				if t.Failed() {
					t.Fatalf("after %q Redis and MySQL disagree", st.name)
				}
			}
		})
	}
}

func TestCreateConflictLeavesRedisAlone(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	scope := newScope(t, a, inner, false)
	if _, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1")}, attrcache.Now()); err != nil {
		t.Fatalf("CreateAttrs: %v", err)
	}
	before := cachedEntry(t, a, scope, "a")
	_, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "2"), item("b", "2")}, attrcache.Now())
	if !errors.Is(err, attrcache.ErrConflict) {
		t.Fatalf("CreateAttrs over an existing attribute: err = %v, want ErrConflict", err)
	}
	if got := cachedEntry(t, a, scope, "a"); got != before {
		t.Errorf("a failed create changed Redis from %+v to %+v", before, got)
	}
	if got := cachedEntry(t, a, scope, "b"); got.state != entryNoKey {
		t.Errorf("a failed create cached b: state %v", got.state)
	}
}

func TestAttrWriteScriptVersions(t *testing.T) {
	ctx := context.Background()
	rdb := newRedis(t)
	a, _ := newAttrTestStore(t, rdb)
	later := time.Now().Add(time.Hour)

	value := func(version int64) write {
		encoded, err := encodeAttr(&attrcache.Attr{Name: "x", Value: jsonString(fmt.Sprint(version)), ExpirationTime: attrcache.NeverExpires, Version: version})
		if err != nil {
			t.Fatalf("encodeAttr: %v", err)
		}
		return write{value: encoded, version: version}
	}
	tomb := func(version int64) write { return versionedTombstoneWrite("", version, later) }
	absent := absentWrite("", later)

	tests := []struct {
		name       string
		before     []write // stored first, in order
		write      write
		wantStored bool
		wantValue  string
	}{
		{name: "older version never overwrites newer", before: []write{value(6)}, write: value(5), wantStored: false, wantValue: value(6).value},
		{name: "newer version replaces older", before: []write{value(5)}, write: value(6), wantStored: true, wantValue: value(6).value},
		{name: "tombstone beats an older version", before: []write{value(5)}, write: tomb(7), wantStored: true, wantValue: tomb(7).value},
		{name: "tombstone loses to a newer version", before: []write{value(8)}, write: tomb(7), wantStored: false, wantValue: value(8).value},
		{name: "older version loses to a tombstone", before: []write{tomb(7)}, write: value(5), wantStored: false, wantValue: tomb(7).value},
		{name: "newer version replaces a tombstone", before: []write{tomb(7)}, write: value(9), wantStored: true, wantValue: value(9).value},
		{name: "newer tombstone replaces older", before: []write{tomb(7)}, write: tomb(9), wantStored: true, wantValue: tomb(9).value},
		{name: "older tombstone keeps out", before: []write{tomb(9)}, write: tomb(7), wantStored: false, wantValue: tomb(9).value},
		{name: "absent marker over nothing", write: absent, wantStored: true, wantValue: absentMarker},
		{name: "any version replaces the absent marker", before: []write{absent}, write: value(1), wantStored: true, wantValue: value(1).value},
		{name: "tombstone replaces the absent marker", before: []write{absent}, write: tomb(1), wantStored: true, wantValue: tomb(1).value},
		{name: "absent marker never replaces a value", before: []write{value(1)}, write: absent, wantStored: false, wantValue: value(1).value},
		{name: "absent marker never replaces a tombstone", before: []write{tomb(1)}, write: absent, wantStored: false, wantValue: tomb(1).value},
		{name: "nothing replaces a final tombstone", before: []write{tombstoneWrite("", later)}, write: value(99), wantStored: false, wantValue: tombstone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := a.s.keys.attrPrefix(attrcache.AttrScope{UserID: attrcache.NewUserID()}) + "x"
			for _, w := range tt.before {
				w.key = key
				if _, err := a.s.apply(ctx, w); err != nil {
					t.Fatalf("storing %q first: %v", w.value, err)
				}
			}
			w := tt.write
			w.key = key
			stored, err := a.s.apply(ctx, w)
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

func TestAttrTombstoneBeatsRacingFill(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	for _, kind := range scopeKinds {
		t.Run(kind.name, func(t *testing.T) {
			scope := newScope(t, a, inner, kind.session)
			if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("x", "doomed")}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs: %v", err)
			}
			// Redis loses the key (say it was evicted); a reader misses, loads the attribute, then
			// stalls before filling Redis while the attribute is deleted.
			deleteKey(t, a.s, a.s.keys.attrPrefix(scope)+"x")
			loaded, err := testDB.Attrs(ctx, scope, []string{"x"}, attrcache.Now())
			if err != nil || loaded["x"] == nil {
				t.Fatalf("loading: %v, %v", loaded, err)
			}
			if _, err := a.DeleteAttrs(ctx, scope, []string{"x"}, attrcache.Now()); err != nil {
				t.Fatalf("DeleteAttrs: %v", err)
			}
			w, err := attrCopyWrite(a.s.keys.attrPrefix(scope)+"x", loaded["x"], time.Now())
			if err != nil {
				t.Fatalf("attrCopyWrite: %v", err)
			}
			a.s.fill(ctx, w)

			if e := cachedEntry(t, a, scope, "x"); e.state != entryTombstone {
				t.Errorf("after the late fill Redis holds state %v, want the tombstone", e.state)
			}
			if got := cachedAttrs(t, a, scope, "x"); len(got) != 0 {
				t.Errorf("Attrs after the deletion = %v, want none", describeAttrs(got))
			}
		})
	}
}

func TestConcurrentAttrWritersAndReaders(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	scope := newScope(t, a, inner, false)
	// MySQL alone holds the attribute at first, so that the readers' first fills race the writes.
	if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("hot", "initial")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs in MySQL: %v", err)
	}

	const (
		writers         = 32
		writesPerWriter = 50
		readers         = 4
	)
	errs := make(chan error, writers+readers)
	writing := make(chan struct{})
	var writersWG, readersWG sync.WaitGroup
	for r := range readers {
		readersWG.Go(func() {
			for {
				select {
				case <-writing:
					return
				default:
				}
				if _, err := a.Attrs(ctx, scope, []string{"hot"}, attrcache.Now()); err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		})
	}
	for w := range writers {
		writersWG.Go(func() {
			for i := range writesPerWriter {
				var err error
				if i%10 == 9 {
					_, err = a.DeleteAttrs(ctx, scope, []string{"hot"}, attrcache.Now())
				} else {
					_, err = a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("hot", fmt.Sprintf("writer %d, write %d", w, i))}, attrcache.Now())
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
			}
		})
	}
	writersWG.Wait()
	close(writing)
	readersWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	checkRedisMatchesMySQL(t, a, scope, "hot")
	checkReadsMatchMySQL(t, a, scope, "hot")
	if e := cachedEntry(t, a, scope, "hot"); e.state == entryNoKey {
		t.Error("Redis holds nothing for the attribute after the writes, want their last one")
	}
}

func TestConcurrentAttrMissesShareOneLoad(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	scope := newScope(t, a, inner, false)
	if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1"), item("b", "2")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs in MySQL: %v", err)
	}
	want := mysqlAttrs(t, scope, "a", "b")

	const callers = 8
	entered := make(chan struct{})
	release := make(chan struct{})
	var enterOnce sync.Once
	inner.before = func(method string) {
		if method == "Attrs" {
			enterOnce.Do(func() { close(entered) })
			<-release
		}
	}
	hook.reset()

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		// The same names in different orders, repeated too: one load.
		names := [][]string{{"a", "b"}, {"b", "a"}, {"a", "b", "a"}}[i%3]
		wg.Go(func() {
			got, err := a.Attrs(ctx, scope, names, attrcache.Now())
			if err == nil && !reflect.DeepEqual(got, want) {
				err = fmt.Errorf("got %v, want %v", describeAttrs(got), describeAttrs(want))
			}
			errs <- err
		})
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no caller reached the inner store")
	}
	waitFor(t, "every caller to miss", func() bool { return hook.sent("mget") >= callers })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Attrs: %v", err)
		}
	}
	if got := inner.counts()["Attrs"]; got != 1 {
		t.Errorf("inner Attrs calls = %d, want 1", got)
	}
}

func TestSessionAttrsEndWithSession(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))

	tests := []struct {
		name string
		// end ends the session of scope and returns the time to read at.
		end func(t *testing.T, scope attrcache.AttrScope) time.Time
	}{
		{
			name: "logout",
			end: func(t *testing.T, scope attrcache.AttrScope) time.Time {
				if err := a.s.DeleteSession(ctx, scope.UserID, scope.Session); err != nil {
					t.Fatalf("DeleteSession: %v", err)
				}
				return attrcache.Now()
			},
		},
		{
			name: "user deleted",
			end: func(t *testing.T, scope attrcache.AttrScope) time.Time {
				if _, err := a.s.DeleteUser(ctx, scope.UserID); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
				return attrcache.Now()
			},
		},
		{
			name: "session expired",
			end: func(t *testing.T, scope attrcache.AttrScope) time.Time {
				return attrcache.Now().Add(2 * time.Hour)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := newScope(t, a, inner, true)
			if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("x", "v")}, attrcache.Now()); err != nil {
				t.Fatalf("SetAttrs: %v", err)
			}
			readAt := tt.end(t, scope)
			got, err := a.Attrs(ctx, scope, []string{"x"}, readAt)
			if err != nil {
				t.Fatalf("Attrs: %v", err)
			}
			if len(got) != 0 {
				t.Errorf("Attrs of an ended session = %v, want none", describeAttrs(got))
			}
		})
	}
}

func TestAttrNamesPassThrough(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	scope := newScope(t, a, inner, false)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("b", "1"), item("a", "2")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	inner.reset()
	names, err := a.AttrNames(ctx, scope, attrcache.Now())
	if err != nil {
		t.Fatalf("AttrNames: %v", err)
	}
	slices.Sort(names)
	if want := []string{"a", "b"}; !slices.Equal(names, want) {
		t.Errorf("AttrNames = %q, want %q", names, want)
	}
	if got := inner.counts()["AttrNames"]; got != 1 {
		t.Errorf("inner AttrNames calls = %d, want 1", got)
	}
}

// Deleting a user leaves, in place of each of their attributes' keys, a tombstone that expires:
// an attribute that never expires would otherwise stay in Redis for good, since nothing reads a
// deleted user's keys again. A user with more attributes than one pipeline carries gets them in
// several, none longer than maxCoalescedCmds.
func TestDeletedUsersAttrsLeaveRedis(t *testing.T) {
	ctx := context.Background()
	sizes := &pipelineSizes{}
	a, inner := newAttrTestStore(t, newRedis(t, sizes))
	sessionScope := newScope(t, a, inner, true)
	userScope := attrcache.AttrScope{UserID: sessionScope.UserID}
	var keys []string
	for scope, n := range map[attrcache.AttrScope]int{userScope: maxCoalescedCmds + 100, sessionScope: 2} {
		items := make([]attrcache.AttrWrite, n)
		names := make([]string, n)
		for i := range n {
			names[i] = "attr-" + strconv.Itoa(i)
			items[i] = item(names[i], "v")
		}
		if _, err := a.SetAttrs(ctx, scope, items, attrcache.Now()); err != nil {
			t.Fatalf("SetAttrs: %v", err)
		}
		keys = append(keys, a.s.keys.attrs(scope, names)...)
	}
	for _, key := range keys {
		if ttl, err := a.s.rdb.PTTL(ctx, key).Result(); err != nil || ttl < DefaultMaxTTL-time.Minute {
			t.Fatalf("test set-up: %s has PTTL %v (%v), want the max TTL of a key that never expires", key, ttl, err)
		}
	}

	if _, err := a.s.DeleteUser(ctx, userScope.UserID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	deadline := time.Now().Add(tombstoneTTL)
	for _, key := range keys {
		if v, ok := rawValue(t, a.s.rdb, key); !ok || v != tombstone {
			t.Errorf("%s is not the tombstone after the user's deletion (present: %v)", key, ok)
			continue
		}
		if at := expiresAt(t, a.s.rdb, key); at.After(deadline) {
			t.Errorf("%s expires at %v, after %v", key, at, deadline)
		}
	}
	if longest := sizes.longestSent(); longest > maxCoalescedCmds {
		t.Errorf("a pipeline carried %d commands, more than %d", longest, maxCoalescedCmds)
	}
}

// pipelineSizes is a go-redis hook that records the longest pipeline sent.
type pipelineSizes struct {
	mu      sync.Mutex
	longest int
}

func (p *pipelineSizes) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (p *pipelineSizes) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelineSizes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		p.mu.Lock()
		p.longest = max(p.longest, len(cmds))
		p.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (p *pipelineSizes) longestSent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.longest
}

// TestAbsentMarkersAreBounded floods one user's user and session scopes with reads of missing
// names (20 reads of 1,000 names each) and checks that Redis holds at most Options.AbsentMax
// absent markers for them, that the budget expires with the markers, that every read still
// answers from the inner store, and that another user still gets markers of their own.
func TestAbsentMarkersAreBounded(t *testing.T) {
	ctx := context.Background()
	const (
		absentMax = 100
		absentTTL = 2 * time.Minute
		reads     = 20
		perRead   = attrcache.MaxAttrItems
	)
	a, inner := newAttrTestStoreWith(t, newRedis(t), Options{AbsentMax: absentMax, AbsentTTL: absentTTL})
	session := newScope(t, a, inner, true)
	scopes := []attrcache.AttrScope{{UserID: session.UserID}, session}

	var keys []string
	for i := range reads {
		scope := scopes[i%len(scopes)]
		names := make([]string, perRead)
		for j := range names {
			names[j] = fmt.Sprintf("missing-%02d-%04d", i, j)
		}
		if got := cachedAttrs(t, a, scope, names...); len(got) != 0 {
			t.Fatalf("read %d of missing names found %v", i, describeAttrs(got))
		}
		keys = append(keys, a.s.keys.attrs(scope, names)...)
	}
	if got := inner.counts()["Attrs"]; got != reads {
		t.Errorf("inner Attrs calls = %d, want %d (one per read)", got, reads)
	}

	markers := 0
	for chunk := range slices.Chunk(keys, perRead) { // one user's keys: one hash slot
		values, err := a.s.rdb.MGet(ctx, chunk...).Result()
		if err != nil {
			t.Fatalf("MGET: %v", err)
		}
		for _, v := range values {
			if v == absentMarker {
				markers++
			}
		}
	}
	if markers != absentMax {
		t.Errorf("Redis holds %d absent markers after %d reads of %d missing names, want the budget, %d", markers, reads, perRead, absentMax)
	}
	budgetTTL, err := a.s.rdb.PTTL(ctx, a.s.keys.absentBudget(session.UserID)).Result()
	if err != nil {
		t.Fatalf("PTTL of the budget: %v", err)
	}
	if budgetTTL <= 0 || budgetTTL > absentTTL {
		t.Errorf("the absent budget's PTTL = %v, want within (0, %v]: it ends with the markers it counts", budgetTTL, absentTTL)
	}

	// The user past the budget: a missing name reads the inner store each time, and answers.
	inner.reset()
	for range 2 {
		if got := cachedAttrs(t, a, session, "past-the-budget"); len(got) != 0 {
			t.Fatalf("a read past the budget found %v", describeAttrs(got))
		}
	}
	if got := inner.counts()["Attrs"]; got != 2 {
		t.Errorf("inner Attrs calls for two reads past the budget = %d, want 2", got)
	}
	// Another user has a budget of their own.
	other := newScope(t, a, inner, false)
	cachedAttrs(t, a, other, "nope")
	if e := cachedEntry(t, a, other, "nope"); e.state != entryAbsent {
		t.Errorf("another user's missing attribute: Redis holds state %v, want the absent marker", e.state)
	}
}

// TestAbsentBudgetScript checks writeScript's absent budget: markers are stored until the budget
// has counted its most, a marker that is not stored (the key is taken) is not counted, and the
// budget lasts until the latest expiry of the markers it counted.
func TestAbsentBudgetScript(t *testing.T) {
	ctx := context.Background()
	a, _ := newAttrTestStore(t, newRedis(t))
	userID := attrcache.NewUserID() // one user: the budget and the markers share a hash slot
	budget := a.s.keys.absentBudget(userID)
	base := a.s.keys.attrPrefix(attrcache.AttrScope{UserID: userID})
	later, sooner := time.Now().Add(time.Hour), time.Now().Add(time.Minute)
	marker := func(name string, expireAt time.Time) write {
		return absentWrite(base+name, expireAt).withBudget(budget, 2)
	}
	steps := []struct {
		write      write
		wantStored bool
		wantBudget string
	}{
		{marker("a", later), true, fmt.Sprintf("1:%d", later.UnixMilli())},
		{marker("a", later), false, fmt.Sprintf("1:%d", later.UnixMilli())}, // the key is taken
		{marker("b", sooner), true, fmt.Sprintf("2:%d", later.UnixMilli())},
		{marker("c", later), false, fmt.Sprintf("2:%d", later.UnixMilli())}, // the budget is spent
	}
	for i, st := range steps {
		stored, err := a.s.apply(ctx, st.write)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if stored[0] != st.wantStored {
			t.Errorf("step %d (%s): stored %v, want %v", i, st.write.key, stored[0], st.wantStored)
		}
		if got, _ := a.s.rdb.Get(ctx, budget).Result(); got != st.wantBudget {
			t.Errorf("step %d: the budget holds %q, want %q", i, got, st.wantBudget)
		}
	}
	if got := expireTimeMillis(t, a.s.rdb, budget); got != later.UnixMilli() {
		t.Errorf("the budget expires at %d, want %d: the latest expiry of its markers", got, later.UnixMilli())
	}
}
