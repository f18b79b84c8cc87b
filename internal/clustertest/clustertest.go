// Package clustertest starts private Redis servers with replicas on free loopback ports, for
// tests of failover: a Redis Cluster with a replica per master (Start), or one server and its
// replica (StartReplicated). A replica reaches its master through a fault proxy
// (internal/faultproxy; a Cluster master announces the proxy's address), so a test can hold
// replication back, while clients reach the master directly.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/internal/faultproxy"
)

// startBound bounds the cluster's start, and each wait for a state the cluster must reach.
const startBound = 20 * time.Second

// Node is one redis-server of the cluster.
type Node struct {
	// Addr is where the server listens.
	Addr string
	// Announced is the address the cluster gives for the node: the proxy's (Link) for a master
	// the cluster was started with, Addr for a replica.
	Announced string
	// Link, for a master the cluster was started with, is the proxy its replica reaches it
	// through; nil for a replica.
	Link *faultproxy.Proxy
	// ID is the node's cluster id; "" outside a cluster.
	ID string
	// Admin is a client of the node alone (READONLY on replicas, so that they answer reads).
	Admin *redis.Client

	busPort int
	args    []string // redis-server's
	cmd     *exec.Cmd
}

// Cluster is a running cluster: Replicas[i] replicates Masters[i].
type Cluster struct {
	Masters  []*Node
	Replicas []*Node
}

// Start starts a cluster of masters masters, each with one replica, its slots spread evenly;
// t.Cleanup stops it. It skips the test when redis-server is not on PATH.
func Start(t testing.TB, masters int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH: the Redis Cluster failover test needs it (apt-get install redis-server)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	dir := t.TempDir()
	c := &Cluster{}
	for i := range masters {
		c.Masters = append(c.Masters, startNode(t, filepath.Join(dir, "master"+strconv.Itoa(i)), true, true))
		c.Replicas = append(c.Replicas, startNode(t, filepath.Join(dir, "replica"+strconv.Itoa(i)), false, true))
	}
	all := c.nodes()
	for i, m := range c.Masters {
		first, last := i*16384/masters, (i+1)*16384/masters-1
		must(t, m.Admin.ClusterAddSlotsRange(ctx, first, last).Err(), "CLUSTER ADDSLOTSRANGE")
	}
	for _, n := range all[1:] {
		host, port, _ := net.SplitHostPort(n.Addr)
		must(t, all[0].Admin.Do(ctx, "CLUSTER", "MEET", host, port, n.busPort).Err(), "CLUSTER MEET")
	}
	for _, n := range all {
		waitFor(t, "every node to know every other", func() bool {
			info, err := n.Admin.ClusterInfo(ctx).Result()
			return err == nil && field(info, "cluster_known_nodes") == strconv.Itoa(len(all))
		})
	}
	for i, r := range c.Replicas {
		must(t, r.Admin.ClusterReplicate(ctx, c.Masters[i].ID).Err(), "CLUSTER REPLICATE")
	}
	for i, r := range c.Replicas {
		waitFor(t, "each replica to sync with its master through the proxy", func() bool {
			info, err := r.Admin.Info(ctx, "replication").Result()
			return err == nil && field(info, "master_link_status") == "up" &&
				net.JoinHostPort(field(info, "master_host"), field(info, "master_port")) == c.Masters[i].Announced
		})
	}
	for _, n := range all {
		waitFor(t, "cluster_state:ok and every replica known on every node", func() bool {
			return c.stateOK(ctx, n) && c.replicasListed(ctx, n)
		})
	}
	return c
}

// StartReplicated starts a single Redis server (no cluster) and a replica of it that replicates
// through master.Link; t.Cleanup stops them. It skips the test when redis-server is not on PATH.
func StartReplicated(t testing.TB) (master, replica *Node) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH: the Redis failover test needs it (apt-get install redis-server)")
	}
	dir := t.TempDir()
	master = startNode(t, filepath.Join(dir, "master"), true, false)
	replica = startNode(t, filepath.Join(dir, "replica"), false, false)
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	host, port, _ := net.SplitHostPort(master.Announced)
	must(t, replica.Admin.ReplicaOf(ctx, host, port).Err(), "REPLICAOF")
	waitFor(t, "the replica to sync with its master through the proxy", func() bool {
		info, err := replica.Admin.Info(ctx, "replication").Result()
		return err == nil && field(info, "master_link_status") == "up"
	})
	return master, replica
}

// startNode starts a redis-server with its files in dir, a Cluster node if cluster; a master's
// replicas reach it through a fault proxy, whose port a Cluster master announces.
func startNode(t testing.TB, dir string, master, cluster bool) *Node {
	t.Helper()
	port, busPort := freePort(t), freePort(t)
	n := &Node{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), busPort: busPort}
	n.Announced = n.Addr
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", filepath.Dir(dir), "--dbfilename", filepath.Base(dir) + ".rdb",
		"--save", "", "--appendonly", "no", "--logfile", dir + ".log",
		// A replica's first sync starts at once, not after the default 5 s wait for others.
		"--repl-diskless-sync-delay", "0",
		// A Cluster lists a replica only once its replication offset is above 0, which an idle
		// master's pings to its replicas move.
		"--repl-ping-replica-period", "1",
	}
	if cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", dir+".nodes.conf",
			"--cluster-port", strconv.Itoa(busPort), "--cluster-node-timeout", "2000",
			// Only the test promotes a replica (CLUSTER FAILOVER TAKEOVER), at the moment it chooses.
			"--cluster-replica-no-failover", "yes")
	}
	if master {
		link, err := faultproxy.Listen(n.Addr)
		must(t, err, "starting the replication proxy")
		t.Cleanup(func() { _ = link.Close() }) // after the node is gone: nothing left to report
		n.Link, n.Announced = link, link.Addr()
		if cluster {
			_, proxyPort, _ := net.SplitHostPort(link.Addr())
			args = append(args, "--cluster-announce-ip", "127.0.0.1", "--cluster-announce-port", proxyPort,
				"--cluster-announce-bus-port", strconv.Itoa(busPort))
		}
	}
	n.args = args
	n.cmd = exec.Command("redis-server", args...)
	must(t, n.cmd.Start(), "starting redis-server")
	t.Cleanup(func() { n.Kill() }) // the process Restart started, if it did
	opts := &redis.Options{Addr: n.Addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1}
	if cluster && !master {
		opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
	}
	n.Admin = redis.NewClient(opts)
	t.Cleanup(func() { _ = n.Admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	waitFor(t, "redis-server on "+n.Addr+" to answer", func() bool { return n.Admin.Ping(ctx).Err() == nil })
	if cluster {
		id, err := n.Admin.ClusterMyID(ctx).Result()
		must(t, err, "CLUSTER MYID")
		n.ID = id
	}
	return n
}

// Kill ends the node's server with SIGKILL, as a crash would, and waits for it to exit. It may
// be called more than once.
func (n *Node) Kill() {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL) // fails only when it has exited already
	_ = n.cmd.Wait()                          // a killed process reports the signal
}

// Restart starts the node's server again, as it was started, after Kill, and waits until it
// answers; it loads what its last SAVE wrote, if anything.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.cmd = exec.Command("redis-server", n.args...)
	must(t, n.cmd.Start(), "restarting redis-server")
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	waitFor(t, "redis-server on "+n.Addr+" to answer again", func() bool { return n.Admin.Ping(ctx).Err() == nil })
}

// Client returns a cluster client of the service's kind (cmd/attrcache's timeouts) that
// reaches every node directly, the proxies of the masters' replication links included; the
// caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	direct := make(map[string]string)
	var addrs []string
	for _, n := range c.nodes() {
		direct[n.Announced] = n.Addr
		addrs = append(addrs, n.Addr)
	}
	var dialer net.Dialer
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if real, ok := direct[addr]; ok {
				addr = real
			}
			return dialer.DialContext(ctx, network, addr)
		},
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		DialerRetries: 1,
		MaxRetries:    1,
	})
}

// PairOf returns the master the cluster was started with that serves key's slot, and its
// replica.
func (c *Cluster) PairOf(t testing.TB, key string) (master, replica *Node) {
	t.Helper()
	ctx := context.Background()
	live := c.live()
	slot, err := live.Admin.ClusterKeySlot(ctx, key).Result()
	must(t, err, "CLUSTER KEYSLOT")
	ranges, err := live.Admin.ClusterSlots(ctx).Result()
	must(t, err, "CLUSTER SLOTS")
	for _, r := range ranges {
		if int64(r.Start) > slot || slot > int64(r.End) || len(r.Nodes) == 0 {
			continue
		}
		for i, m := range c.Masters {
			if r.Nodes[0].ID == m.ID {
				return m, c.Replicas[i]
			}
		}
	}
	t.Fatalf("no master the cluster was started with serves the slot %d of %s", slot, key)
	return nil, nil
}

// live returns a node whose server still runs.
func (c *Cluster) live() *Node {
	for _, n := range c.nodes() {
		if n.cmd.ProcessState == nil {
			return n
		}
	}
	panic("clustertest: every node was killed")
}

// Takeover promotes replica in its master's place (CLUSTER FAILOVER TAKEOVER: no agreement of
// the other masters, no sync with the master) and waits until every live node says it serves
// the slots.
func (c *Cluster) Takeover(t testing.TB, replica *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startBound)
	defer cancel()
	must(t, replica.Admin.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(), "CLUSTER FAILOVER TAKEOVER")
	for _, n := range c.nodes() {
		if n.cmd.ProcessState != nil {
			continue
		}
		waitFor(t, "every node to see "+replica.Addr+" as a master", func() bool {
			ranges, err := n.Admin.ClusterSlots(ctx).Result()
			if err != nil {
				return false
			}
			for _, r := range ranges {
				if len(r.Nodes) > 0 && r.Nodes[0].ID == replica.ID {
					return true
				}
			}
			return false
		})
	}
}

// WaitReplicated waits until replica has everything master has written so far.
func WaitReplicated(t testing.TB, master, replica *Node) {
	t.Helper()
	ctx := context.Background()
	info, err := master.Admin.Info(ctx, "replication").Result()
	must(t, err, "INFO replication of the master")
	want, _ := strconv.ParseInt(field(info, "master_repl_offset"), 10, 64)
	waitFor(t, "the replica to catch up with its master", func() bool {
		info, err := replica.Admin.Info(ctx, "replication").Result()
		got, _ := strconv.ParseInt(field(info, "slave_repl_offset"), 10, 64)
		return err == nil && got >= want
	})
}

func (c *Cluster) nodes() []*Node {
	all := append([]*Node{}, c.Masters...)
	return append(all, c.Replicas...)
}

func (c *Cluster) stateOK(ctx context.Context, n *Node) bool {
	info, err := n.Admin.ClusterInfo(ctx).Result()
	return err == nil && field(info, "cluster_state") == "ok"
}

// replicasListed reports whether CLUSTER SLOTS of n lists each master with its replica.
func (c *Cluster) replicasListed(ctx context.Context, n *Node) bool {
	ranges, err := n.Admin.ClusterSlots(ctx).Result()
	if err != nil {
		return false
	}
	for _, r := range ranges {
		if len(r.Nodes) < 2 {
			return false
		}
	}
	return len(ranges) == len(c.Masters)
}

// field returns the value of name in the text of INFO or CLUSTER INFO.
func field(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return value
		}
	}
	return ""
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err, "finding a free port")
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls ok until it holds, failing the test after startBound.
func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(startBound)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", startBound, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, fmt.Errorf("clustertest: %w", err))
	}
}

// ReplicaBehind reports whether replica lacks some of what master has written.
func ReplicaBehind(t testing.TB, master, replica *Node) bool {
	t.Helper()
	ctx := context.Background()
	masterInfo, err := master.Admin.Info(ctx, "replication").Result()
	must(t, err, "INFO replication of the master")
	replicaInfo, err := replica.Admin.Info(ctx, "replication").Result()
	must(t, err, "INFO replication of the replica")
	written, _ := strconv.ParseInt(field(masterInfo, "master_repl_offset"), 10, 64)
	replicated, _ := strconv.ParseInt(field(replicaInfo, "slave_repl_offset"), 10, 64)
	return replicated < written
}
