// Package deploy tests the deployment files at the repository's root without a container
// engine: docker-compose.yml, loaded by compose-go (the loader Docker Compose itself uses), the
// Dockerfile it builds, and the Prometheus and Grafana files it mounts.
package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the repository's root, seen from this package's directory (where go test runs).
const repoRoot = ".."

const composeFile = "docker-compose.yml"

// placeholderSecretKey stands in for the ATTRCACHE_SECRET_KEY that the compose file requires.
// Nothing is encrypted with it.
const placeholderSecretKey = "placeholder-for-the-compose-test"

// The services of docker-compose.yml and the container ports they publish.
const (
	mysqlService      = "mysql"
	redisService      = "redis"
	attrcacheService  = "attrcache"
	prometheusService = "prometheus"
	grafanaService    = "grafana"

	attrcachePort  = 17010
	prometheusPort = 9090
	grafanaPort    = 3000
)

// fixedEnvNames are the environment variables attrcache reads besides those derived from the
// settings of configs/attrcache.yaml (CONTRACT.md §1).
var fixedEnvNames = []string{"ATTRCACHE_CONFIG", "ATTRCACHE_SECRET_KEY", "ATTRCACHE_SECRET_KEYS"}

// loadProject loads docker-compose.yml as `docker compose` would with only env in its
// environment (neither the test's environment nor a .env file), paths resolved.
func loadProject(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	var vars []string
	for name, value := range env {
		vars = append(vars, name+"="+value)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, composeFile)},
		cli.WithEnv(vars), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatalf("compose project options: %v", err)
	}
	return opts.LoadProject(t.Context())
}

// project returns docker-compose.yml loaded with the secret key set, failing the test when it
// does not load.
func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject(t, map[string]string{"ATTRCACHE_SECRET_KEY": placeholderSecretKey})
	if err != nil {
		t.Fatalf("loading %s: %v", composeFile, err)
	}
	return p
}

// service returns the named service of p, failing the test when there is none.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	svc, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return svc
}

// envValue returns the value of the environment variable name in svc's containers, "" when it
// is unset.
func envValue(svc types.ServiceConfig, name string) string {
	if value := svc.Environment[name]; value != nil {
		return *value
	}
	return ""
}

// repoPath returns the absolute path of a file of the repository.
func repoPath(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatalf("absolute path of %s: %v", rel, err)
	}
	return abs
}

func TestComposeDeclaresTheFiveServices(t *testing.T) {
	got := project(t).ServiceNames()
	slices.Sort(got)
	want := []string{attrcacheService, grafanaService, mysqlService, prometheusService, redisService}
	if !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

func TestComposePublishesPortsOnLoopback(t *testing.T) {
	p := project(t)
	for _, tc := range []struct {
		service string
		port    uint32
	}{
		{attrcacheService, attrcachePort},
		{prometheusService, prometheusPort},
		{grafanaService, grafanaPort},
	} {
		t.Run(tc.service, func(t *testing.T) {
			ports := service(t, p, tc.service).Ports
			if len(ports) != 1 {
				t.Fatalf("ports = %+v, want one", ports)
			}
			got := ports[0]
			if got.HostIP != "127.0.0.1" || got.Published != fmt.Sprint(tc.port) || got.Target != tc.port || got.Protocol != "tcp" {
				t.Errorf("port = %s:%s->%d/%s, want 127.0.0.1:%d->%[5]d/tcp",
					got.HostIP, got.Published, got.Target, got.Protocol, tc.port)
			}
		})
	}
	for _, name := range []string{mysqlService, redisService} {
		t.Run(name, func(t *testing.T) {
			if ports := service(t, p, name).Ports; len(ports) != 0 {
				t.Errorf("ports = %+v, want none: only the other services reach it", ports)
			}
		})
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := project(t)
	for _, tc := range []struct {
		service string
		command []string // the check, after CMD
	}{
		{mysqlService, []string{"healthcheck.sh", "--connect", "--innodb_initialized"}},
		{redisService, []string{"redis-cli", "ping"}},
		{attrcacheService, wgetCheck(attrcachePort, "/readyz")},
		{prometheusService, wgetCheck(prometheusPort, "/-/ready")},
		{grafanaService, wgetCheck(grafanaPort, "/api/health")},
	} {
		t.Run(tc.service, func(t *testing.T) {
			check := service(t, p, tc.service).HealthCheck
			if check == nil || check.Disable {
				t.Fatalf("healthcheck = %+v, want one", check)
			}
			want := append([]string{"CMD"}, tc.command...)
			if got := []string(check.Test); !slices.Equal(got, want) {
				t.Errorf("healthcheck test = %q, want %q", got, want)
			}
			if check.Interval == nil || check.Timeout == nil || check.Retries == nil {
				t.Errorf("healthcheck %+v: want an interval, a timeout and retries", check)
			}
		})
	}
}

// wgetCheck is a health check that busybox's wget runs inside the container: GET path on port.
func wgetCheck(port int, path string) []string {
	return []string{"wget", "-q", "-O", "/dev/null", fmt.Sprintf("http://127.0.0.1:%d%s", port, path)}
}

func TestComposeStartsServicesOnceTheirDependenciesAreHealthy(t *testing.T) {
	p := project(t)
	for _, tc := range []struct {
		service   string
		dependsOn []string
	}{
		{attrcacheService, []string{mysqlService, redisService}},
		{grafanaService, []string{prometheusService}},
		{mysqlService, nil},
		{redisService, nil},
		{prometheusService, nil},
	} {
		t.Run(tc.service, func(t *testing.T) {
			deps := service(t, p, tc.service).DependsOn
			for _, dep := range tc.dependsOn {
				if got := deps[dep].Condition; got != types.ServiceConditionHealthy {
					t.Errorf("depends_on %s: condition = %q, want %q", dep, got, types.ServiceConditionHealthy)
				}
			}
			if len(deps) != len(tc.dependsOn) {
				t.Errorf("depends_on = %v, want %v alone", deps, tc.dependsOn)
			}
		})
	}
}

func TestComposeKeepsMySQLDataInANamedVolume(t *testing.T) {
	p := project(t)
	const volume, dataDir = "mysql-data", "/var/lib/mysql"
	volumes := service(t, p, mysqlService).Volumes
	if len(volumes) != 1 || volumes[0].Type != types.VolumeTypeVolume || volumes[0].Source != volume || volumes[0].Target != dataDir {
		t.Errorf("mysql volumes = %+v, want only the volume %s at %s", volumes, volume, dataDir)
	}
	if _, ok := p.Volumes[volume]; !ok {
		t.Errorf("top-level volumes = %v, want %s declared", p.Volumes, volume)
	}
}

func TestComposeBindMountsAreReadOnlyRepositoryFiles(t *testing.T) {
	p := project(t)
	root := repoPath(t, ".")
	for _, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			t.Run(svc.Name+":"+v.Target, func(t *testing.T) {
				if rel, err := filepath.Rel(root, v.Source); err != nil || !filepath.IsLocal(rel) {
					t.Errorf("source %s is outside the repository", v.Source)
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("source: %v", err)
				}
				if !v.ReadOnly {
					t.Errorf("bind mount of %s is writable, want read-only", v.Source)
				}
			})
		}
	}
}

// hostPath returns the file of the host that a container of svc sees at containerPath through
// its bind mounts, and false when no bind mount covers containerPath.
func hostPath(svc types.ServiceConfig, containerPath string) (string, bool) {
	var found string
	longest := -1
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, err := filepath.Rel(v.Target, containerPath)
		if err != nil || !filepath.IsLocal(rel) || len(v.Target) <= longest {
			continue
		}
		found, longest = filepath.Join(v.Source, rel), len(v.Target)
	}
	return found, longest >= 0
}

func TestComposeMountsTheMonitoringConfiguration(t *testing.T) {
	p := project(t)
	grafana := service(t, p, grafanaService)
	for _, tc := range []struct {
		service       string
		containerPath string // where the image reads the file
		repoFile      string
	}{
		{prometheusService, "/etc/prometheus/prometheus.yml", "configs/prometheus.yml"},
		{grafanaService, "/etc/grafana/provisioning/datasources/prometheus.yml",
			"configs/grafana/provisioning/datasources/prometheus.yml"},
		{grafanaService, "/etc/grafana/provisioning/dashboards/attrcache.yml",
			"configs/grafana/provisioning/dashboards/attrcache.yml"},
		{grafanaService, envValue(grafana, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"),
			"configs/grafana/dashboards/attrcache.json"},
	} {
		t.Run(tc.repoFile, func(t *testing.T) {
			got, ok := hostPath(service(t, p, tc.service), tc.containerPath)
			if want := repoPath(t, tc.repoFile); !ok || got != want {
				t.Fatalf("%s:%s is %q (mounted: %v), want %s", tc.service, tc.containerPath, got, ok, want)
			}
			if _, err := os.Stat(got); err != nil {
				t.Errorf("mounted file: %v", err)
			}
		})
	}
}

// readYAML decodes the YAML file rel of the repository into v.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// settingEnvNames returns the environment variable of every setting of configs/attrcache.yaml:
// ATTRCACHE_ and the setting's YAML path in upper case, with _ between the parts.
func settingEnvNames(t *testing.T) []string {
	t.Helper()
	var settings map[string]any
	readYAML(t, "configs/attrcache.yaml", &settings)
	var names []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for key, value := range m {
			if sub, ok := value.(map[string]any); ok {
				walk(prefix+key+"_", sub)
				continue
			}
			names = append(names, strings.ToUpper(prefix+key))
		}
	}
	walk("ATTRCACHE_", settings)
	if !slices.Contains(names, "ATTRCACHE_HTTP_ADDR") {
		t.Fatalf("configs/attrcache.yaml gives %v, want ATTRCACHE_HTTP_ADDR among them", names)
	}
	return names
}

func TestComposeGivesAttrcacheOnlyVariablesItReads(t *testing.T) {
	known := append(settingEnvNames(t), fixedEnvNames...)
	env := service(t, project(t), attrcacheService).Environment
	for name := range env {
		if !slices.Contains(known, name) {
			t.Errorf("environment %s: attrcache reads no such variable", name)
		}
	}
	for _, name := range []string{"ATTRCACHE_MYSQL_DSN", "ATTRCACHE_REDIS_URL"} {
		if env[name] == nil {
			t.Errorf("environment %s is unset, want it set to reach the compose service", name)
		}
	}
}

func TestComposeRequiresTheSecretKey(t *testing.T) {
	_, err := loadProject(t, nil)
	if err == nil || !strings.Contains(err.Error(), "ATTRCACHE_SECRET_KEY") {
		t.Errorf("loading without ATTRCACHE_SECRET_KEY: error %v, want one naming it", err)
	}
	attrcache := service(t, project(t), attrcacheService)
	if got := envValue(attrcache, "ATTRCACHE_SECRET_KEY"); got != placeholderSecretKey {
		t.Errorf("attrcache's ATTRCACHE_SECRET_KEY = %q, want the one from compose's environment", got)
	}
}

// TestComposeStopGracePeriodCoversDrainAndShutdown checks that Docker's stop_grace_period
// leaves attrcache, after SIGTERM, its drain delay and then its shutdown timeout (each from the
// compose environment, else from configs/attrcache.yaml) before it is killed.
func TestComposeStopGracePeriodCoversDrainAndShutdown(t *testing.T) {
	var cfg struct {
		HTTP struct {
			ShutdownTimeout string `yaml:"shutdown_timeout"`
			DrainDelay      string `yaml:"drain_delay"`
		} `yaml:"http"`
	}
	readYAML(t, "configs/attrcache.yaml", &cfg)
	svc := service(t, project(t), attrcacheService)
	setting := func(envName, fromFile string) time.Duration {
		t.Helper()
		value := fromFile
		if v := envValue(svc, envName); v != "" {
			value = v
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			t.Fatalf("%s: %v", envName, err)
		}
		return d
	}
	shutdown := setting("ATTRCACHE_HTTP_SHUTDOWN_TIMEOUT", cfg.HTTP.ShutdownTimeout)
	drain := setting("ATTRCACHE_HTTP_DRAIN_DELAY", cfg.HTTP.DrainDelay)
	if drain <= 0 {
		t.Errorf("attrcache drains for %v after SIGTERM, want a drain delay so that a load balancer can take it out", drain)
	}
	grace := svc.StopGracePeriod
	if grace == nil || time.Duration(*grace) <= drain+shutdown {
		t.Errorf("stop_grace_period = %v, want more than http.drain_delay %v + http.shutdown_timeout %v", grace, drain, shutdown)
	}
}

// instruction is one instruction of a Dockerfile, continuation lines joined.
type instruction struct {
	keyword string // upper case
	args    string
}

// readDockerfile returns the instructions of the Dockerfile at path, comments left out.
func readDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var pending strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if continued, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(continued + " ")
			continue
		}
		pending.WriteString(line)
		keyword, args, _ := strings.Cut(pending.String(), " ")
		out = append(out, instruction{keyword: strings.ToUpper(keyword), args: strings.TrimSpace(args)})
		pending.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stages splits a Dockerfile's instructions at each FROM; each stage starts with its FROM.
func stages(instructions []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range instructions {
		if in.keyword == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

// lastArgs returns the arguments of the last instruction of stage with keyword, "" when none.
func lastArgs(stage []instruction, keyword string) string {
	for _, in := range slices.Backward(stage) {
		if in.keyword == keyword {
			return in.args
		}
	}
	return ""
}

// goDirective returns the Go version that go.mod's go directive names.
func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if version, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return version
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// envVars returns the variables the ENV instructions of stage set (the KEY=value form).
func envVars(t *testing.T, stage []instruction) map[string]string {
	t.Helper()
	vars := make(map[string]string)
	for _, in := range stage {
		if in.keyword != "ENV" {
			continue
		}
		for _, pair := range strings.Fields(in.args) {
			name, value, ok := strings.Cut(pair, "=")
			if !ok {
				t.Fatalf("ENV %s: want the KEY=value form", in.args)
			}
			vars[name] = value
		}
	}
	return vars
}

func TestDockerfile(t *testing.T) {
	build := service(t, project(t), attrcacheService).Build
	if build == nil {
		t.Fatal("attrcache has no build section")
	}
	path := build.Dockerfile
	if !filepath.IsAbs(path) {
		path = filepath.Join(build.Context, path)
	}
	if want := repoPath(t, "Dockerfile"); path != want {
		t.Fatalf("attrcache is built from %s, want %s", path, want)
	}
	all := stages(readDockerfile(t, path))
	if len(all) < 2 {
		t.Fatalf("%d stages, want a build stage and a final stage", len(all))
	}
	final := all[len(all)-1]

	t.Run("build stage uses go.mod's Go", func(t *testing.T) {
		want := "golang:" + goDirective(t)
		image, _, _ := strings.Cut(lastArgs(all[0], "FROM"), " ")
		if image != want && !strings.HasPrefix(image, want+"-") {
			t.Errorf("FROM %s, want %s or a variant of it", image, want)
		}
	})
	t.Run("static trimmed build", func(t *testing.T) {
		var run string
		for _, stage := range all[:len(all)-1] {
			for _, in := range stage {
				if in.keyword == "RUN" && strings.Contains(in.args, "go build") {
					run = in.args
				}
			}
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "-X main.commit="} {
			if !strings.Contains(run, want) {
				t.Errorf("go build step %q lacks %s", run, want)
			}
		}
	})
	t.Run("final stage runs as a non-root user", func(t *testing.T) {
		user, _, _ := strings.Cut(lastArgs(final, "USER"), ":")
		if user == "" || user == "root" || user == "0" {
			t.Errorf("final USER %q, want a non-root user", user)
		}
	})
	t.Run("final stage exposes the service port", func(t *testing.T) {
		if got, want := lastArgs(final, "EXPOSE"), fmt.Sprint(attrcachePort); got != want {
			t.Errorf("EXPOSE %s, want %s", got, want)
		}
	})
	t.Run("final stage sets only variables attrcache reads", func(t *testing.T) {
		known := append(settingEnvNames(t), fixedEnvNames...)
		vars := envVars(t, final)
		for name := range vars {
			if !slices.Contains(known, name) {
				t.Errorf("ENV %s: attrcache reads no such variable", name)
			}
		}
		addr := vars["ATTRCACHE_HTTP_ADDR"]
		if want := net.JoinHostPort("0.0.0.0", fmt.Sprint(attrcachePort)); addr != want {
			t.Errorf("ATTRCACHE_HTTP_ADDR = %q, want %q: every interface of the container", addr, want)
		}
	})
}
