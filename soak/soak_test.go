//go:build soak

package soak_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache/internal/consistency"
	"github.com/attrcache/attrcache/internal/stacktest"
)

const (
	app = "CRM"
	// workers is how many clients send requests at once, each as its own user.
	workers = 16
	// permanentNames and expiringNames are how many attributes of each kind a worker writes:
	// few permanent ones, rewritten often, and enough expiring ones that most expire before
	// they are written again, for the reads to see expiry and the purger to delete rows.
	permanentNames = 8
	expiringNames  = 256
	// sampleEvery is the interval between two samples of memory and goroutines.
	sampleEvery = 5 * time.Second
	// purgeInterval makes the purger run many times in a run.
	purgeInterval = time.Second
	// settleBound bounds each wait after the load: for the expiring attributes to expire (5 s at
	// most), for the purger to delete them, and for Redis to agree with MySQL.
	settleBound = 30 * time.Second
	// requestTimeout bounds one request; one that hits it counts as failed.
	requestTimeout = stacktest.RequestTimeout
	// The flatness tolerances: the average of the last third of the samples may exceed that of
	// the first third by this fraction (memory) or this count (goroutines).
	memoryTolerance     = 0.25
	goroutinesTolerance = 10
)

// soakDuration returns the length of the load: SOAK_SECONDS, 120 by default.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	seconds := 120
	if s := os.Getenv("SOAK_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("SOAK_SECONDS=%q, want a positive number of seconds", s)
		}
		seconds = n
	}
	return time.Duration(seconds) * time.Second
}

func TestSoak(t *testing.T) {
	duration := soakDuration(t)
	s := newStack(t)
	users := s.NewUsers(t, "soak", workers)

	ctx, stopLoad := context.WithTimeout(context.Background(), duration)
	defer stopLoad()
	samples := make(chan []sample, 1)
	go func() { samples <- sampleUntil(ctx) }()
	ws := make([]*worker, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		ws[i] = newWorker(u, uint64(i))
		wg.Go(func() { ws[i].run(ctx, s) })
	}
	wg.Wait()
	taken := <-samples

	var total tally
	for _, w := range ws {
		total.add(w.tally)
	}
	t.Logf("load: %v, %d workers, %s; %d purger runs deleted %d expired attributes",
		duration, workers, &total, s.purges.Load(), s.purged.Load())
	if total.failed > 0 {
		t.Errorf("%d of %d requests failed, want none", total.failed, total.requests())
	}
	if s.purges.Load() < 2 || s.purged.Load() == 0 {
		t.Errorf("the purger ran %d times and deleted %d attributes, want at least 2 runs that deleted some", s.purges.Load(), s.purged.Load())
	}

	pollUntil(t, "every expiring attribute to expire", "expiration_time > UTC_TIMESTAMP(6) AND expiration_time < '9999-01-01'")
	pollUntil(t, "the purger to delete every expired attribute", "expiration_time <= UTC_TIMESTAMP(6)")
	checkReads(t, s, ws)
	checkCacheMatchesMySQL(t)
	checkFlat(t, taken)
}

// The harness's names, as the soak run uses them.
type (
	user      = stacktest.User
	attrValue = stacktest.AttrValue
)

// stack is one instance with its purger.
type stack struct {
	*stacktest.Stack
	purges atomic.Int64 // purger runs
	purged atomic.Int64 // attributes the purger deleted
}

// newStack builds the stack and starts its purger; t.Cleanup takes both down.
func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{Stack: env.NewStack(t, stacktest.Options{})}
	purgerCtx, stopPurger := context.WithCancel(context.Background())
	var purger sync.WaitGroup
	purger.Go(func() {
		s.DB.RunPurger(purgerCtx, purgeInterval, 1000, func(attrs, _ int, err error) {
			if err != nil {
				t.Errorf("purging: %v", err)
			}
			s.purges.Add(1)
			s.purged.Add(int64(attrs))
		})
	})
	t.Cleanup(func() {
		stopPurger()
		purger.Wait()
	})
	return s
}

// tally counts a worker's requests.
type tally struct{ sets, expiringSets, gets, deletes, failed int }

func (t *tally) add(o tally) {
	t.sets += o.sets
	t.expiringSets += o.expiringSets
	t.gets += o.gets
	t.deletes += o.deletes
	t.failed += o.failed
}

func (t *tally) requests() int { return t.sets + t.gets + t.deletes }

func (t *tally) String() string {
	return fmt.Sprintf("%d requests: %d sets (%d expiring in 1-5 s), %d gets, %d deletes, %d failed",
		t.requests(), t.sets, t.expiringSets, t.gets, t.deletes, t.failed)
}

// worker is one client of the load: a user who writes, reads and deletes their attributes
// "exp-<i>", always set to expire in 1 to 5 s, and "perm-<i>", set without expiration. It
// alone writes them, so its ledger knows what each permanent attribute must hold at the end.
type worker struct {
	owner user
	rng   *rand.Rand
	// ledger is the last acknowledged state of each permanent attribute; one whose last write
	// failed is missing from it, its state unknown.
	ledger map[string]attrValue
	tally  tally
}

func newWorker(owner user, seed uint64) *worker {
	w := &worker{owner: owner, rng: rand.New(rand.NewPCG(seed, seed)), ledger: make(map[string]attrValue)}
	for i := range permanentNames {
		w.ledger[permName(i)] = attrValue{}
	}
	return w
}

func permName(i int) string { return "perm-" + strconv.Itoa(i) }

func expName(i int) string { return "exp-" + strconv.Itoa(i) }

// names returns the names of every attribute w writes.
func (w *worker) names() []string {
	names := make([]string, 0, permanentNames+expiringNames)
	for i := range permanentNames {
		names = append(names, permName(i))
	}
	for i := range expiringNames {
		names = append(names, expName(i))
	}
	return names
}

// run sends requests until ctx ends: half sets, a third reads, the rest deletes.
func (w *worker) run(ctx context.Context, s *stack) {
	for ctx.Err() == nil {
		expiring := w.rng.IntN(2) == 0
		name := permName(w.rng.IntN(permanentNames))
		if expiring {
			name = expName(w.rng.IntN(expiringNames))
		}
		reqCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
		switch roll := w.rng.IntN(6); {
		case roll < 3:
			value := strconv.FormatUint(w.rng.Uint64(), 36)
			extra := map[string]any{"value": value}
			if expiring {
				extra["expiration"] = 1 + w.rng.IntN(5)
				w.tally.expiringSets++
			}
			w.tally.sets++
			w.record(expiring, name, s.Attr(reqCtx, http.MethodPut, w.owner, name, extra), attrValue{Found: true, Value: value})
		case roll < 5:
			w.tally.gets++
			got, res := s.GetAttr(reqCtx, w.owner, name)
			if !res.OK() {
				w.tally.failed++
			} else if want, known := w.ledger[name]; !expiring && known && got != want {
				w.tally.failed++ // a read that disagrees with the last acknowledged write
			}
		default:
			w.tally.deletes++
			w.record(expiring, name, s.Attr(reqCtx, http.MethodDelete, w.owner, name, nil), attrValue{})
		}
		cancel()
	}
}

// record counts a failed write, and keeps in the ledger what a write of a permanent attribute
// left: want when it was acknowledged, an unknown state when it failed. Deleting an attribute
// that does not exist is acknowledged like any other deletion.
func (w *worker) record(expiring bool, name string, res *stacktest.Response, want attrValue) {
	switch {
	case res.OK():
		if !expiring {
			w.ledger[name] = want
		}
	default:
		w.tally.failed++
		delete(w.ledger, name)
	}
}

// pollUntil waits, within settleBound, until no attribute row matches where.
func pollUntil(t *testing.T, what, where string) {
	t.Helper()
	deadline := time.Now().Add(settleBound)
	for {
		n, err := countRows(context.Background(), where)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v waiting for %s, %d rows remain", settleBound, what, n)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// checkReads fails the test unless a read through the API of every attribute of the load finds
// what MySQL holds, and MySQL holds each permanent attribute's last acknowledged state.
func checkReads(t *testing.T, s *stack, ws []*worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleBound)
	defer cancel()
	stored, err := mysqlAttrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, w := range ws {
		for _, name := range w.names() {
			got, res := s.GetAttr(ctx, w.owner, name)
			if !res.OK() {
				t.Errorf("reading %s of %s: %s, want ok", name, w.owner.ID, res)
				continue
			}
			row, inMySQL := stored[attrKey{UserID: w.owner.ID, Name: name}]
			want := attrValue{Found: inMySQL}
			if inMySQL {
				if err := json.Unmarshal([]byte(row.Value), &want.Value); err != nil {
					t.Errorf("%s of %s in MySQL: %d bytes that are not a JSON string: %v", name, w.owner.ID, len(row.Value), err)
				}
			}
			if got != want {
				t.Errorf("reading %s of %s: got found=%v %q, want what MySQL holds: found=%v %q", name, w.owner.ID, got.Found, got.Value, want.Found, want.Value)
			}
			if acked, known := w.ledger[name]; known && want != acked {
				t.Errorf("%s of %s in MySQL: found=%v %q, want the last acknowledged found=%v %q", name, w.owner.ID, want.Found, want.Value, acked.Found, acked.Value)
			}
			checked++
		}
	}
	t.Logf("consistency: %d attributes read through the API equal MySQL and the last acknowledged writes", checked)
}

// checkCacheMatchesMySQL fails the test unless every attribute key of Redis agrees with MySQL,
// repeating the check within settleBound while the cache's background retries catch up.
func checkCacheMatchesMySQL(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), settleBound+10*time.Second)
	defer cancel()
	deadline := time.Now().Add(settleBound)
	for {
		diffs, cachedKeys, err := consistency.Differences(ctx, env.MySQL, env.Redis, env.Prefix)
		if err != nil {
			t.Fatalf("comparing Redis with MySQL: %v", err)
		}
		if len(diffs) == 0 {
			t.Logf("consistency: %d Redis attribute keys equal MySQL", cachedKeys)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d Redis attribute keys differ from MySQL:\n%s", settleBound, len(diffs), strings.Join(diffs, "\n"))
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// sample is one measurement of the process.
type sample struct {
	heapInUse  uint64 // bytes, after a garbage collection
	rss        uint64 // bytes
	goroutines int
}

// sampleUntil measures the process every sampleEvery until ctx ends and returns the samples.
func sampleUntil(ctx context.Context) []sample {
	ticker := time.NewTicker(sampleEvery)
	defer ticker.Stop()
	var samples []sample
	for {
		select {
		case <-ctx.Done():
			return samples
		case <-ticker.C:
			samples = append(samples, measure())
		}
	}
}

func measure() sample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{heapInUse: m.HeapInuse, rss: residentSetSize(), goroutines: runtime.NumGoroutine()}
}

// residentSetSize returns the process's resident set size from /proc, or 0 where there is none.
func residentSetSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmRSS:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// checkFlat reports the averages of the first and last thirds of the samples and fails the test
// unless memory and goroutines stayed within the tolerances.
func checkFlat(t *testing.T, samples []sample) {
	t.Helper()
	if len(samples) < 3 {
		t.Fatalf("%d samples, want at least 3 (a longer SOAK_SECONDS)", len(samples))
	}
	third := len(samples) / 3
	first, last := average(samples[:third]), average(samples[len(samples)-third:])
	const mib = 1 << 20
	t.Logf("memory and goroutines, %d samples every %v; first third vs last third: heap in use %.1f vs %.1f MiB, RSS %.1f vs %.1f MiB, goroutines %.0f vs %.0f",
		len(samples), sampleEvery, first.heapInUse/mib, last.heapInUse/mib, first.rss/mib, last.rss/mib, first.goroutines, last.goroutines)
	var problems []error
	for _, m := range []struct {
		what        string
		first, last float64
	}{{"heap in use", first.heapInUse, last.heapInUse}, {"RSS", first.rss, last.rss}} {
		if m.last > m.first*(1+memoryTolerance) {
			problems = append(problems, fmt.Errorf("%s grew from %.1f to %.1f MiB, more than %.0f%%", m.what, m.first/mib, m.last/mib, memoryTolerance*100))
		}
	}
	if last.goroutines > first.goroutines+goroutinesTolerance {
		problems = append(problems, fmt.Errorf("goroutines grew from %.0f to %.0f, more than %d", first.goroutines, last.goroutines, goroutinesTolerance))
	}
	if err := errors.Join(problems...); err != nil {
		t.Errorf("not flat: %v", err)
		return
	}
	t.Logf("flat: memory within +%.0f%%, goroutines within +%d", memoryTolerance*100, goroutinesTolerance)
}

// averages is the mean of samples, field by field.
type averages struct{ heapInUse, rss, goroutines float64 }

func average(samples []sample) averages {
	var a averages
	for _, s := range samples {
		a.heapInUse += float64(s.heapInUse)
		a.rss += float64(s.rss)
		a.goroutines += float64(s.goroutines)
	}
	n := float64(len(samples))
	return averages{a.heapInUse / n, a.rss / n, a.goroutines / n}
}
