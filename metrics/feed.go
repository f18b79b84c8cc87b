package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// feedMetrics are those of attrcache's own additions (CONTRACT.md §10): the change feed's, and
// compare-and-set's.
type feedMetrics struct {
	subscribers prometheus.Gauge
	delivered   prometheus.Counter
	lag         prometheus.Histogram
	// casConflicts counts the writes (items, of a per-item write) refused with E009101.
	casConflicts prometheus.Counter
}

// newFeedMetrics creates the change feed's metrics and registers them on reg.
func newFeedMetrics(reg prometheus.Registerer) feedMetrics {
	f := feedMetrics{
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "feed_subscribers",
			Help:      "Change feed readers connected now: Server-Sent Events streams and long polls waiting.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "feed_events_delivered_total",
			Help:      "Change feed events written to clients, in pages, long polls and streams.",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "feed_delivery_lag_seconds",
			Help:      "Time from a set or delete's commit to its change feed event being written to a client waiting for it.",
			Buckets:   []float64{.005, .01, .02, .035, .05, .075, .1, .15, .25, .5, 1, 2.5, 5},
		}),
		casConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "cas_conflicts_total",
			Help:      "Attribute writes and deletes (or items of per-item ones) refused because if_version or If-Match did not match (E009101).",
		}),
	}
	reg.MustRegister(f.subscribers, f.delivered, f.lag, f.casConflicts)
	return f
}

// ObserveCASConflicts records n writes or items refused with E009101.
func (m *Metrics) ObserveCASConflicts(n int) {
	if m == nil || n == 0 {
		return
	}
	m.feed.casConflicts.Add(float64(n))
}

// FeedSubscribed records a feed reader connecting (+1) or leaving (-1).
func (m *Metrics) FeedSubscribed(delta int) {
	if m == nil {
		return
	}
	m.feed.subscribers.Add(float64(delta))
}

// ObserveFeedDelivered records n events written to a client.
func (m *Metrics) ObserveFeedDelivered(n int) {
	if m == nil {
		return
	}
	m.feed.delivered.Add(float64(n))
}

// ObserveFeedLag records the time from an event's commit to its delivery to a waiting client.
func (m *Metrics) ObserveFeedLag(lag time.Duration) {
	if m == nil {
		return
	}
	m.feed.lag.Observe(max(lag, 0).Seconds())
}
