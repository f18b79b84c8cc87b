package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sampleValue returns the value of the counter or gauge name with the given labels as gathered
// from reg, and whether it exists.
func sampleValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestObserveCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	observations := []struct{ op, result string }{
		{"attr", CacheHit}, {"attr", CacheHit}, {"attr", CacheMiss}, {"session", CacheError},
	}
	for _, o := range observations {
		m.ObserveCache(o.op, o.result)
	}
	tests := []struct {
		op, result string
		want       float64
	}{
		{"attr", CacheHit, 2},
		{"attr", CacheMiss, 1},
		{"session", CacheError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+tt.result, func(t *testing.T) {
			got, ok := sampleValue(t, reg, "attrcache_cache_requests_total", map[string]string{"op": tt.op, "result": tt.result})
			if !ok || got != tt.want {
				t.Errorf("attrcache_cache_requests_total{op=%q,result=%q} = %v (present %v), want %v", tt.op, tt.result, got, ok, tt.want)
			}
		})
	}
}

func TestObservers(t *testing.T) {
	tests := []struct {
		name    string
		observe func(m *Metrics)
		metric  string
		labels  map[string]string
		want    float64
	}{
		{"an error response", func(m *Metrics) {
			m.ObserveHTTPError("/zato/sso/user", "E005001")
			m.ObserveHTTPError("/zato/sso/user", "E005001")
			m.ObserveHTTPError("/zato/sso/user/login", "E005001")
		}, "attrcache_http_errors_total", map[string]string{"route": "/zato/sso/user", "sub_status": "E005001"}, 2},
		{"purged attributes", func(m *Metrics) {
			m.ObservePurge(3, 1)
			m.ObservePurge(4, 0)
		}, "attrcache_expired_rows_purged_total", map[string]string{"kind": "attr"}, 7},
		{"purged sessions", func(m *Metrics) {
			m.ObservePurge(3, 1)
			m.ObservePurge(0, 2)
		}, "attrcache_expired_rows_purged_total", map[string]string{"kind": "session"}, 3},
		{"active sessions: the last count", func(m *Metrics) {
			m.SetActiveSessions(12)
			m.SetActiveSessions(5)
		}, "attrcache_active_sessions", nil, 5},
		{"redis failovers repaired by a drop", func(m *Metrics) {
			m.ObserveRedisFailover("drop", time.Millisecond)
			m.ObserveRedisFailover("replay", time.Millisecond)
			m.ObserveRedisFailover("drop", time.Millisecond)
		}, "attrcache_redis_failovers_total", map[string]string{"repair": "drop"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			tt.observe(New(reg))
			got, ok := sampleValue(t, reg, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics // every method must accept it without panicking
	m.ObserveCache("attr", CacheHit)
	m.ObserveLogin("ok")
	m.ObserveHTTP("/zato/sso/user", "GET", 200, 0)
	m.ObserveHTTPError("/zato/sso/user", "E005001")
	m.ObservePurge(1, 1)
	m.SetActiveSessions(1)
	m.ObserveRedisFailover("drop", 0)
}
