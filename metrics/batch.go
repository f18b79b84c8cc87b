package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// batchMetrics are the metrics of the group commit of attribute writes (persist).
type batchMetrics struct {
	rows   prometheus.Histogram
	wait   prometheus.Histogram
	commit prometheus.Histogram
}

// newBatchMetrics creates the group commit's metrics and registers them on reg.
func newBatchMetrics(reg prometheus.Registerer) batchMetrics {
	b := batchMetrics{
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "batch_rows",
			Help:      "Attribute writes committed together by one group-commit transaction.",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024
		}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "batch_wait_seconds",
			Help:      "Time from a queued attribute write's arrival to the start of its batch's transaction.",
			Buckets:   []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "commit_duration_seconds",
			Help:      "Duration of one group-commit transaction of attribute writes, from begin to commit.",
			Buckets:   []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	reg.MustRegister(b.rows, b.wait, b.commit)
	return b
}

// ObserveBatchWait records how long one queued attribute write waited for its batch to start.
func (m *Metrics) ObserveBatchWait(wait time.Duration) {
	if m == nil {
		return
	}
	m.batch.wait.Observe(wait.Seconds())
}

// ObserveBatch records one group-commit transaction that wrote rows attribute writes and took
// elapsed, whether it committed or not.
func (m *Metrics) ObserveBatch(rows int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.batch.rows.Observe(float64(rows))
	m.batch.commit.Observe(elapsed.Seconds())
}
