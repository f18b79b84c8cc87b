package cache

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/clustertest"
)

// replayCall is what one ReplayChanges call was asked.
type replayCall struct {
	since     time.Time
	ownerSeen bool // users(owner of the test's attribute)
}

// recordingReplayer is a ChangeReplayer that records its calls and then replays by running
// apply (or fails with err).
type recordingReplayer struct {
	owner string
	apply func(context.Context) error
	err   error

	mu    sync.Mutex
	calls []replayCall
}

func (r *recordingReplayer) ReplayChanges(ctx context.Context, since time.Time, users func(string) bool) error {
	r.mu.Lock()
	r.calls = append(r.calls, replayCall{since: since, ownerSeen: users(r.owner)})
	r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	return r.apply(ctx)
}

func (r *recordingReplayer) recorded() []replayCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]replayCall{}, r.calls...)
}

// TestFailoverOfASingleServer covers the single-server (and Sentinel) case: the client is moved
// from a master to its replica, promoted after the master was killed, as Sentinel's switch moves
// it; the replica lacks the master's last write, which its link's proxy held back. An unwatched
// store serves the stale value; a watched one notices the new master (another run id and
// replication id) and serves the acknowledged value once repaired: by the replayer, or by a drop
// when there is none or the replay fails.
func TestFailoverOfASingleServer(t *testing.T) {
	const window = 30 * time.Second
	replayFailed := errors.New("the change log is unreachable")
	tests := []struct {
		name       string
		watch      bool
		replayer   *recordingReplayer // nil: none
		wantMethod string
	}{
		{name: "no watch serves the stale value"},
		{name: "drop", watch: true, wantMethod: RepairDrop},
		{name: "replay", watch: true, replayer: &recordingReplayer{}, wantMethod: RepairReplay},
		{name: "failed replay falls back to a drop", watch: true, replayer: &recordingReplayer{err: replayFailed}, wantMethod: RepairDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			master, replica := clustertest.StartReplicated(t)
			var target atomic.Value // the address the client's new connections reach
			target.Store(master.Addr)
			var dialer net.Dialer
			rdb := redis.NewClient(&redis.Options{
				Addr: "redis-master",
				Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return dialer.DialContext(ctx, network, target.Load().(string))
				},
				DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
				DialerRetries: 1, MaxRetries: 1,
			})
			t.Cleanup(func() { _ = rdb.Close() })
			a, inner := newAttrTestStore(t, rdb)
			scope := newScope(t, a, inner, false)
			repairs := make(chan FailoverRepair, 4)
			if tt.watch {
				opts := FailoverOptions{CheckInterval: 50 * time.Millisecond, ReplayWindow: window,
					OnRepair: func(r FailoverRepair) { repairs <- r }}
				if tt.replayer != nil {
					tt.replayer.owner = scope.UserID
					// The change log would apply v2 again; this writes it again.
					tt.replayer.apply = func(ctx context.Context) error {
						_, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("colour", "v2")}, attrcache.Now())
						return err
					}
					opts.Replayer = tt.replayer
				}
				a.s.WatchFailovers(opts)
			}

			setColour(t, a, scope, "v1")
			if got := colour(t, a, scope); got != "v1" {
				t.Fatalf("colour %q after setting v1", got)
			}
			clustertest.WaitReplicated(t, master, replica)
			master.Link.Down()
			setColour(t, a, scope, "v2")
			if !clustertest.ReplicaBehind(t, master, replica) {
				t.Fatal("the replica has everything its master wrote; the write was not held back")
			}
			killed := time.Now()
			master.Kill()
			if err := replica.Admin.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
				t.Fatalf("promoting the replica: %v", err)
			}
			target.Store(replica.Addr)

			if !tt.watch {
				if got := colourOnceAnswered(t, a, scope); got != "v1" {
					t.Fatalf("colour %q from the promoted replica without a watch, want the stale v1", got)
				}
				return
			}
			var rep FailoverRepair
			select {
			case rep = <-repairs:
			case <-time.After(5 * time.Second):
				t.Fatal("no repair within 5 s of the promotion")
			}
			if got := colour(t, a, scope); got != "v2" {
				t.Errorf("colour %q after the repair, want the acknowledged v2", got)
			}
			if rep.Method != tt.wantMethod || rep.Slots != numSlots || rep.Repaired.Sub(rep.Noticed) > time.Second {
				t.Errorf("repair %+v, want a %s of all %d slots within 1 s", rep, tt.wantMethod, numSlots)
			}
			if tt.replayer == nil {
				return
			}
			calls := tt.replayer.recorded()
			if len(calls) != 1 {
				t.Fatalf("%d replays, want 1", len(calls))
			}
			// The master was last seen by a check at most an interval (and a check's time) before
			// the kill.
			earliest, latest := killed.Add(-window-time.Second), killed.Add(-window)
			if got := calls[0]; got.since.Before(earliest) || got.since.After(latest) || !got.ownerSeen {
				t.Errorf("replay since %v (users include the owner: %v), want since in [%v, %v] and the owner included",
					got.since, got.ownerSeen, earliest, latest)
			}
		})
	}
}

// TestHidesKeysOfSlotsUnderRepair checks that reads bypass Redis for the keys of slots whose
// repair is pending, and only those.
func TestHidesKeysOfSlotsUnderRepair(t *testing.T) {
	a, inner := newAttrTestStore(t, newRedis(t))
	hidden, shown := newScope(t, a, inner, false), newScope(t, a, inner, false)
	for _, scope := range []attrcache.AttrScope{hidden, shown} {
		setColour(t, a, scope, "v1")
		colour(t, a, scope) // cached
	}
	var slots slotSet
	slots.add(slotOf(a.s.keys.userTag(hidden.UserID)))
	if slots.contains(slotOf(a.s.keys.userTag(shown.UserID))) {
		t.Skip("both users share a slot")
	}
	a.s.failover.hidden.Store(&slots)
	inner.reset()
	colour(t, a, hidden)
	colour(t, a, shown)
	if got := inner.counts()["Attrs"]; got != 1 {
		t.Errorf("%d reads reached the inner store, want 1: the hidden slot's", got)
	}
	a.s.failover.hidden.Store(nil)
	inner.reset()
	colour(t, a, hidden)
	if got := inner.counts()["Attrs"]; got != 0 {
		t.Errorf("%d reads reached the inner store once the repair ended, want 0", got)
	}
}

// TestTopologyChanges checks which changes of master count as a possible loss of data.
func TestTopologyChanges(t *testing.T) {
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := &master{id: "a", addr: "a:1", identity: nodeIdentity{"run-a", "repl-a"}, seen: seen}
	b := &master{id: "b", addr: "b:1", identity: nodeIdentity{"run-b", "repl-b"}, seen: seen.Add(time.Second)}
	promoted := &master{id: "r", addr: "r:1", identity: nodeIdentity{"run-r", "repl-r"}}
	restartedA := &master{id: "a", addr: "a:1", identity: nodeIdentity{"run-a2", "repl-a2"}}
	silentA := &master{id: "a", addr: "a:1"}
	halves := func(first, second *master) *topology {
		var t topology
		for slot := range t.bySlot {
			t.bySlot[slot] = first
			if slot >= numSlots/2 {
				t.bySlot[slot] = second
			}
		}
		return &t
	}
	tests := []struct {
		name      string
		next      *topology
		wantSlots int
		wantSince time.Time
	}{
		{"nothing changed", halves(a, b), 0, time.Time{}},
		{"a replica promoted in a's place", halves(promoted, b), numSlots / 2, seen},
		{"a restarted", halves(restartedA, b), numSlots / 2, seen},
		{"a did not answer", halves(silentA, b), 0, time.Time{}},
		{"a's slots moved to b, a master already", halves(b, b), 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, since := halves(a, b).changedTo(tt.next)
			gotSlots := 0
			if changed != nil {
				gotSlots = changed.len()
			}
			if gotSlots != tt.wantSlots || !since.Equal(tt.wantSince) {
				t.Errorf("changed %d slots since %v, want %d since %v", gotSlots, since, tt.wantSlots, tt.wantSince)
			}
		})
	}
}

// TestSlotOf checks slotOf against what Redis's CLUSTER KEYSLOT answers.
func TestSlotOf(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"somekey", 11058},
		{"foo", 12182},
		{"foo{hash_tag}", 2515},
		{"{}x", 10595},
		{"a{}b{c}", 7353},
		{"x{zusr01}:u", 12649},
		{"{", 4092},
	}
	for _, tt := range tests {
		if got := slotOf(tt.key); got != tt.want {
			t.Errorf("slotOf(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// setColour sets scope's attribute colour to value through a.
func setColour(t *testing.T, a *AttrStore, scope attrcache.AttrScope, value string) {
	t.Helper()
	if _, err := a.SetAttrs(context.Background(), scope, []attrcache.AttrWrite{item("colour", value)}, attrcache.Now()); err != nil {
		t.Fatalf("setting colour to %s: %v", value, err)
	}
}

// colour reads scope's attribute colour through a; "" when it does not exist.
func colour(t *testing.T, a *AttrStore, scope attrcache.AttrScope) string {
	t.Helper()
	attr := cachedAttrs(t, a, scope, "colour")["colour"]
	if attr == nil {
		return ""
	}
	var value string
	if err := json.Unmarshal([]byte(attr.Value), &value); err != nil {
		t.Fatalf("colour %s: %v", attr.Value, err)
	}
	return value
}

// colourOnceAnswered reads colour until Redis answers the read (the client has reached the new
// master), failing the test after a bound.
func colourOnceAnswered(t *testing.T, a *AttrStore, scope attrcache.AttrScope) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.s.rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("Redis still fails 5 s after the promotion")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	return colour(t, a, scope)
}

// TestRestartFromAnOlderSnapshot covers a master restarted in place from a snapshot older than
// its last write: same address, another run id. An unwatched store serves the snapshot's stale
// value; a watched one notices the restart and serves the acknowledged value.
func TestRestartFromAnOlderSnapshot(t *testing.T) {
	for _, watch := range []bool{false, true} {
		t.Run(map[bool]string{false: "no watch serves the stale value", true: "watched"}[watch], func(t *testing.T) {
			server, _ := clustertest.StartReplicated(t)
			rdb := redis.NewClient(&redis.Options{Addr: server.Addr, DialTimeout: time.Second, ReadTimeout: time.Second,
				WriteTimeout: time.Second, DialerRetries: 1, MaxRetries: 1})
			t.Cleanup(func() { _ = rdb.Close() })
			a, inner := newAttrTestStore(t, rdb)
			scope := newScope(t, a, inner, false)
			repairs := make(chan FailoverRepair, 4)
			if watch {
				a.s.WatchFailovers(FailoverOptions{CheckInterval: 50 * time.Millisecond,
					OnRepair: func(r FailoverRepair) { repairs <- r }})
			}

			setColour(t, a, scope, "v1")
			if got := colour(t, a, scope); got != "v1" {
				t.Fatalf("colour %q after setting v1", got)
			}
			saveSnapshot(t, server.Admin)
			setColour(t, a, scope, "v2")
			server.Kill()
			server.Restart(t)

			if !watch {
				if got := colourOnceAnswered(t, a, scope); got != "v1" {
					t.Fatalf("colour %q after the restart without a watch, want the snapshot's stale v1", got)
				}
				return
			}
			select {
			case rep := <-repairs:
				if rep.Method != RepairDrop || rep.Slots != numSlots || rep.Repaired.Sub(rep.Noticed) > time.Second {
					t.Errorf("repair %+v, want a drop of all %d slots within 1 s", rep, numSlots)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no repair within 5 s of the restart")
			}
			if got := colour(t, a, scope); got != "v2" {
				t.Errorf("colour %q after the repair, want the acknowledged v2", got)
			}
		})
	}
}

// saveSnapshot runs SAVE on rdb, again while a background save (a replica's full sync) is under
// way.
func saveSnapshot(t *testing.T, rdb *redis.Client) {
	t.Helper()
	var err error
	waitFor(t, "SAVE to find no background save under way", func() bool {
		err = rdb.Save(context.Background()).Err()
		return err == nil || !strings.Contains(err.Error(), "Background save already in progress")
	})
	if err != nil {
		t.Fatalf("SAVE: %v", err)
	}
}
