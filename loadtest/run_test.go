package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// virtualClock is a clock that moves only when told: sleeping until a time jumps to it, and
// a target may advance it to stand for the time it takes.
type virtualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newVirtualClock() *virtualClock { return &virtualClock{t: time.Unix(1_000_000, 0)} }

func (c *virtualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *virtualClock) sleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
	return ctx.Err()
}

func (c *virtualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stallingTarget answers at once, except its first call, which takes stall of virtual time. It
// records when each call started.
type stallingTarget struct {
	clock  *virtualClock
	stall  time.Duration
	mu     sync.Mutex
	starts []time.Time
	fail   string // the code every call returns
}

func (s *stallingTarget) Do(_ context.Context, _ Op, _ *rand.Rand) string {
	s.mu.Lock()
	first := len(s.starts) == 0
	s.starts = append(s.starts, s.clock.now())
	s.mu.Unlock()
	if first {
		s.clock.advance(s.stall)
	}
	return s.fail
}

func mustMix(t *testing.T, s string) Mix {
	t.Helper()
	m, err := ParseMix(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOpenLoopCountsFromTheScheduledTime stalls the first request for 100 ms with room for one
// request in flight while 20 are due, one every millisecond: the 19 that wait behind it must
// count their wait, as a client sending at a fixed rate would see it. The closed loop, which
// sends each request only when the previous is answered, sees only the stall itself.
func TestOpenLoopCountsFromTheScheduledTime(t *testing.T) {
	const stall = 100 * time.Millisecond
	tests := []struct {
		name    string
		rate    float64
		wantP50 func(time.Duration) bool
		want    string
	}{
		{"open loop", 1000, func(d time.Duration) bool { return d >= stall-20*time.Millisecond }, "at least 80ms"},
		{"closed loop", 0, func(d time.Duration) bool { return d == 0 }, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newVirtualClock()
			target := &stallingTarget{clock: clock, stall: stall}
			report, err := Run(t.Context(), target, Options{
				Mix: mustMix(t, "get=1"), Concurrency: 1, Rate: tt.rate, Requests: 20, clock: clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			if report.Total.Count != 20 {
				t.Fatalf("count %d, want 20", report.Total.Count)
			}
			if got := time.Duration(report.Total.Latency.P50 * float64(time.Millisecond)); !tt.wantP50(got) {
				t.Errorf("p50 = %v, want %s", got, tt.want)
			}
			if got := time.Duration(report.Total.Latency.Max * float64(time.Millisecond)); got < stall {
				t.Errorf("max = %v, want at least the stall, %v", got, stall)
			}
		})
	}
}

// TestOpenLoopSchedule checks that the open loop sends requests in order of their schedule,
// none before its time, and that a duration bounds the number scheduled.
func TestOpenLoopSchedule(t *testing.T) {
	clock := newVirtualClock()
	start := clock.now()
	target := &stallingTarget{clock: clock}
	report, err := Run(t.Context(), target, Options{
		Mix: mustMix(t, "get=1"), Concurrency: 1, Rate: 500, Duration: 100 * time.Millisecond, clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(target.starts), 50; got != want || report.Total.Count != uint64(want) {
		t.Fatalf("%d calls, %d reported; want %d (500/s for 100 ms)", got, report.Total.Count, want)
	}
	for i, at := range target.starts {
		if scheduled := start.Add(time.Duration(i) * 2 * time.Millisecond); at.Before(scheduled) {
			t.Errorf("call %d started at +%v, before its scheduled +%v", i, at.Sub(start), scheduled.Sub(start))
		}
		if i > 0 && at.Before(target.starts[i-1]) {
			t.Errorf("call %d started at +%v, before call %d (+%v)", i, at.Sub(start), i-1, target.starts[i-1].Sub(start))
		}
	}
}

func TestRunBounds(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		wantCount uint64
		wantErr   string
	}{
		{"closed loop stops at the request count", Options{Concurrency: 8, Requests: 137}, 137, ""},
		{"open loop stops at the request count", Options{Concurrency: 8, Rate: 1e6, Requests: 137}, 137, ""},
		{"unbounded", Options{Concurrency: 1}, 0, "unbounded"},
		{"no worker", Options{Concurrency: 0, Requests: 1}, 0, "concurrency 0"},
		{"negative rate", Options{Concurrency: 1, Rate: -1, Requests: 1}, 0, "rate -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newVirtualClock()
			tt.opts.Mix, tt.opts.clock = mustMix(t, "get=3,set=1"), clock
			report, err := Run(t.Context(), &stallingTarget{clock: clock}, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if report.Total.Count != tt.wantCount {
				t.Errorf("count %d, want %d", report.Total.Count, tt.wantCount)
			}
			var sum uint64
			for _, op := range report.Ops {
				sum += op.Count
			}
			if sum != tt.wantCount {
				t.Errorf("the operations count %d in all, want %d", sum, tt.wantCount)
			}
		})
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	target := targetFunc(func(ctx context.Context) string {
		cancel()
		<-ctx.Done()
		return "cancelled"
	})
	report, err := Run(ctx, target, Options{Mix: mustMix(t, "get=1"), Concurrency: 4, Duration: time.Hour})
	if err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if report == nil || report.Total.Errors != 0 {
		t.Errorf("report %+v, want one that does not count the cut-short requests as errors", report)
	}
}

type targetFunc func(ctx context.Context) string

func (f targetFunc) Do(ctx context.Context, _ Op, _ *rand.Rand) string { return f(ctx) }

func TestReport(t *testing.T) {
	recorders := make([]recorder, 2)
	for i := range 100 {
		rec := &recorders[i%2]
		rec.record(OpGet, time.Duration(i+1)*time.Millisecond, "")
		if i < 10 {
			rec.record(OpSet, 2*time.Millisecond, "E008004 (HTTP 503)")
		}
	}
	recorders[0].record(OpSet, 4*time.Millisecond, "timeout")
	opts := Options{Mix: mustMix(t, "get=9,set=1"), Concurrency: 2, Rate: 50}
	report := newReport(opts, 2*time.Second, recorders)

	var got struct {
		Mode       string
		Rate       float64
		Seconds    float64
		Total      OpReport
		Operations []OpReport
	}
	data, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Mode != "open" || got.Rate != 50 || got.Seconds != 2 || len(got.Operations) != 2 {
		t.Fatalf("report %s: want the open loop at 50/s over 2 s with two operations", data)
	}
	get, set := got.Operations[0], got.Operations[1]
	checks := []struct {
		what      string
		got, want any
	}{
		{"get op", get.Op, "get"},
		{"get count", get.Count, uint64(100)},
		{"get throughput", get.Throughput, 50.0},
		{"get errors", get.Errors, int64(0)},
		{"get max", get.Latency.Max, 100.0},
		{"set count", set.Count, uint64(11)},
		{"set errors", set.Errors, int64(11)},
		{"set 503s", set.ErrorsByCode["E008004 (HTTP 503)"], int64(10)},
		{"set timeouts", set.ErrorsByCode["timeout"], int64(1)},
		{"total count", got.Total.Count, uint64(111)},
		{"total errors", got.Total.Errors, int64(11)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	for _, p := range []struct {
		name      string
		got, want float64
	}{{"p50", get.Latency.P50, 50}, {"p99", get.Latency.P99, 99}} {
		if p.got < p.want || p.got > p.want*(1+maxRelativeError) {
			t.Errorf("get %s = %v ms, want %v ms within one bucket", p.name, p.got, p.want)
		}
	}

	var text bytes.Buffer
	if err := report.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"open loop, mix get=9,set=1, concurrency 2, rate 50/s", "p99.9 ms", "total", "errors by code:", "E008004 (HTTP 503)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestProgressLines(t *testing.T) {
	tests := []struct {
		name string
		tty  bool
		want string
	}{
		{"terminal rewrites one line", true, "\r\033[Kone\r\033[Ktwo"},
		{"elsewhere one line each", false, "one\ntwo\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := &runner{opts: Options{Progress: &out, ProgressTTY: tt.tty}}
			r.writeProgress("one")
			r.writeProgress("two")
			if out.String() != tt.want {
				t.Errorf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// The real clock's sleep never returns before its time, and a cancelled context ends it at once.
func TestRealClockSleepUntil(t *testing.T) {
	var c realClock
	for _, wait := range []time.Duration{0, 300 * time.Microsecond, 3 * time.Millisecond} {
		at := c.now().Add(wait)
		if err := c.sleepUntil(t.Context(), at); err != nil {
			t.Fatalf("sleep of %v: %v", wait, err)
		}
		if now := c.now(); now.Before(at) {
			t.Errorf("sleep of %v returned %v early", wait, at.Sub(now))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.sleepUntil(ctx, c.now().Add(time.Hour)); err != context.Canceled {
		t.Errorf("sleep with a cancelled context: %v, want context.Canceled", err)
	}
}
