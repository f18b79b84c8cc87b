package galera_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/consistency"
	"github.com/attrcache/attrcache/internal/stacktest"
)

// Instances on nodes 1 and 2 write while node 3's mariadbd is SIGKILLed: no request fails, and
// once node 3 has rejoined, every node, Redis and both instances hold every acknowledged write.
func TestNodeKilledUnderLoadLosesNoWrite(t *testing.T) {
	needCluster(t)
	const writersPerInstance, ackedBeforeKill, ackedAfterKill = 4, 200, 200
	stacks := []*stacktest.Stack{
		env.NewStack(t, stacktest.Options{MySQLAddr: env.Nodes[0]}),
		env.NewStack(t, stacktest.Options{MySQLAddr: env.Nodes[1]}),
	}
	users := stacks[0].NewUsers(t, uniqueName("kill"), writersPerInstance)
	nodes := openNodes(t)
	victim := len(env.Nodes) - 1
	pid := nodePID(t, nodes[victim])
	t.Cleanup(func() { restartCluster(t) })

	ctx := context.Background()
	type ack struct {
		key   consistency.Key
		value string
	}
	var (
		mu       sync.Mutex
		acked    []ack
		ackCount atomic.Int64
		failed   atomic.Int64
		slowest  atomic.Int64 // the longest write, in nanoseconds
		stop     = make(chan struct{})
		stopOnce sync.Once
		wg       sync.WaitGroup
	)
	stopWriters := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopWriters) // also when a wait below fails the test
	for i, s := range stacks {
		for w := range writersPerInstance {
			u := users[w]
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					name, value := fmt.Sprintf("i%d-w%d-%05d", i, w, n), fmt.Sprintf("value-%d", n)
					start := time.Now()
					res := s.SetAttr(ctx, u, name, value)
					for took := int64(time.Since(start)); ; {
						if old := slowest.Load(); took <= old || slowest.CompareAndSwap(old, took) {
							break
						}
					}
					if !res.OK() {
						if failed.Add(1) == 1 {
							t.Logf("first failed write: %s", res)
						}
						continue
					}
					mu.Lock()
					acked = append(acked, ack{consistency.Key{UserID: u.ID, Name: name}, value})
					mu.Unlock()
					ackCount.Add(1)
				}
			})
		}
	}
	waitFor(t, "writes acknowledged before the kill", func() bool { return ackCount.Load() >= ackedBeforeKill })
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing node %s (pid %d): %v", env.Nodes[victim], pid, err)
	}
	waitFor(t, "the surviving nodes to see a cluster of two", func() bool { return clusterSize(nodes[0]) == len(env.Nodes)-1 })
	afterKill := ackCount.Load()
	waitFor(t, "writes acknowledged after the kill", func() bool { return ackCount.Load() >= afterKill+ackedAfterKill })
	stopWriters()
	if got := failed.Load(); got != 0 {
		t.Errorf("%d of %d writes on the surviving nodes failed, want 0", got, failed.Load()+ackCount.Load())
	}
	t.Logf("%d writes acknowledged, %d of them after node %s was killed; the longest took %v",
		ackCount.Load(), ackCount.Load()-afterKill, env.Nodes[victim], time.Duration(slowest.Load()))

	restartCluster(t)
	stored := checkNodesAgree(t, nodes)
	for _, a := range acked {
		row, ok := stored[a.key]
		if !ok || unquote(t, row.Value) != a.value {
			t.Errorf("acknowledged write %s = %q: the nodes hold %+v (found %v)", a.key, a.value, row, ok)
		}
	}
	checkRedisAgrees(t, nodes)
	for _, u := range users {
		checkAPIAgrees(t, stacks, u, stored)
	}
}

// nodePID returns the process id of the mariadbd behind db, from its pid file.
func nodePID(t *testing.T, db *sql.DB) int {
	t.Helper()
	var pidFile string
	if err := db.QueryRowContext(context.Background(), "SELECT @@pid_file").Scan(&pidFile); err != nil {
		t.Fatalf("reading the node's pid file name: %v", err)
	}
	text, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("reading the node's pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatalf("the node's pid file holds %q: %v", text, err)
	}
	return pid
}

// clusterSize returns the size of the cluster the node of db sees, 0 when it does not answer.
func clusterSize(db *sql.DB) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var name string
	var size int
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'").Scan(&name, &size); err != nil {
		return 0
	}
	return size
}

// restartCluster starts the nodes that are down with `scripts/services.sh galera`, which returns
// once every node is Synced in one cluster.
func restartCluster(t *testing.T) {
	t.Helper()
	ports := make([]string, len(env.Nodes))
	for i, addr := range env.Nodes {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("node address %s: %v", addr, err)
		}
		ports[i] = port
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/services.sh", "galera")
	cmd.Env = append(os.Environ(), "GALERA_PORTS="+strings.Join(ports, " "))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restarting the Galera cluster: %v\n%s", err, out)
	}
}

// waitFor polls done until it holds, failing t after a bound.
func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	const bound = time.Minute
	deadline := time.Now().Add(bound)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
