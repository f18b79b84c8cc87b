package metrics

import (
	"database/sql"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// NewMySQLCollector returns a collector of the MySQL connection pool's statistics, read from
// stats (typically (*sql.DB).Stats) at every scrape:
//
//	attrcache_mysql_connections{state="open|in_use|idle"}   gauge (open = in_use + idle)
//	attrcache_mysql_max_open_connections                    gauge
//	attrcache_mysql_waits_total                             counter
//	attrcache_mysql_wait_duration_seconds_total             counter
//	attrcache_mysql_connections_closed_total{reason="max_idle|max_idle_time|max_lifetime"} counter
func NewMySQLCollector(stats func() sql.DBStats) prometheus.Collector {
	connections := newDesc("mysql", "connections",
		"Connections of the MySQL pool by state: open (in_use plus idle), in_use or idle.", "state")
	closed := newDesc("mysql", "connections_closed_total",
		"Connections the MySQL pool closed, by reason: max_idle (too many idle), max_idle_time or max_lifetime.", "reason")
	return &statsCollector[sql.DBStats]{
		read: stats,
		stats: []stat[sql.DBStats]{
			{connections, prometheus.GaugeValue, "open", func(s sql.DBStats) float64 { return float64(s.OpenConnections) }},
			{connections, prometheus.GaugeValue, "in_use", func(s sql.DBStats) float64 { return float64(s.InUse) }},
			{connections, prometheus.GaugeValue, "idle", func(s sql.DBStats) float64 { return float64(s.Idle) }},
			{newDesc("mysql", "max_open_connections", "The most connections the MySQL pool may open (0: no limit)."),
				prometheus.GaugeValue, "", func(s sql.DBStats) float64 { return float64(s.MaxOpenConnections) }},
			{newDesc("mysql", "waits_total", "Times a statement waited for a free connection of the MySQL pool."),
				prometheus.CounterValue, "", func(s sql.DBStats) float64 { return float64(s.WaitCount) }},
			{newDesc("mysql", "wait_duration_seconds_total", "Time statements spent waiting for a free connection of the MySQL pool."),
				prometheus.CounterValue, "", func(s sql.DBStats) float64 { return s.WaitDuration.Seconds() }},
			{closed, prometheus.CounterValue, "max_idle", func(s sql.DBStats) float64 { return float64(s.MaxIdleClosed) }},
			{closed, prometheus.CounterValue, "max_idle_time", func(s sql.DBStats) float64 { return float64(s.MaxIdleTimeClosed) }},
			{closed, prometheus.CounterValue, "max_lifetime", func(s sql.DBStats) float64 { return float64(s.MaxLifetimeClosed) }},
		},
	}
}

// NewRedisPoolCollector returns a collector of the Redis connection pool's statistics, read from
// stats (typically redis.UniversalClient's PoolStats, which sums every node's pool of a cluster)
// at every scrape; stats must not return nil:
//
//	attrcache_redis_pool_hits_total, _misses_total, _timeouts_total, _waits_total  counters
//	attrcache_redis_pool_wait_duration_seconds_total                              counter
//	attrcache_redis_connections{state="open|idle"}                                gauge
//	attrcache_redis_stale_connections_closed_total                                counter
func NewRedisPoolCollector(stats func() *redis.PoolStats) prometheus.Collector {
	connections := newDesc("redis", "connections", "Connections of the Redis pool by state: open (in use or idle) or idle.", "state")
	return &statsCollector[*redis.PoolStats]{
		read: stats,
		stats: []stat[*redis.PoolStats]{
			{newDesc("redis", "pool_hits_total", "Times the Redis pool had an idle connection to hand out."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.Hits) }},
			{newDesc("redis", "pool_misses_total", "Times the Redis pool had no idle connection to hand out."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.Misses) }},
			{newDesc("redis", "pool_timeouts_total", "Times waiting for a connection of the Redis pool timed out."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.Timeouts) }},
			{newDesc("redis", "pool_waits_total", "Times a command waited for a connection of the Redis pool."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.WaitCount) }},
			{newDesc("redis", "pool_wait_duration_seconds_total", "Time commands spent waiting for a connection of the Redis pool."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.WaitDurationNs) / 1e9 }},
			{connections, prometheus.GaugeValue, "open", func(s *redis.PoolStats) float64 { return float64(s.TotalConns) }},
			{connections, prometheus.GaugeValue, "idle", func(s *redis.PoolStats) float64 { return float64(s.IdleConns) }},
			{newDesc("redis", "stale_connections_closed_total", "Stale connections the Redis pool closed."),
				prometheus.CounterValue, "", func(s *redis.PoolStats) float64 { return float64(s.StaleConns) }},
		},
	}
}

// newDesc describes the metric attrcache_<subsystem>_<name>, with the variable label label when
// one is given.
func newDesc(subsystem, name, help string, label ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, label, nil)
}

// statsCollector exposes a snapshot of statistics of type S, taken by read at every scrape, as
// constant metrics.
type statsCollector[S any] struct {
	read  func() S
	stats []stat[S]
}

// stat is one sample of a statsCollector: its metric, type, label value (empty for a metric
// without labels) and how to find its value in a snapshot.
type stat[S any] struct {
	desc       *prometheus.Desc
	valueType  prometheus.ValueType
	labelValue string
	value      func(S) float64
}

// Describe sends the descriptor of every metric once.
func (c *statsCollector[S]) Describe(ch chan<- *prometheus.Desc) {
	seen := make(map[*prometheus.Desc]bool, len(c.stats))
	for _, s := range c.stats {
		if !seen[s.desc] {
			seen[s.desc] = true
			ch <- s.desc
		}
	}
}

// Collect takes one snapshot and sends every sample of it.
func (c *statsCollector[S]) Collect(ch chan<- prometheus.Metric) {
	snapshot := c.read()
	for _, s := range c.stats {
		var labelValues []string
		if s.labelValue != "" {
			labelValues = []string{s.labelValue}
		}
		ch <- prometheus.MustNewConstMetric(s.desc, s.valueType, s.value(snapshot), labelValues...)
	}
}
