package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/internal/clustertest"
	"github.com/attrcache/attrcache/internal/stacktest"
)

// failoverBound is how soon after an instance notices a replaced Redis master its reads must
// give the acknowledged value.
const failoverBound = time.Second

// staleReads is how many reads in a row must serve the stale value for the case without repair
// to show that the promoted replica really lacks the last write.
const staleReads = 20

// TestRedisClusterFailover runs, on a private Redis Cluster of three masters with a replica
// each, the failover a cache must survive: a value is cached and replicated, the replica's link
// to its master is cut, the value is overwritten or deleted (acknowledged: MySQL and the master
// have it, the replica does not), the master is SIGKILLed and the replica takes over. An
// instance that watches for failovers must serve the acknowledged state within failoverBound
// of noticing; one that does not serves the stale value, which shows the write was lost.
func TestRedisClusterFailover(t *testing.T) {
	started := time.Now()
	cluster := clustertest.Start(t, 3)
	t.Logf("cluster of 3 masters and 3 replicas ready in %v", time.Since(started).Round(time.Millisecond))
	rdb := cluster.Client()
	t.Cleanup(func() { stacktest.CloseOrFail(t, "cluster client", rdb) })
	setup := env.NewStack(t, stacktest.Options{Redis: rdb})

	cases := []struct {
		name  string
		watch bool
		write func(ctx context.Context, s *stacktest.Stack, u stacktest.User, name string) *stacktest.Response
		want  stacktest.AttrValue
	}{
		{
			name:  "overwritten, no watch: the promoted replica serves the stale value",
			write: setTo("v2"),
			want:  stacktest.AttrValue{Found: true, Value: "v1"},
		},
		{
			name:  "overwritten, watched: the acknowledged value",
			watch: true,
			write: setTo("v2"),
			want:  stacktest.AttrValue{Found: true, Value: "v2"},
		},
		{
			name:  "deleted, watched: the deletion",
			watch: true,
			write: func(ctx context.Context, s *stacktest.Stack, u stacktest.User, name string) *stacktest.Response {
				return s.Attr(ctx, http.MethodDelete, u, name, nil)
			},
			want: stacktest.AttrValue{Found: false},
		},
	}
	users := usersOnEachMaster(t, cluster, setup)
	t.Logf("a user on each master after %v", time.Since(started).Round(time.Millisecond))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			u := users[i]
			master, replica := cluster.PairOf(t, "{"+u.ID+"}")
			repairs := make(chan cache.FailoverRepair, 4)
			opts := stacktest.Options{Redis: rdb}
			if tc.watch {
				opts.Failover = &cache.FailoverOptions{OnRepair: func(r cache.FailoverRepair) { repairs <- r }}
			}
			s := env.NewStack(t, opts)

			if res := s.SetAttr(ctx, u, "colour", "v1"); !res.OK() {
				t.Fatalf("setting v1: %s", res)
			}
			if got, res := s.GetAttr(ctx, u, "colour"); !res.OK() || got != (stacktest.AttrValue{Found: true, Value: "v1"}) {
				t.Fatalf("reading v1 back: got %+v (%s)", got, res)
			}
			clustertest.WaitReplicated(t, master, replica)
			master.Link.Down()
			if res := tc.write(ctx, s, u, "colour"); !res.OK() {
				t.Fatalf("the write after the replica's link was cut: %s", res)
			}
			if !clustertest.ReplicaBehind(t, master, replica) {
				t.Fatal("the replica has everything its master wrote; the write was not held back")
			}
			killed := time.Now()
			master.Kill()
			cluster.Takeover(t, replica)
			promoted := time.Now()

			if !tc.watch {
				// The client finds the new master at its next reload of the slots (within its
				// reload interval); a watch reloads them at every check.
				rdb.ReloadState(ctx)
				got := readUntil(t, s, u, "colour", tc.want, 10*time.Second)
				for range staleReads {
					if got, _ = readAttr(t, s, u, "colour"); got != tc.want {
						t.Fatalf("read %+v after the takeover, want the stale %+v in every read", got, tc.want)
					}
				}
				t.Logf("without a watch the promoted replica served the stale %+v (%d reads in a row)", got, staleReads)
				return
			}
			var rep cache.FailoverRepair
			select {
			case rep = <-repairs:
			case <-time.After(10 * time.Second):
				t.Fatal("no repair within 10 s of the takeover")
			}
			got, _ := readAttr(t, s, u, "colour")
			readAt := time.Now()
			if got != tc.want {
				t.Errorf("first read after the repair: got %+v, want the acknowledged %+v", got, tc.want)
			}
			if elapsed := readAt.Sub(rep.Noticed); elapsed > failoverBound {
				t.Errorf("acknowledged state read %v after the failover was noticed, want at most %v", elapsed, failoverBound)
			}
			if rep.Method != cache.RepairReplay || rep.Slots < 16384/3 || rep.Slots > 16384/3+1 {
				t.Errorf("repair %+v, want a replay of the change log for the %d slots of one master", rep, 16384/3)
			}
			t.Logf("kill→takeover %v, takeover→noticed %v, noticed→repaired %v (%s, %d keys of %d slots), noticed→acknowledged read %v",
				promoted.Sub(killed).Round(time.Millisecond), rep.Noticed.Sub(promoted).Round(time.Millisecond),
				rep.Repaired.Sub(rep.Noticed).Round(time.Microsecond), rep.Method, rep.Dropped, rep.Slots,
				readAt.Sub(rep.Noticed).Round(time.Microsecond))
		})
	}
}

// setTo returns a write that sets an attribute to value.
func setTo(value string) func(context.Context, *stacktest.Stack, stacktest.User, string) *stacktest.Response {
	return func(ctx context.Context, s *stacktest.Stack, u stacktest.User, name string) *stacktest.Response {
		return s.SetAttr(ctx, u, name, value)
	}
}

// usersOnEachMaster creates users until each master of the cluster serves one, and returns one
// per master, in the order of cluster.Masters.
func usersOnEachMaster(t *testing.T, cluster *clustertest.Cluster, s *stacktest.Stack) []stacktest.User {
	t.Helper()
	found := make([]stacktest.User, len(cluster.Masters))
	missing := len(found)
	for i := 0; missing > 0; i++ {
		if i == 200 {
			t.Fatalf("200 users and still %d masters without one", missing)
		}
		u := s.NewUsers(t, fmt.Sprintf("failover%d", i), 1)[0]
		master, _ := cluster.PairOf(t, "{"+u.ID+"}")
		for j, m := range cluster.Masters {
			if m == master && found[j].ID == "" {
				found[j] = u
				missing--
			}
		}
	}
	return found
}

// readAttr reads u's attribute name, failing the test if the read fails.
func readAttr(t *testing.T, s *stacktest.Stack, u stacktest.User, name string) (stacktest.AttrValue, *stacktest.Response) {
	t.Helper()
	got, res := s.GetAttr(context.Background(), u, name)
	if !res.OK() || res.Err != nil {
		t.Fatalf("reading %s: %s", name, res)
	}
	return got, res
}

// readUntil reads u's attribute name until it is want, failing the test after bound.
func readUntil(t *testing.T, s *stacktest.Stack, u stacktest.User, name string, want stacktest.AttrValue, bound time.Duration) stacktest.AttrValue {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		got, _ := readAttr(t, s, u, name)
		if got == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads still give %+v %v after the takeover, want %+v", got, bound, want)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
