package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// feedMetrics are the change feed's.
type feedMetrics struct {
	subscribers prometheus.Gauge
	delivered   prometheus.Counter
	lag         prometheus.Histogram
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
	}
	reg.MustRegister(f.subscribers, f.delivered, f.lag)
	return f
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
