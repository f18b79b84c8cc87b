package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// failoverMetrics are the metrics of the cache's repairs after a Redis master was replaced.
type failoverMetrics struct {
	repairs  *prometheus.CounterVec
	duration prometheus.Histogram
}

// newFailoverMetrics creates the failover metrics and registers them on reg.
func newFailoverMetrics(reg prometheus.Registerer) failoverMetrics {
	f := failoverMetrics{
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "redis_failovers_total",
			Help:      "Redis masters this instance saw replaced or restarted, and repaired, by repair: replay (the recent changes re-applied) or drop (the keys of the affected slots deleted).",
		}, []string{"repair"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "redis_failover_repair_seconds",
			Help:      "Time from noticing a replaced or restarted Redis master to the end of its repair; the affected keys are read from MySQL meanwhile.",
			Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	reg.MustRegister(f.repairs, f.duration)
	return f
}

// ObserveRedisFailover records one repair after a Redis master was replaced or restarted, by
// repair ("replay" or "drop"), that ended elapsed after it was noticed.
func (m *Metrics) ObserveRedisFailover(repair string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.failover.repairs.WithLabelValues(repair).Inc()
	m.failover.duration.Observe(elapsed.Seconds())
}
