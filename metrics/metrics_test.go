package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// counterValue returns the value of the counter name with the given labels as gathered from
// reg, and whether it exists.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
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
			got, ok := counterValue(t, reg, "attrcache_cache_requests_total", map[string]string{"op": tt.op, "result": tt.result})
			if !ok || got != tt.want {
				t.Errorf("attrcache_cache_requests_total{op=%q,result=%q} = %v (present %v), want %v", tt.op, tt.result, got, ok, tt.want)
			}
		})
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveCache("attr", CacheHit) // must not panic
	m.ObserveLogin("ok")
	m.ObserveHTTP("/zato/sso/user", "GET", 200, 0)
}
