package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// A Target carries out operations against the system under test. Do is called from many
// goroutines at once; it returns "" when the operation succeeded, else a short code that
// classifies the failure (such as "E005001 (HTTP 403)"), which must not hold secrets.
type Target interface {
	Do(ctx context.Context, op Op, rng *rand.Rand) (errorCode string)
}

// Options says how to drive the load.
type Options struct {
	Mix Mix
	// Concurrency is the number of workers. Closed loop, each sends its next request as soon as
	// the previous one is answered; open loop, it bounds the requests in flight (requests due
	// while all are busy wait, and their wait counts in their latency).
	Concurrency int
	// Rate, when positive, selects the open loop: requests are scheduled every 1/Rate seconds.
	Rate float64
	// Duration and Requests bound the run; at least one must be positive. Once either is
	// reached no request is started; those in flight are waited for.
	Duration time.Duration
	Requests int64
	// Progress, when not nil, receives a progress line (requests/s, errors) every second;
	// ProgressTTY rewrites one line in place instead of adding lines.
	Progress    io.Writer
	ProgressTTY bool
	// Seed seeds the workers' random choices (of operations and of what they touch).
	Seed uint64

	clock clock // the real clock when nil; tests use a virtual one
}

// Validate reports what makes the options unusable: an empty mix, no worker, a negative rate,
// or no bound on the run. Run calls it first.
func (o *Options) Validate() error {
	switch {
	case o.Mix.total == 0:
		return errors.New("the mix chooses no operation")
	case o.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want at least 1", o.Concurrency)
	case o.Rate < 0:
		return fmt.Errorf("rate %g: want a positive number of requests per second, or 0 for the closed loop", o.Rate)
	case o.Duration <= 0 && o.Requests <= 0:
		return errors.New("the run is unbounded: give a duration or a number of requests")
	case o.Duration < 0 || o.Requests < 0:
		return errors.New("the duration and the number of requests cannot be negative")
	}
	return nil
}

// clock is the time source of a run.
type clock interface {
	now() time.Time
	// sleepUntil returns once t has come, or early with ctx's error when ctx ends.
	sleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

// sleepUntil waits on a timer until t, or until ctx ends. Go's timers may fire up to a millisecond
// late on Linux (golang/go#44343), so above about 1,000 requests/s the open loop sends in small
// bursts; each request's latency counts from its scheduled time, so that lateness is measured.
func (realClock) sleepUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run drives target with the load opts describe and returns the report. It stops early, with
// the report so far and ctx's error, when ctx ends.
func Run(ctx context.Context, target Target, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &runner{target: target, opts: opts, clock: opts.clock}
	if r.clock == nil {
		r.clock = realClock{}
	}
	r.recorders = make([]recorder, opts.Concurrency)
	r.start = r.clock.now()
	if opts.Duration > 0 {
		r.deadline = r.start.Add(opts.Duration)
	}

	stopProgress := r.startProgress()
	if opts.Rate > 0 {
		r.openLoop(ctx)
	} else {
		r.closedLoop(ctx)
	}
	elapsed := r.clock.now().Sub(r.start)
	stopProgress()

	report := newReport(opts, elapsed, r.recorders)
	return report, ctx.Err()
}

// runner is the state of one Run.
type runner struct {
	target    Target
	opts      Options
	clock     clock
	start     time.Time
	deadline  time.Time // zero without a duration
	started   atomic.Int64
	completed atomic.Int64
	failed    atomic.Int64
	recorders []recorder // one per worker, merged at the end
}

// closedLoop runs the workers back to back until a bound is reached.
func (r *runner) closedLoop(ctx context.Context) {
	r.runWorkers(func(worker int, rng *rand.Rand) {
		for ctx.Err() == nil && r.clock.now().Before(r.deadlineOrNever()) && r.claim() {
			sent := r.clock.now()
			r.do(ctx, worker, rng, sent)
		}
	})
}

// openLoop schedules requests at fixed intervals from the start and hands them to the workers;
// a request's latency runs from its scheduled time, however long it waited for a free worker.
// Every request scheduled before the deadline is sent, even when the backlog of an overloaded
// target makes the run last longer, so that the slowest answers are not left out.
func (r *runner) openLoop(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / r.opts.Rate)
	end := r.deadlineOrNever()
	due := make(chan time.Time, r.opts.Concurrency)
	go func() {
		defer close(due)
		for i := int64(0); r.claim(); i++ {
			at := r.start.Add(time.Duration(i) * interval)
			if !at.Before(end) {
				return
			}
			if r.clock.sleepUntil(ctx, at) != nil {
				return
			}
			select {
			case due <- at:
			case <-ctx.Done():
				return
			}
		}
	}()
	r.runWorkers(func(worker int, rng *rand.Rand) {
		for scheduled := range due {
			r.do(ctx, worker, rng, scheduled)
		}
	})
}

// claim reserves one more request and reports whether the request bound allows it.
func (r *runner) claim() bool {
	return r.opts.Requests <= 0 || r.started.Add(1) <= r.opts.Requests
}

// deadlineOrNever returns the end of the run's duration, or a time that never comes.
func (r *runner) deadlineOrNever() time.Time {
	if r.deadline.IsZero() {
		return time.Unix(1<<62, 0)
	}
	return r.deadline
}

// runWorkers runs work in Concurrency goroutines, each with its own random source, and waits
// for them.
func (r *runner) runWorkers(work func(worker int, rng *rand.Rand)) {
	var wg sync.WaitGroup
	for worker := range r.opts.Concurrency {
		rng := rand.New(rand.NewPCG(r.opts.Seed, uint64(worker)))
		wg.Go(func() { work(worker, rng) })
	}
	wg.Wait()
}

// do carries out one operation of the mix and records its latency from since.
func (r *runner) do(ctx context.Context, worker int, rng *rand.Rand, since time.Time) {
	op := r.opts.Mix.pick(rng)
	code := r.target.Do(ctx, op, rng)
	if ctx.Err() != nil {
		return // cut short by the caller, not an answer of the target
	}
	r.recorders[worker].record(op, r.clock.now().Sub(since), code)
	r.completed.Add(1)
	if code != "" {
		r.failed.Add(1)
	}
}

// recorder holds one worker's measurements.
type recorder struct {
	latency [numOps]Histogram
	errors  [numOps]map[string]int64
}

func (rec *recorder) record(op Op, latency time.Duration, errorCode string) {
	rec.latency[op].Record(latency)
	if errorCode == "" {
		return
	}
	if rec.errors[op] == nil {
		rec.errors[op] = make(map[string]int64)
	}
	rec.errors[op][errorCode]++
}

// startProgress writes a progress line every second to opts.Progress until the returned
// function is called; that function ends the line on a terminal.
func (r *runner) startProgress() (stop func()) {
	if r.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var wrote bool
	wg.Go(func() {
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		last, lastAt := int64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				completed := r.completed.Load()
				rate := float64(completed-last) / now.Sub(lastAt).Seconds()
				last, lastAt = completed, now
				r.writeProgress(fmt.Sprintf("%5.0fs  %9.0f req/s  %10d done  %7d errors",
					now.Sub(r.start).Seconds(), rate, completed, r.failed.Load()))
				wrote = true // read only after wg.Wait
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if r.opts.ProgressTTY && wrote {
			fmt.Fprint(r.opts.Progress, "\n")
		}
	}
}

func (r *runner) writeProgress(line string) {
	if r.opts.ProgressTTY {
		fmt.Fprint(r.opts.Progress, "\r\033[K"+line)
		return
	}
	fmt.Fprintln(r.opts.Progress, line)
}
