package faults_test

import (
	"strings"
	"testing"
	"time"
)

// Load held around each fault, counted in answered requests (all workers together).
const (
	warmUpRequests   = 100 // before the first fault, to fill the cache
	faultRequests    = 400 // during a fault that leaves requests fast
	slowRequests     = 16  // during a fault that costs each request a Redis timeout
	recoveryRequests = 200 // after the last fault
	flaps            = 5   // down/up cycles, or cuts, of the repeated faults
)

// redisSlowerThanTimeout delays each chunk of Redis traffic past the client's 1 s read timeout.
const redisSlowerThanTimeout = 1500 * time.Millisecond

// scenario is one fault, injected while a load runs.
type scenario struct {
	name string
	// mysqlFault says whether the fault is MySQL's, where a request may fail with 503 E008004;
	// when Redis fails alone, every request must succeed.
	mysqlFault bool
	// inject breaks and heals a backend while l runs, and returns how many faults it injected.
	inject func(t *testing.T, s *stack, l *load) int
}

func TestFaults(t *testing.T) {
	scenarios := []scenario{
		{name: "redis down", inject: func(t *testing.T, s *stack, l *load) int {
			s.redisProxy.Down()
			s.WaitReady(t, false)
			l.awaitRequests(t, faultRequests)
			s.redisProxy.Up()
			return 1
		}},
		{name: "redis slow within its timeout", inject: func(t *testing.T, s *stack, l *load) int {
			s.redisProxy.Slow(50 * time.Millisecond)
			s.WaitReady(t, true) // slow, but answering within the timeout
			l.awaitRequests(t, faultRequests/4)
			s.redisProxy.Slow(0)
			return 1
		}},
		{name: "redis slower than its timeout", inject: func(t *testing.T, s *stack, l *load) int {
			s.redisProxy.Slow(redisSlowerThanTimeout)
			s.WaitReady(t, false)
			l.awaitRequests(t, slowRequests)
			s.redisProxy.Slow(0)
			return 1
		}},
		{name: "redis flapping", inject: func(t *testing.T, s *stack, l *load) int {
			for range flaps {
				s.redisProxy.Down()
				s.WaitReady(t, false)
				l.awaitRequests(t, faultRequests/flaps)
				s.redisProxy.Up()
				s.WaitReady(t, true)
				l.awaitRequests(t, faultRequests/flaps)
			}
			return flaps
		}},
		{name: "redis connections cut", inject: func(t *testing.T, s *stack, l *load) int {
			return cutRepeatedly(t, s.redisProxy.CutAll, l)
		}},
		{name: "mysql down", mysqlFault: true, inject: func(t *testing.T, s *stack, l *load) int {
			s.mysqlProxy.Down()
			s.WaitReady(t, false)
			l.awaitRequests(t, faultRequests)
			s.mysqlProxy.Up()
			return 1
		}},
		{name: "mysql connections cut", mysqlFault: true, inject: func(t *testing.T, s *stack, l *load) int {
			return cutRepeatedly(t, s.mysqlProxy.CutAll, l)
		}},
	}
	for _, sc := range scenarios {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			runScenario(t, sc)
		})
	}
}

// cutRepeatedly cuts a backend's connections flaps times, with load between the cuts.
func cutRepeatedly(t *testing.T, cut func(), l *load) int {
	t.Helper()
	for range flaps {
		cut()
		l.awaitRequests(t, faultRequests/flaps)
	}
	return flaps
}

// runScenario runs sc on a fresh stack under load, lets the stack recover, and checks that no
// promise was broken: every answer was ok (or 503 E008004 for a MySQL fault), no read found a
// value its attribute could not hold, MySQL holds every acknowledged write, reads after recovery
// find what MySQL holds, and Redis holds nothing MySQL lacks.
func runScenario(t *testing.T, sc scenario) {
	t.Helper()
	s := newStack(t)
	l := startLoad(t, s, sc.mysqlFault)
	l.awaitRequests(t, warmUpRequests)

	faults := sc.inject(t, s, l)
	s.WaitReady(t, true)
	l.awaitRequests(t, recoveryRequests)
	total := l.result()

	checkReadsMatchMySQL(t, l)
	inDoubtCommitted := checkLedger(t, l)
	checkCacheMatchesMySQL(t)
	if n := len(total.problems); n > 0 {
		t.Errorf("%d answers broke a promise; the first:\n%s", n, strings.Join(total.problems[:min(n, 20)], "\n"))
	}
	t.Logf("%s, %d faults injected; connections refused while down: redis %d, mysql %d; writes whose 503 hid a commit: %d",
		total, faults, s.redisProxy.Refused(), s.mysqlProxy.Refused(), inDoubtCommitted)
}
