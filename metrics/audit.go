package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuditStats is what the audit log has done since it started.
type AuditStats struct {
	Written uint64 // lines written to the sink
	Dropped uint64 // lines lost: the queue was full, or the sink failed
}

// NewAuditCollector returns a collector of the audit log's counts, read from stats at every
// scrape:
//
//	attrcache_audit_lines_total    counter
//	attrcache_audit_dropped_total  counter
func NewAuditCollector(stats func() AuditStats) prometheus.Collector {
	return &statsCollector[AuditStats]{
		read: stats,
		stats: []stat[AuditStats]{
			{newDesc("audit", "lines_total", "Lines written to the audit sink."),
				prometheus.CounterValue, "", func(s AuditStats) float64 { return float64(s.Written) }},
			{newDesc("audit", "dropped_total", "Audit lines lost: the queue to the sink was full, or the sink failed to write."),
				prometheus.CounterValue, "", func(s AuditStats) float64 { return float64(s.Dropped) }},
		},
	}
}
