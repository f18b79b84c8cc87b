package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// RegisterRuntime registers on reg the conventional collectors of a Go service — the Go runtime
// (go_*) and the process (process_*) — and attrcache_build_info for version and commit.
func RegisterRuntime(reg prometheus.Registerer, version, commit string) {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewBuildInfoCollector(version, commit),
	)
}

// NewBuildInfoCollector returns the gauge attrcache_build_info{version, commit, goversion}, always
// 1, which names the running build: join on it to label other series with the version.
func NewBuildInfoCollector(version, commit string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "Always 1; its labels name the version, the commit and the Go release of the running build.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"commit":    commit,
			"goversion": runtime.Version(),
		},
	}, func() float64 { return 1 })
}
