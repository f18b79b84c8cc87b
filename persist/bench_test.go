package persist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/metrics/metricstest"
)

// BenchmarkInsertAttrsStmt measures building, without executing, the statement that upserts the
// rows of a set of one attribute and of a set_many of a hundred, half of them with an expiration
// time (which the ON DUPLICATE KEY UPDATE clause lists).
func BenchmarkInsertAttrsStmt(b *testing.B) {
	scope := attrcache.AttrScope{UserID: attrcache.NewUserID()}
	now := attrcache.Now()
	expiresAt := now.Add(time.Hour)
	for _, n := range []int{1, 100} {
		items := make([]attrcache.AttrWrite, n)
		for i := range items {
			items[i] = attrcache.AttrWrite{Name: fmt.Sprintf("attribute-%03d", i), Value: `{"id": 1}`}
			if i%2 == 0 {
				items[i].ExpiresAt = &expiresAt
			}
		}
		rows := slices.SortedFunc(slices.Values(rowsOf(scope, items, now)), compareAttrRows)
		b.Run(fmt.Sprintf("%d_rows", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				insertAttrsStmt(rows, updateExisting)
			}
		})
	}
}

// Group-commit and many-item write benchmarks: the shape of `attrcache bench` (loadtest), 64
// concurrent callers (and one, for the latency of a write) over 16 users of 100 attributes
// each, with 100-byte values.
const (
	benchUsers     = 16
	benchAttrs     = 100
	benchValueSize = 100
)

// benchCallers are the numbers of concurrent callers the write benchmarks run with.
var benchCallers = []int{1, 64}

// openBenchDB opens the test database with serve's default group commit (256 rows, 1 ms, 4
// workers), recording on reg, and stores benchUsers users, each with benchAttrs attributes. It
// returns the store, the users' scopes and the attributes' names.
func openBenchDB(b *testing.B, reg prometheus.Registerer) (*DB, []attrcache.AttrScope, []string) {
	b.Helper()
	db, err := Open(b.Context(), testDSN, testKeys, WithMetrics(metrics.New(reg)),
		WithGroupCommit(GroupCommit{MaxRows: 256, MaxWait: time.Millisecond, Workers: 4}))
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { _ = db.Close() })
	names := make([]string, benchAttrs)
	for i := range names {
		names[i] = fmt.Sprintf("bench-attr-%03d", i)
	}
	scopes := make([]attrcache.AttrScope, benchUsers)
	now := attrcache.Now()
	for i := range scopes {
		u := newUser()
		if err := db.CreateUser(b.Context(), u); err != nil {
			b.Fatalf("CreateUser: %v", err)
		}
		scopes[i] = attrcache.AttrScope{UserID: u.UserID}
		if _, err := db.SetAttrs(b.Context(), scopes[i], benchItems(names, 0, benchAttrs), now); err != nil {
			b.Fatalf("SetAttrs: %v", err)
		}
	}
	return db, scopes, names
}

// benchValue is the JSON value every benchmark write stores: a string of benchValueSize bytes.
var benchValue = `"` + strings.Repeat("v", benchValueSize-2) + `"`

// benchItems returns n writes of names, from the first-th on, wrapping around.
func benchItems(names []string, first, n int) []attrcache.AttrWrite {
	items := make([]attrcache.AttrWrite, n)
	for j := range items {
		items[j] = attrcache.AttrWrite{Name: names[(first+j)%len(names)], Value: benchValue}
	}
	return items
}

// runCallers makes b.N calls of write from callers goroutines, and reports rows/s, each call
// writing rowsPerCall rows.
func runCallers(b *testing.B, callers, rowsPerCall int, write func(ctx context.Context, rng *rand.Rand) error) {
	b.Helper()
	var calls atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for calls.Add(1) <= int64(b.N) {
				if err := write(b.Context(), rng); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*rowsPerCall)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkGroupCommitSetAttrs measures SetAttrs of one user attribute (PUT single) through
// group commit, and reports the mean size and duration of its transactions.
func BenchmarkGroupCommitSetAttrs(b *testing.B) {
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			db, scopes, names := openBenchDB(b, reg)
			runCallers(b, callers, 1, func(ctx context.Context, rng *rand.Rand) error {
				item := []attrcache.AttrWrite{{Name: names[rng.IntN(len(names))], Value: benchValue}}
				_, err := db.SetAttrs(ctx, scopes[rng.IntN(len(scopes))], item, attrcache.Now())
				return err
			})
			samples, err := metricstest.Samples(reg)
			if err != nil {
				b.Fatal(err)
			}
			if batches := samples["attrcache_batch_rows_count"]; batches > 0 {
				b.ReportMetric(samples["attrcache_batch_rows_sum"]/batches, "rows/batch")
				b.ReportMetric(1000*samples["attrcache_commit_duration_seconds_sum"]/batches, "ms/batch")
			}
		})
	}
}

// BenchmarkSetAttrs100 measures SetAttrs of a hundred user attributes (PUT many), each call a
// transaction of its own.
func BenchmarkSetAttrs100(b *testing.B) {
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, scopes, names := openBenchDB(b, prometheus.NewRegistry())
			runCallers(b, callers, benchAttrs, func(ctx context.Context, rng *rand.Rand) error {
				items := benchItems(names, rng.IntN(len(names)), benchAttrs)
				_, err := db.SetAttrs(ctx, scopes[rng.IntN(len(scopes))], items, attrcache.Now())
				return err
			})
		})
	}
}

// BenchmarkSetAttrsCreates measures SetAttrs of one user attribute that does not exist yet,
// through group commit: each call inserts a row, whose version stamp reads its user's version
// floor.
func BenchmarkSetAttrsCreates(b *testing.B) {
	for _, callers := range benchCallers {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, scopes, _ := openBenchDB(b, prometheus.NewRegistry())
			var n atomic.Int64
			runCallers(b, callers, 1, func(ctx context.Context, rng *rand.Rand) error {
				item := []attrcache.AttrWrite{{Name: fmt.Sprintf("created-%d", n.Add(1)), Value: benchValue}}
				_, err := db.SetAttrs(ctx, scopes[rng.IntN(len(scopes))], item, attrcache.Now())
				return err
			})
		})
	}
}

// BenchmarkDeleteAttrs measures DeleteAttrs of one user attribute, created again between calls
// (not timed), by one caller.
func BenchmarkDeleteAttrs(b *testing.B) {
	db, scopes, names := openBenchDB(b, prometheus.NewRegistry())
	item := []attrcache.AttrWrite{{Name: names[0], Value: benchValue}}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if _, err := db.SetAttrs(b.Context(), scopes[0], item, attrcache.Now()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := db.DeleteAttrs(b.Context(), scopes[0], []string{names[0]}, attrcache.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
