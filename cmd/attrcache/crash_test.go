package main

import (
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/internal/faultproxy"
	"github.com/attrcache/attrcache/internal/testenv"
)

// TestKilledWriterLeavesNoStaleCopy: instance A (a child process) reaches Redis through a fault
// proxy, instance B (in process) directly, both on one database and key prefix. A caches v1;
// A's link to Redis is cut; A sets v2 (200), a never-expiring attribute; A is SIGKILLed. B must
// serve v2 within 1 s of A's answer: A's change reaches Redis through the change log's relay,
// B's, since A is gone.
func TestKilledWriterLeavesNoStaleCopy(t *testing.T) {
	if len(testenv.RedisClusterAddrs()) > 0 {
		t.Skip("the fault proxy forwards to the single test Redis")
	}
	redisOpts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Listen(redisOpts.Addr)
	if err != nil {
		t.Fatalf("starting the proxy: %v", err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	a := startServeProcess(t, map[string]string{
		"ATTRCACHE_REDIS_URL":   "redis://" + proxy.Addr() + "/" + strconv.Itoa(redisOpts.DB),
		"ATTRCACHE_REDIS_ADDRS": "",
	}, false)
	b := startServe(t, nil)

	username, password := "crash-"+strconv.FormatInt(time.Now().UnixNano(), 36), "Kv9-q2Zt-m4Lw"
	createUser(t, "create-user", username, password)
	ust := a.login(t, username, password, "")
	attr := func(extra map[string]any) map[string]any {
		body := map[string]any{"ust": ust, "current_app": testApp, "name": "k"}
		for k, v := range extra {
			body[k] = v
		}
		return body
	}
	a.mustCall(t, http.MethodPut, pathUserAttr, attr(map[string]any{"value": "v1"}))
	if got := b.mustCall(t, http.MethodGet, pathUserAttr, attr(nil)); got["value"] != "v1" {
		t.Fatalf("B serves %v before the change, want v1", got["value"])
	}

	proxy.Down()
	a.mustCall(t, http.MethodPut, pathUserAttr, attr(map[string]any{"value": "v2"}))
	ack := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	if err := a.waitExit(t, 10*time.Second); err == nil {
		t.Fatal("A exited with status 0 after SIGKILL")
	}
	for {
		got := b.mustCall(t, http.MethodGet, pathUserAttr, attr(nil))
		if got["value"] == "v2" {
			t.Logf("B serves v2 %v after A's acknowledgement", time.Since(ack).Round(time.Millisecond))
			return
		}
		if time.Since(ack) > time.Second {
			t.Fatalf("B still serves %v %v after A acknowledged v2 and was killed, want v2 within 1s", got["value"], time.Since(ack).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
