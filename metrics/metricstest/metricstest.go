// Package metricstest helps tests check attrcache's metrics: it builds a registry holding every
// collector the service registers, lists the metric names a collector describes, and reads
// samples from a registry or from the text that GET /metrics serves.
package metricstest

import (
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache/metrics"
)

// Pools are the snapshots the pool collectors of NewRegistry report.
type Pools struct {
	MySQL sql.DBStats
	Redis redis.PoolStats
}

// NewRegistry returns a registry holding what `attrcache serve` registers — the runtime and build
// collectors, metrics.New's metrics and the MySQL and Redis pool collectors, which report pools —
// and the Metrics to record on.
func NewRegistry(pools Pools) (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	metrics.RegisterRuntime(reg, "v0.0.0-test", "test")
	m := metrics.New(reg)
	reg.MustRegister(
		metrics.NewMySQLCollector(func() sql.DBStats { return pools.MySQL }),
		metrics.NewRedisPoolCollector(func() *redis.PoolStats { return &pools.Redis }),
	)
	return reg, m
}

// descName finds the fully-qualified name in a Desc's String form, the only place a Desc shows it.
var descName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// Names returns the sorted names of the metrics c describes, whether or not they have samples.
func Names(c prometheus.Collector) ([]string, error) {
	descs := make(chan *prometheus.Desc)
	go func() {
		c.Describe(descs)
		close(descs)
	}()
	var names []string
	var err error
	for d := range descs {
		match := descName.FindStringSubmatch(d.String())
		if match == nil {
			err = fmt.Errorf("no metric name in the descriptor %s", d)
			continue // drain the channel so that Describe can return
		}
		names = append(names, match[1])
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// labelValueEscaper escapes a label value as the text exposition format does.
var labelValueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Samples returns the value of every counter, gauge and untyped sample g gathers, and the
// _count and _sum of every histogram, keyed by series as the text exposition format writes it:
// name{label="value",…}, labels in name order, or the bare name when there are none.
func Samples(g prometheus.Gatherer) (map[string]float64, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering: %w", err)
	}
	samples := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() { // gathered labels are sorted by name
				labels = append(labels, l.GetName()+`="`+labelValueEscaper.Replace(l.GetValue())+`"`)
			}
			series := func(name string) string {
				if len(labels) == 0 {
					return name
				}
				return name + "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				samples[series(f.GetName())] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				samples[series(f.GetName())] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				samples[series(f.GetName())] = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				samples[series(f.GetName()+"_count")] = float64(m.GetHistogram().GetSampleCount())
				samples[series(f.GetName()+"_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return samples, nil
}

// ParseSamples reads the text exposition format, as GET /metrics serves it, and returns the
// value of every sample keyed by its series as written (the same keys as Samples).
func ParseSamples(text string) (map[string]float64, error) {
	samples := make(map[string]float64)
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cut := strings.LastIndexByte(line, ' ')
		if cut < 0 {
			return nil, fmt.Errorf("sample line without a value: %q", line)
		}
		value, err := strconv.ParseFloat(line[cut+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("sample line %q: %w", line, err)
		}
		samples[line[:cut]] = value
	}
	return samples, nil
}
