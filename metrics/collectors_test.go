package metrics_test

import (
	"database/sql"
	"maps"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/metrics/metricstest"
)

// wantSamples fails the test unless c, registered alone, reports exactly want.
func wantSamples(t *testing.T, c prometheus.Collector, want map[string]float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	got, err := metricstest.Samples(reg)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("samples:\n got %v\nwant %v", got, want)
	}
}

func TestMySQLCollector(t *testing.T) {
	stats := sql.DBStats{
		MaxOpenConnections: 64,
		OpenConnections:    10,
		InUse:              7,
		Idle:               3,
		WaitCount:          5,
		WaitDuration:       1500 * time.Millisecond,
		MaxIdleClosed:      1,
		MaxIdleTimeClosed:  2,
		MaxLifetimeClosed:  4,
	}
	wantSamples(t, metrics.NewMySQLCollector(func() sql.DBStats { return stats }), map[string]float64{
		`attrcache_mysql_connections{state="open"}`:                        10,
		`attrcache_mysql_connections{state="in_use"}`:                      7,
		`attrcache_mysql_connections{state="idle"}`:                        3,
		`attrcache_mysql_max_open_connections`:                             64,
		`attrcache_mysql_waits_total`:                                      5,
		`attrcache_mysql_wait_duration_seconds_total`:                      1.5,
		`attrcache_mysql_connections_closed_total{reason="max_idle"}`:      1,
		`attrcache_mysql_connections_closed_total{reason="max_idle_time"}`: 2,
		`attrcache_mysql_connections_closed_total{reason="max_lifetime"}`:  4,
	})
}

func TestRedisPoolCollector(t *testing.T) {
	stats := &redis.PoolStats{
		Hits:           40,
		Misses:         2,
		Timeouts:       1,
		WaitCount:      3,
		WaitDurationNs: int64(250 * time.Millisecond),
		TotalConns:     6,
		IdleConns:      4,
		StaleConns:     9,
	}
	wantSamples(t, metrics.NewRedisPoolCollector(func() *redis.PoolStats { return stats }), map[string]float64{
		`attrcache_redis_pool_hits_total`:                  40,
		`attrcache_redis_pool_misses_total`:                2,
		`attrcache_redis_pool_timeouts_total`:              1,
		`attrcache_redis_pool_waits_total`:                 3,
		`attrcache_redis_pool_wait_duration_seconds_total`: 0.25,
		`attrcache_redis_connections{state="open"}`:        6,
		`attrcache_redis_connections{state="idle"}`:        4,
		`attrcache_redis_stale_connections_closed_total`:   9,
	})
}

func TestAuditCollector(t *testing.T) {
	wantSamples(t, metrics.NewAuditCollector(func() metrics.AuditStats { return metrics.AuditStats{Written: 12, Dropped: 3} }), map[string]float64{
		`attrcache_audit_lines_total`:   12,
		`attrcache_audit_dropped_total`: 3,
	})
}

func TestBuildInfoCollector(t *testing.T) {
	wantSamples(t, metrics.NewBuildInfoCollector("v1.2.3", "abc123"), map[string]float64{
		`attrcache_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="v1.2.3"}`: 1,
	})
}

// observeEverything gives each metric that metrics.New registers at least one sample. A metric
// added to Metrics needs a line here, or TestLint fails naming it.
func observeEverything(m *metrics.Metrics) {
	m.ObserveHTTP("/zato/sso/user", "GET", 200, time.Millisecond)
	m.ObserveHTTPError("/zato/sso/user", "E005001")
	m.ObserveLogin("ok")
	m.ObserveCache("attr", metrics.CacheHit)
	m.ObservePurge(1, 1)
	m.SetActiveSessions(1)
	m.ObserveRedisFailover("drop", time.Millisecond)
	m.SetSealedValues([]metrics.SealedCount{{KeyID: "k1", Kind: "attr_value", Configured: true, Count: 1}})
}

// TestLint runs promlint over every metric the service registers, each given a sample first, so
// that names, units, types and help texts all follow Prometheus's conventions.
func TestLint(t *testing.T) {
	reg, m := metricstest.NewRegistry(metricstest.Pools{})
	observeEverything(m)

	described, err := metricstest.Names(reg)
	if err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var gathered []string
	for _, f := range families {
		gathered = append(gathered, f.GetName())
	}
	for _, name := range described {
		if !slices.Contains(gathered, name) {
			t.Errorf("%s has no sample to lint: observe it in observeEverything", name)
		}
	}

	problems, err := promlint.NewWithMetricFamilies(families).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestNamesListsMetricsWithoutSamples(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg) // no sample recorded
	got, err := metricstest.Names(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"attrcache_http_requests_total", "attrcache_http_request_duration_seconds", "attrcache_active_sessions"} {
		if !slices.Contains(got, want) {
			t.Errorf("Names = %v, want it to hold %s", got, want)
		}
	}
}
