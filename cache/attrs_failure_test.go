package cache

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
)

func TestAttrsWithRedisUnreachable(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, unreachableRedis(t))
	a := NewAttrStore(s, inner)
	for _, kind := range scopeKinds {
		t.Run(kind.name, func(t *testing.T) {
			u := newUser(t)
			scope := attrcache.AttrScope{UserID: u.UserID}
			if kind.session {
				scope.Session = newSession(t, u.UserID, time.Hour).Hash
			}
			// In order: each step may rely on the ones before.
			steps := []struct {
				method string
				call   func() error
			}{
				{"CreateAttrs", func() error {
					_, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1")}, attrcache.Now())
					return err
				}},
				{"SetAttrs", func() error {
					_, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("b", "2")}, attrcache.Now())
					return err
				}},
				{"UpdateAttrs", func() error {
					_, err := a.UpdateAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1.1")}, attrcache.Now())
					return err
				}},
				{"Attrs", func() error {
					got, err := a.Attrs(ctx, scope, []string{"a", "b"}, attrcache.Now())
					if err == nil && (len(got) != 2 || got["a"].Value != jsonString("1.1")) {
						err = fmt.Errorf("got %v, want a = 1.1 and b", describeAttrs(got))
					}
					return err
				}},
				{"AttrNames", func() error { _, err := a.AttrNames(ctx, scope, attrcache.Now()); return err }},
				{"DeleteAttrs", func() error { _, err := a.DeleteAttrs(ctx, scope, []string{"a"}, attrcache.Now()); return err }},
			}
			for _, step := range steps {
				t.Run(step.method, func(t *testing.T) {
					inner.reset()
					if err := step.call(); err != nil {
						t.Fatalf("%s: %v", step.method, err)
					}
					if got := inner.counts()[step.method]; got != 1 {
						t.Errorf("inner %s calls = %d, want 1", step.method, got)
					}
				})
			}
		})
	}
}

func TestAttrFailedUpdateDeletesKeys(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	scope := newScope(t, a, inner, false)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "old"), item("b", "old")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}

	// The script fails, DEL does not.
	hook.failOnly("evalsha", "eval")
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "new"), item("b", "new")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs with the script failing: %v", err)
	}
	hook.setFailing(false)

	for _, name := range []string{"a", "b"} {
		if e := cachedEntry(t, a, scope, name); e.state != entryNoKey {
			t.Errorf("the key of %q survived a failed update (state %v), want it deleted", name, e.state)
		}
	}
	checkReadsMatchMySQL(t, a, scope, "a", "b")
}

func TestAttrRelayEndsStaleCopyAfterFailedUpdate(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	plain := newRedis(t)
	scope := newScope(t, a, inner, false)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "old")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	key := a.s.keys.attrPrefix(scope) + "a"
	stale, _ := rawValue(t, plain, key)

	// Redis fails after MySQL commits: neither the update nor the deletion reaches it.
	hook.setFailing(true)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "new")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs with Redis failing: %v", err)
	}
	hook.setFailing(false)
	if got, _ := rawValue(t, plain, key); got != stale {
		t.Fatalf("Redis holds %q, want the stale %q that the test is about", got, stale)
	}

	relayAll(t, a.s)
	if e := cachedEntry(t, a, scope, "a"); e.state != entryFloor {
		t.Errorf("after the relay the key is in state %v, want a floor", e.state)
	}
	checkReadsMatchMySQL(t, a, scope, "a")
	checkRedisMatchesMySQL(t, a, scope, "a")
	if e := cachedEntry(t, a, scope, "a"); e.state != entryLive {
		t.Errorf("after a read the key is in state %v, want the value refilled", e.state)
	}
}

func TestAbsentMarkerAfterFailedUpdateGivesWayToRelay(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	a, inner := newAttrTestStore(t, newRedis(t, hook))
	scope := newScope(t, a, inner, false)

	// A reader finds no attribute, then stalls; meanwhile the attribute is created and storing
	// it in Redis fails; then the reader fills its absent marker.
	if got := mysqlAttrs(t, scope, "a"); len(got) != 0 {
		t.Fatalf("MySQL holds %v before the test", describeAttrs(got))
	}
	hook.failOnly("evalsha", "eval")
	if _, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1")}, attrcache.Now()); err != nil {
		t.Fatalf("CreateAttrs: %v", err)
	}
	hook.setFailing(false)
	key := a.s.keys.attrPrefix(scope) + "a"
	a.s.fill(ctx, absentWrite(key, time.Now().Add(time.Minute)))
	if e := cachedEntry(t, a, scope, "a"); e.state != entryAbsent {
		t.Fatalf("the late absent marker is in state %v, want stored (the case the relay must end)", e.state)
	}

	relayAll(t, a.s)
	checkReadsMatchMySQL(t, a, scope, "a")
}

// redisServer is a redis-server of the test's own, which the test can stop and start again on
// the same port.
type redisServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedisServer starts a redis-server on a free loopback port, without persistence, and
// stops it at the end of the test.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("freeing port %d: %v", port, err)
	}
	srv := &redisServer{t: t, port: port, dir: t.TempDir()}
	srv.start()
	t.Cleanup(func() {
		if srv.cmd != nil {
			_ = srv.cmd.Process.Kill()
			_ = srv.cmd.Wait()
		}
	})
	return srv
}

func (srv *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(srv.port) }

// start starts the server and waits until it answers.
func (srv *redisServer) start() {
	srv.t.Helper()
	srv.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(srv.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", srv.dir)
	if err := srv.cmd.Start(); err != nil {
		srv.t.Fatalf("starting redis-server: %v", err)
	}
	probe := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	defer probe.Close()
	waitFor(srv.t, "the private redis-server to answer", func() bool {
		return probe.Ping(context.Background()).Err() == nil
	})
}

// stop shuts the server down without saving and waits for it to exit.
func (srv *redisServer) stop() {
	srv.t.Helper()
	client := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1})
	defer client.Close()
	// The server closes the connection instead of answering.
	_ = client.ShutdownNoSave(context.Background()).Err()
	if err := srv.cmd.Wait(); err != nil {
		srv.t.Logf("redis-server exited: %v", err)
	}
	srv.cmd = nil
}

func TestAttrsSurviveRedisRestart(t *testing.T) {
	ctx := context.Background()
	srv := startRedisServer(t)
	// No retries: each command fails at once while the server is down.
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	a, inner := newAttrTestStore(t, rdb)
	names := []string{"a", "b", "c", "d"}
	userScope := newScope(t, a, inner, false)
	sessionScope := newScope(t, a, inner, true)
	scopes := []attrcache.AttrScope{userScope, sessionScope}

	for _, scope := range scopes {
		if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1"), item("b", "2"), item("c", "3")}, attrcache.Now()); err != nil {
			t.Fatalf("SetAttrs: %v", err)
		}
		checkReadsMatchMySQL(t, a, scope, names...)
	}

	srv.stop()
	for _, scope := range scopes {
		steps := []struct {
			name string
			do   func() error
		}{
			{"set", func() error {
				_, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1 while down")}, attrcache.Now())
				return err
			}},
			{"create", func() error {
				_, err := a.CreateAttrs(ctx, scope, []attrcache.AttrWrite{item("d", "4 while down")}, attrcache.Now())
				return err
			}},
			{"update", func() error {
				_, err := a.UpdateAttrs(ctx, scope, []attrcache.AttrWrite{item("c", "3 while down")}, attrcache.Now())
				return err
			}},
			{"delete", func() error {
				_, err := a.DeleteAttrs(ctx, scope, []string{"b"}, attrcache.Now())
				return err
			}},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				t.Errorf("%s with Redis down: %v", st.name, err)
			}
		}
		checkReadsMatchMySQL(t, a, scope, names...)
	}

	srv.start()
	relayAll(t, a.s)
	for _, scope := range scopes {
		checkReadsMatchMySQL(t, a, scope, names...) // fills
		checkReadsMatchMySQL(t, a, scope, names...) // from Redis
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	attrKeys := 0
	for _, scope := range scopes {
		prefix := a.s.keys.attrPrefix(scope)
		for _, key := range keys {
			if name, ok := strings.CutPrefix(key, prefix); ok {
				attrKeys++
				checkRedisMatchesMySQL(t, a, scope, name)
			}
		}
	}
	if want := len(scopes) * len(names); attrKeys != want {
		t.Errorf("Redis holds %d attribute keys after the reads, want %d (%q)", attrKeys, want, keys)
	}
}

func TestCacheMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hook := newFaultHook()
	a, inner := newAttrTestStoreWith(t, newRedis(t, hook), Options{Metrics: m})
	scope := newScope(t, a, inner, false)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("a", "1")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)

	steps := []struct {
		name   string
		read   func() error
		op     string
		result string
	}{
		{"attr hit", func() error { _, err := a.Attrs(ctx, scope, []string{"a"}, attrcache.Now()); return err }, opUserAttrs, metrics.CacheHit},
		{"attr miss", func() error { _, err := a.Attrs(ctx, scope, []string{"b"}, attrcache.Now()); return err }, opUserAttrs, metrics.CacheMiss},
		{"session miss", func() error { _, _, err := a.s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); return err }, opSessionWithPrincipal, metrics.CacheMiss},
		{"session hit", func() error { _, _, err := a.s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); return err }, opSessionWithPrincipal, metrics.CacheHit},
		{"attr error", func() error {
			hook.failOnly("mget")
			defer hook.setFailing(false)
			_, err := a.Attrs(ctx, scope, []string{"a"}, attrcache.Now())
			return err
		}, opUserAttrs, metrics.CacheError},
		{"session error", func() error {
			hook.failOnly("mget")
			defer hook.setFailing(false)
			_, err := a.s.Session(ctx, u.UserID, sess.Hash)
			return err
		}, opSession, metrics.CacheError},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := cacheRequests(t, reg, st.op, st.result)
			if err := st.read(); err != nil {
				t.Fatalf("read: %v", err)
			}
			if got := cacheRequests(t, reg, st.op, st.result) - before; got != 1 {
				t.Errorf("attrcache_cache_requests_total{op=%q, result=%q} grew by %v, want 1", st.op, st.result, got)
			}
		})
	}
}

// cacheRequests returns attrcache_cache_requests_total{op, result} as gathered from reg, 0 when
// it has not been counted yet.
func cacheRequests(t *testing.T, reg *prometheus.Registry, op, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "attrcache_cache_requests_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			labels := make(map[string]string)
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == op && labels["result"] == result {
				return metric.GetCounter().GetValue()
			}
		}
	}
	return 0
}
