package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/metrics/metricstest"
)

// pipelineGate is a go-redis hook that records the commands of every pipeline and holds the
// first one until it is opened.
type pipelineGate struct {
	open     chan struct{}
	mu       sync.Mutex
	first    bool
	pipeline [][]string // per pipeline, its commands
}

func newPipelineGate() *pipelineGate { return &pipelineGate{open: make(chan struct{})} }

func (g *pipelineGate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *pipelineGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *pipelineGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		switch cmds[0].Name() {
		case "hello", "client", "auth", "select": // a new connection's set-up
			return next(ctx, cmds)
		}
		g.mu.Lock()
		hold := !g.first
		g.first = true
		var names []string
		for _, cmd := range cmds {
			names = append(names, fmt.Sprint(cmd.Args()...))
		}
		g.pipeline = append(g.pipeline, names)
		g.mu.Unlock()
		if hold {
			<-g.open
		}
		return next(ctx, cmds)
	}
}

func (g *pipelineGate) pipelines() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]string(nil), g.pipeline...)
}

// coalescerClient returns a client of the test Redis of its own, closed when t ends.
func coalescerClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb, err := testenv.RedisClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// The calls that arrive while a pipeline is in flight go together in the next one, each call's
// commands in its order, and each caller gets its own results.
func TestCoalescerSharesOnePipelineAmongWaitingCalls(t *testing.T) {
	ctx := context.Background()
	rdb := coalescerClient(t)
	gate := newPipelineGate()
	rdb.AddHook(gate)
	reg, m := metricstest.NewRegistry(metricstest.Pools{})
	co := newCoalescer(rdb, 1, m)
	defer co.close()

	prefix := testPrefix + "{coalesce-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "}:"
	key := func(i int) string { return prefix + strconv.Itoa(i) }
	const callers = 20

	// The first call holds the only sender until the others are queued behind it.
	firstDone := make(chan error, 1)
	go func() { firstDone <- co.do(ctx, redis.NewStatusCmd(ctx, "set", key(-1), "first")) }()
	waitFor(t, "the first pipeline", func() bool { return len(gate.pipelines()) == 1 })

	var wg sync.WaitGroup
	errs := make([]error, callers)
	gets := make([]*redis.StringCmd, callers)
	for i := range callers {
		set := redis.NewStatusCmd(ctx, "set", key(i), "value-"+strconv.Itoa(i))
		gets[i] = redis.NewStringCmd(ctx, "get", key(i))
		wg.Go(func() { errs[i] = co.do(ctx, set, gets[i]) })
	}
	waitFor(t, "the callers to queue", func() bool { return co.calls.Len() == callers })
	close(gate.open)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatalf("first call: %v", err)
	}

	pipelines := gate.pipelines()
	if len(pipelines) != 2 || len(pipelines[1]) != 2*callers {
		t.Fatalf("pipelines %v: want the first call alone, then one pipeline of all %d waiting calls", pipelines, callers)
	}
	samples, err := metricstest.Samples(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n, sum := samples["attrcache_redis_pipeline_callers_count"], samples["attrcache_redis_pipeline_callers_sum"]; n != 2 || sum != callers+1 {
		t.Errorf("attrcache_redis_pipeline_callers: %v pipelines of %v callers, want 2 of %d", n, sum, callers+1)
	}
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got, want := gets[i].Val(), "value-"+strconv.Itoa(i); got != want {
			t.Errorf("caller %d read %q, want %q: its GET must follow its own SET", i, got, want)
		}
	}
	if err := rdb.Del(ctx, key(-1)).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range callers {
		rdb.Del(ctx, key(i))
	}
}

// A caller whose context ends while it waits gets the context's error; the calls keep working,
// and after close a call sends its commands itself.
func TestCoalescerCancelAndClose(t *testing.T) {
	rdb := coalescerClient(t)
	gate := newPipelineGate()
	rdb.AddHook(gate)
	co := newCoalescer(rdb, 1, nil)

	ctx := context.Background()
	go co.do(ctx, redis.NewStatusCmd(ctx, "ping")) //nolint:errcheck // only holds the sender
	waitFor(t, "the first pipeline", func() bool { return len(gate.pipelines()) == 1 })

	cancelled, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() { result <- co.do(cancelled, redis.NewStatusCmd(cancelled, "ping")) }()
	waitFor(t, "the call to queue", func() bool { return co.calls.Len() == 1 })
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: got %v, want context.Canceled", err)
	}
	close(gate.open)

	co.close()
	ping := redis.NewStatusCmd(ctx, "ping")
	if err := co.do(ctx, ping); err != nil || ping.Val() != "PONG" {
		t.Fatalf("call after close: %q, %v; want PONG", ping.Val(), err)
	}
}

// However many callers queue at once, every call is sent and each caller gets its own results.
func TestCoalescerSendsEveryCallUnderContention(t *testing.T) {
	// A call left behind would wait forever: the bound turns that into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := coalescerClient(t)
	reg, m := metricstest.NewRegistry(metricstest.Pools{})
	co := newCoalescer(rdb, 2, m)
	defer co.close()

	prefix := testPrefix + "{contention-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "}:"
	const callers, calls = 64, 100
	var wg sync.WaitGroup
	failures := make(chan string, callers)
	for c := range callers {
		wg.Go(func() {
			key := prefix + strconv.Itoa(c)
			defer rdb.Del(context.Background(), key)
			for i := range calls {
				want := strconv.Itoa(i)
				set := redis.NewStatusCmd(ctx, "set", key, want)
				get := redis.NewStringCmd(ctx, "get", key)
				if err := co.do(ctx, set, get); err != nil || get.Val() != want {
					failures <- fmt.Sprintf("caller %d, call %d: read %q, %v; want %q", c, i, get.Val(), err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	samples, err := metricstest.Samples(reg)
	if err != nil {
		t.Fatal(err)
	}
	if sum := samples["attrcache_redis_pipeline_callers_sum"]; sum != callers*calls {
		t.Errorf("the pipelines carried %v calls, want %d", sum, callers*calls)
	}
}
