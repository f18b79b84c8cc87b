// Package configs_test checks the deployment files of this directory: the Prometheus
// configuration, Grafana's provisioning and the attrcache dashboard, against each other, against
// the service's metrics and against docker-compose.yml, which mounts them.
package configs_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/attrcache/attrcache/metrics/metricstest"
)

// The files under test, relative to this directory.
const (
	prometheusFile       = "prometheus.yml"
	serviceConfigFile    = "attrcache.yaml"
	datasourcesFile      = "grafana/provisioning/datasources/prometheus.yml"
	dashboardsFile       = "grafana/provisioning/dashboards/attrcache.yml"
	dashboardFile        = "grafana/dashboards/attrcache.json"
	composeFile          = "../docker-compose.yml"
	groupCommitMetricsGo = "../metrics/batch.go"
)

// Where docker-compose.yml runs things: the compose service names and Grafana's directories.
const (
	composeService       = "attrcache"
	prometheusURL        = "http://prometheus:9090"
	grafanaProvisioning  = "/etc/grafana/provisioning"
	grafanaProvisionFrom = "./configs/grafana/provisioning"
	grafanaDashboardFrom = "./configs/grafana/dashboards"
)

// groupCommitMetrics are the metrics the group commit of persist exports (metrics/batch.go),
// which the dashboard's "Group commit" row shows.
var groupCommitMetrics = []string{
	"attrcache_batch_rows",
	"attrcache_batch_wait_seconds",
	"attrcache_commit_duration_seconds",
}

// dashboardMetrics are metrics the dashboard must show, so that losing a panel fails the test.
var dashboardMetrics = append([]string{
	"attrcache_http_requests_total",
	"attrcache_http_request_duration_seconds",
	"attrcache_http_errors_total",
	"attrcache_cache_requests_total",
	"attrcache_logins_total",
	"attrcache_active_sessions",
	"attrcache_expired_rows_purged_total",
	"attrcache_mysql_connections",
	"attrcache_mysql_max_open_connections",
	"attrcache_redis_connections",
	"attrcache_redis_pool_timeouts_total",
	"attrcache_redis_pipeline_callers",
}, groupCommitMetrics...)

// decodeYAML decodes the YAML file path into v, failing the test if it cannot.
func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboard is the part of a Grafana dashboard JSON model that the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Query      any         `json:"query"`
			Definition string      `json:"definition"`
			Datasource *datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// loadDashboard parses the dashboard, failing the test if it cannot.
func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// graphs returns every panel of d that shows data, rows' panels included, rows excluded.
func (d *dashboard) graphs() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// queries returns every PromQL expression of d: its panels' and its variables'.
func (d *dashboard) queries() []string {
	var out []string
	for _, p := range d.graphs() {
		for _, target := range p.Targets {
			out = append(out, target.Expr)
		}
	}
	for _, v := range d.Templating.List {
		out = append(out, v.Definition)
	}
	return out
}

// metricName matches the metric names of a PromQL expression: the service's own and the Go
// runtime and process ones its registry also exports.
var metricName = regexp.MustCompile(`\b(?:attrcache|go|process)_[A-Za-z0-9_]+`)

// seriesSuffixes are the suffixes of a histogram's or summary's series, which its name lacks.
var seriesSuffixes = []string{"_bucket", "_sum", "_count"}

// queriedMetrics returns the sorted metric names the expressions query, each series of a
// histogram as the histogram's name when exported does not have it under its own name.
func queriedMetrics(exprs []string, exported []string) []string {
	var names []string
	for _, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(exported, name) {
				for _, suffix := range seriesSuffixes {
					if base, ok := strings.CutSuffix(name, suffix); ok {
						name = base
						break
					}
				}
			}
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// groupCommitLanded reports whether metrics/batch.go, which exports groupCommitMetrics, exists.
func groupCommitLanded(t *testing.T) bool {
	t.Helper()
	_, err := os.Stat(groupCommitMetricsGo)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func TestDashboardQueriesOnlyExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	reg, _ := metricstest.NewRegistry(metricstest.Pools{})
	exported, err := metricstest.Names(reg)
	if err != nil {
		t.Fatal(err)
	}
	landed := groupCommitLanded(t)
	if !landed {
		t.Logf("%s does not exist yet: not requiring %v", groupCommitMetricsGo, groupCommitMetrics)
	}

	queried := queriedMetrics(d.queries(), exported)
	for _, name := range queried {
		if !landed && slices.Contains(groupCommitMetrics, name) {
			continue
		}
		if !slices.Contains(exported, name) {
			t.Errorf("the dashboard queries %s (or its _bucket, _sum or _count series), which the service does not export", name)
		}
	}
	for _, name := range dashboardMetrics {
		if !slices.Contains(queried, name) {
			t.Errorf("the dashboard has no panel showing %s", name)
		}
	}
}

func TestQueriedMetrics(t *testing.T) {
	exported := []string{"attrcache_latency_seconds", "attrcache_items_count", "go_goroutines"}
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"histogram series", `histogram_quantile(0.99, sum by (le) (rate(attrcache_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`,
			[]string{"attrcache_latency_seconds"}},
		{"sum over count", `rate(attrcache_latency_seconds_sum[5m]) / rate(attrcache_latency_seconds_count[5m])`,
			[]string{"attrcache_latency_seconds"}},
		{"an exported name ending like a series", `attrcache_items_count`, []string{"attrcache_items_count"}},
		{"runtime metrics, labels and functions are told apart", `go_goroutines{goversion="x"} + label_values(process_open_fds, instance)`,
			[]string{"go_goroutines", "process_open_fds"}},
		{"other names are ignored", `up{job="attrcache"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queriedMetrics([]string{tt.expr}, exported); !slices.Equal(got, tt.want) {
				t.Errorf("queriedMetrics(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

// templatedSource is the data source of every panel and query variable: the dashboard's
// datasource variable, as Grafana's dashboard linter requires, so that an operator can point the
// dashboard at their own Prometheus.
var templatedSource = datasource{Type: "prometheus", UID: "${datasource}"}

// selector matches a metric selector of a PromQL expression: the name and its label matchers.
var selector = regexp.MustCompile(`\b((?:attrcache|go|process)_[A-Za-z0-9_]+)(\{[^}]*\})?`)

func TestDashboardPanels(t *testing.T) {
	d := loadDashboard(t)
	var sources struct {
		Datasources []struct{ Type string } `yaml:"datasources"`
	}
	decodeYAML(t, datasourcesFile, &sources)
	if len(sources.Datasources) != 1 || sources.Datasources[0].Type != "prometheus" {
		t.Fatalf("%s provisions %+v, want one prometheus data source", datasourcesFile, sources.Datasources)
	}

	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both set", d.UID, d.Title)
	}
	ids := make(map[int]string)
	for _, p := range d.graphs() {
		t.Run(p.Title, func(t *testing.T) {
			if other, ok := ids[p.ID]; ok {
				t.Errorf("panel id %d is also %q's", p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.Datasource == nil || *p.Datasource != templatedSource {
				t.Errorf("data source %+v, want %+v", p.Datasource, templatedSource)
			}
			if len(p.Targets) == 0 {
				t.Error("no query")
			}
			for _, target := range p.Targets {
				if strings.TrimSpace(target.Expr) == "" {
					t.Error("an empty query")
				}
				for _, m := range selector.FindAllStringSubmatch(target.Expr, -1) {
					for _, matcher := range []string{`job=~"$job"`, `instance=~"$instance"`} {
						if !strings.Contains(m[2], matcher) {
							t.Errorf("%s in %q lacks %s", m[0], target.Expr, matcher)
						}
					}
				}
			}
		})
	}
}

// TestDashboardVariables checks the variables Grafana's dashboard linter asks for: a data source
// of type prometheus first, then job and instance, queried through it.
func TestDashboardVariables(t *testing.T) {
	vars := loadDashboard(t).Templating.List
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
	}
	if want := []string{"datasource", "job", "instance"}; !slices.Equal(names, want) {
		t.Fatalf("variables %v, want %v", names, want)
	}
	if vars[0].Type != "datasource" || vars[0].Query != "prometheus" {
		t.Errorf("datasource variable: type %q, query %v; want datasource, prometheus", vars[0].Type, vars[0].Query)
	}
	for _, v := range vars[1:] {
		if v.Type != "query" || v.Datasource == nil || *v.Datasource != templatedSource {
			t.Errorf("variable %s: type %q, data source %+v; want a query through %+v", v.Name, v.Type, v.Datasource, templatedSource)
		}
	}
	if !strings.Contains(vars[2].Definition, `job=~"$job"`) {
		t.Errorf("instance variable %q: want it limited to the chosen jobs", vars[2].Definition)
	}
}

func TestPrometheusScrapesAttrcache(t *testing.T) {
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, prometheusFile, &cfg)
	var service struct {
		HTTP struct{ Addr string } `yaml:"http"`
	}
	decodeYAML(t, serviceConfigFile, &service)
	_, port, err := net.SplitHostPort(service.HTTP.Addr)
	if err != nil {
		t.Fatalf("%s http.addr %q: %v", serviceConfigFile, service.HTTP.Addr, err)
	}
	wantTarget := net.JoinHostPort(composeService, port)

	for _, job := range cfg.ScrapeConfigs {
		if job.JobName != composeService {
			continue
		}
		if job.MetricsPath != "/metrics" {
			t.Errorf("job %s: metrics_path %q, want /metrics", job.JobName, job.MetricsPath)
		}
		var targets []string
		for _, sc := range job.StaticConfigs {
			targets = append(targets, sc.Targets...)
		}
		if !slices.Equal(targets, []string{wantTarget}) {
			t.Errorf("job %s: targets %v, want [%s]", job.JobName, targets, wantTarget)
		}
		return
	}
	t.Errorf("%s has no scrape job %q", prometheusFile, composeService)
}

// grafanaMounts returns where docker-compose.yml's grafana service mounts each host path of its
// volumes (short syntax), or nil when there is no grafana service.
func grafanaMounts(t *testing.T) map[string]string {
	t.Helper()
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	decodeYAML(t, composeFile, &compose)
	grafana, ok := compose.Services["grafana"]
	if !ok {
		return nil
	}
	mounts := make(map[string]string)
	for _, v := range grafana.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("%s: grafana volume %q is not host:container[:mode]", composeFile, v)
		}
		mounts[parts[0]] = parts[1]
	}
	return mounts
}

func TestGrafanaProvisioning(t *testing.T) {
	var sources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, UID, URL string
		} `yaml:"datasources"`
	}
	decodeYAML(t, datasourcesFile, &sources)
	var providers struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	decodeYAML(t, dashboardsFile, &providers)

	if sources.APIVersion != 1 || providers.APIVersion != 1 {
		t.Errorf("apiVersion %d (data sources), %d (dashboards), want 1", sources.APIVersion, providers.APIVersion)
	}
	if len(sources.Datasources) != 1 || sources.Datasources[0].Type != "prometheus" || sources.Datasources[0].URL != prometheusURL {
		t.Errorf("data sources %+v, want one of type prometheus at %s", sources.Datasources, prometheusURL)
	}
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" || providers.Providers[0].Options.Path == "" {
		t.Fatalf("dashboard providers %+v, want one of type file with a path", providers.Providers)
	}

	mounts := grafanaMounts(t)
	if mounts == nil {
		t.Skipf("%s has no grafana service to mount the provisioning", composeFile)
	}
	tests := []struct{ from, want string }{
		{grafanaProvisionFrom, grafanaProvisioning},
		{grafanaDashboardFrom, providers.Providers[0].Options.Path},
	}
	for _, tt := range tests {
		if got := mounts[tt.from]; got != tt.want {
			t.Errorf("%s mounts %s at %q, want %q", composeFile, tt.from, got, tt.want)
		}
	}
}
