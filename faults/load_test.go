package faults_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The shape of the load: workers goroutines, each writing and reading keysPerWorker attributes
// of its own, so that the writes to one attribute are sequential and the last acknowledged one
// is known. Workers share users, so one user's attributes see concurrent writes.
const (
	workers       = 8
	usersPerLoad  = 4
	keysPerWorker = 4
)

// progressBound bounds how long a scenario waits for the load to make the progress it asks for.
const progressBound = 40 * time.Second

// keyLedger is what one worker knows of one attribute it owns.
type keyLedger struct {
	name     string
	acked    string   // the value of the last acknowledged write
	hasAcked bool     // whether any write was acknowledged
	inDoubt  []string // values of writes refused since the last acknowledged one
}

// readMayReturn reports whether a read may find got: the last acknowledged value, or a value
// whose write failed since then (the outcome of a write cut during its commit is unknown), or
// nothing when nothing was acknowledged yet.
func (k *keyLedger) readMayReturn(got attrValue) bool {
	if !got.Found {
		return !k.hasAcked
	}
	return (k.hasAcked && got.Value == k.acked) || slices.Contains(k.inDoubt, got.Value)
}

// tally counts the outcomes of a load.
type tally struct {
	writesAcked       int
	writesUnavailable int
	readsOK           int
	readsUnavailable  int
	// problems describes every response that broke a promise: an unexpected status, or a read
	// that found what no write of its attribute could have left.
	problems []string
}

func (t *tally) add(o tally) {
	t.writesAcked += o.writesAcked
	t.writesUnavailable += o.writesUnavailable
	t.readsOK += o.readsOK
	t.readsUnavailable += o.readsUnavailable
	t.problems = append(t.problems, o.problems...)
}

func (t tally) requests() int {
	return t.writesAcked + t.writesUnavailable + t.readsOK + t.readsUnavailable + len(t.problems)
}

func (t tally) String() string {
	return fmt.Sprintf("%d requests: %d writes acknowledged, %d refused with 503; %d reads ok, %d refused with 503; %d broken promises",
		t.requests(), t.writesAcked, t.writesUnavailable, t.readsOK, t.readsUnavailable, len(t.problems))
}

// worker runs one goroutine's share of the load.
type worker struct {
	id    int
	owner user
	keys  []*keyLedger
	tally tally
}

// load is a running mixed read/write load on a stack.
type load struct {
	stack   *stack
	workers []*worker
	// mayBeUnavailable says whether 503 E008004 is an allowed answer (a MySQL fault); when
	// false, any answer but ok breaks a promise.
	mayBeUnavailable bool
	finished         atomic.Int64 // requests answered so far
	stopping         atomic.Bool  // set by stop: each worker ends after its current request
	wg               sync.WaitGroup
}

// startLoad creates the load's users and starts its workers; stop ends it.
func startLoad(t *testing.T, s *stack, mayBeUnavailable bool) *load {
	t.Helper()
	users := s.NewUsers(t, t.Name(), usersPerLoad)
	l := &load{stack: s, mayBeUnavailable: mayBeUnavailable}
	for id := range workers {
		w := &worker{id: id, owner: users[id%len(users)]}
		for k := range keysPerWorker {
			w.keys = append(w.keys, &keyLedger{name: fmt.Sprintf("w%d-k%d", id, k)})
		}
		l.workers = append(l.workers, w)
		l.wg.Go(func() { l.run(w) })
	}
	t.Cleanup(l.stop) // a test that failed early still stops its load
	return l
}

// run alternates writes and reads over w's attributes until the load stops. A request is never
// abandoned: each one ends with its answer (or requestTimeout), so that no write is still in
// flight when the checks read MySQL.
func (l *load) run(w *worker) {
	ctx := context.Background()
	for i := 0; !l.stopping.Load(); i++ {
		key := w.keys[(i/2)%len(w.keys)]
		if i%2 == 0 {
			l.write(ctx, w, key, fmt.Sprintf("w%d-%d", w.id, i))
		} else {
			l.read(ctx, w, key)
		}
		l.finished.Add(1)
	}
}

func (l *load) write(ctx context.Context, w *worker, key *keyLedger, value string) {
	res := l.stack.SetAttr(ctx, w.owner, key.name, value)
	switch {
	case res.OK():
		w.tally.writesAcked++
		key.acked, key.hasAcked, key.inDoubt = value, true, nil
	case res.Unavailable() && l.mayBeUnavailable:
		w.tally.writesUnavailable++
		key.inDoubt = append(key.inDoubt, value)
	default:
		key.inDoubt = append(key.inDoubt, value)
		w.tally.problems = append(w.tally.problems, fmt.Sprintf("set %s: %s", key.name, res))
	}
}

func (l *load) read(ctx context.Context, w *worker, key *keyLedger) {
	got, res := l.stack.GetAttr(ctx, w.owner, key.name)
	switch {
	case res.OK() && key.readMayReturn(got):
		w.tally.readsOK++
	case res.OK():
		w.tally.problems = append(w.tally.problems, fmt.Sprintf("get %s: stale read: found=%v value %q; last acknowledged %q (any: %v), in doubt %q",
			key.name, got.Found, got.Value, key.acked, key.hasAcked, key.inDoubt))
	case res.Unavailable() && l.mayBeUnavailable:
		w.tally.readsUnavailable++
	default:
		w.tally.problems = append(w.tally.problems, fmt.Sprintf("get %s: %s", key.name, res))
	}
}

// awaitRequests waits until the load has answered n more requests, failing the test if it does
// not within progressBound. Scenarios hold a fault for a number of requests rather than a time,
// so that every fault meets load however busy the machine is.
func (l *load) awaitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.finished.Load() + n
	deadline := time.Now().Add(progressBound)
	for l.finished.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the load answered %d of %d requests within %v", n-(target-l.finished.Load()), n, progressBound)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// stop ends the load and waits for its workers; it is safe to call more than once.
func (l *load) stop() {
	l.stopping.Store(true)
	l.wg.Wait()
}

// result stops the load and returns its tally.
func (l *load) result() tally {
	l.stop()
	var total tally
	for _, w := range l.workers {
		total.add(w.tally)
	}
	return total
}
