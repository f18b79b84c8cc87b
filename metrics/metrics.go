// Package metrics defines attrcache's Prometheus metrics. Every metric is registered on the
// registerer given to New; the package holds no globals, so tests and embedders get their own.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "attrcache"

// Metrics holds the service's metrics. A nil *Metrics is valid and records nothing, so packages
// can be used without metrics.
type Metrics struct {
	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	httpErrors     *prometheus.CounterVec
	logins         *prometheus.CounterVec
	cacheLookups   *prometheus.CounterVec
	purgedRows     *prometheus.CounterVec
	activeSessions prometheus.Gauge
	batch          batchMetrics
	failover       failoverMetrics
	redisPipelines prometheus.Histogram
	sealedValues   *prometheus.GaugeVec
	feed           feedMetrics
}

// The results of a cache look-up, the result label of attrcache_cache_requests_total.
const (
	// CacheHit is a look-up that Redis answered alone.
	CacheHit = "hit"
	// CacheMiss is a look-up that had to ask the store behind the cache.
	CacheMiss = "miss"
	// CacheError is a look-up that Redis failed, answered by the store behind the cache.
	CacheError = "error"
)

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "http_requests_total",
			Help:      "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "http_request_duration_seconds",
			Help:      "Time from reading a request to writing its response, by route template and method.",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		httpErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "http_errors_total",
			Help:      "Error responses by route template and Zato sub_status code, whatever their HTTP status.",
		}, []string{"route", "sub_status"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "logins_total",
			Help:      "Login attempts by outcome: ok, warning, or the Zato status code that refused them.",
		}, []string{"outcome"}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "cache_requests_total",
			Help:      "Cache look-ups by operation and result: hit (Redis answered), miss (the store behind it did) or error (Redis failed).",
		}, []string{"op", "result"}),
		purgedRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "expired_rows_purged_total",
			Help:      "Expired rows deleted by the background purger, by kind: attr (user and session attributes) or session.",
		}, []string{"kind"}),
		activeSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "active_sessions",
			Help:      "Sessions that had not expired when last counted (by the background purger), of every user.",
		}),
	}
	m.redisPipelines = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "redis_pipeline_callers",
		Help:      "Callers whose Redis commands shared one pipeline, one round trip (concurrent reads, and the cache updates of writes committed together).",
		Buckets:   prometheus.ExponentialBuckets(1, 2, 10), // 1 to 512
	})
	reg.MustRegister(m.httpRequests, m.httpDuration, m.httpErrors, m.logins, m.cacheLookups, m.purgedRows, m.activeSessions, m.redisPipelines)
	m.batch = newBatchMetrics(reg)
	m.failover = newFailoverMetrics(reg)
	m.sealedValues = newSealedValues(reg)
	m.feed = newFeedMetrics(reg)
	return m
}

// ObserveHTTP records one answered request. route is the route template, never the raw path.
func (m *Metrics) ObserveHTTP(route, method string, status int, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// ObserveRedisPipeline records one pipeline sent to Redis on behalf of callers callers.
func (m *Metrics) ObserveRedisPipeline(callers int) {
	if m == nil {
		return
	}
	m.redisPipelines.Observe(float64(callers))
}

// ObserveHTTPError records one error response of the route template route whose Zato code
// (the response's sub_status) is subStatus.
func (m *Metrics) ObserveHTTPError(route, subStatus string) {
	if m == nil {
		return
	}
	m.httpErrors.WithLabelValues(route, subStatus).Inc()
}

// ObserveLogin records one login attempt's outcome.
func (m *Metrics) ObserveLogin(outcome string) {
	if m == nil {
		return
	}
	m.logins.WithLabelValues(outcome).Inc()
}

// ObserveCache records one cache look-up of the operation op with its result: CacheHit,
// CacheMiss or CacheError.
func (m *Metrics) ObserveCache(op, result string) {
	if m == nil {
		return
	}
	m.cacheLookups.WithLabelValues(op, result).Inc()
}

// The kinds of expired rows, the kind label of attrcache_expired_rows_purged_total.
const (
	purgedAttrs    = "attr"
	purgedSessions = "session"
)

// ObservePurge records one run of the purger, which deleted attrs attributes and sessions
// sessions.
func (m *Metrics) ObservePurge(attrs, sessions int) {
	if m == nil {
		return
	}
	m.purgedRows.WithLabelValues(purgedAttrs).Add(float64(attrs))
	m.purgedRows.WithLabelValues(purgedSessions).Add(float64(sessions))
}

// SetActiveSessions records n as the number of sessions that have not expired.
func (m *Metrics) SetActiveSessions(n int) {
	if m == nil {
		return
	}
	m.activeSessions.Set(float64(n))
}
