package attrcache_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	module      = "github.com/attrcache/attrcache"
	mysqlDriver = "github.com/go-sql-driver/mysql"
)

// pkgInfo is one package of the build graph as `go list -deps` reports it.
type pkgInfo struct {
	standard bool
	imports  []string
}

// loadGraph returns every package that the module's packages (tests excluded) build from, by
// import path.
func loadGraph(t *testing.T) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-f", `{{.ImportPath}} {{.Standard}} {{join .Imports " "}}`, "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	graph := make(map[string]pkgInfo)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			t.Fatalf("go list: unexpected line %q", sc.Text())
		}
		graph[fields[0]] = pkgInfo{standard: fields[1] == "true", imports: fields[2:]}
	}
	return graph
}

// importChain returns the shortest chain of imports from the package from to a package for which
// forbidden is true, or nil when there is none.
func importChain(graph map[string]pkgInfo, from string, forbidden func(string) bool) []string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		for _, dep := range graph[pkg].imports {
			if _, seen := parent[dep]; seen {
				continue
			}
			parent[dep] = pkg
			if forbidden(dep) {
				chain := []string{dep}
				for p := pkg; p != ""; p = parent[p] {
					chain = append(chain, p)
				}
				slices.Reverse(chain)
				return chain
			}
			queue = append(queue, dep)
		}
	}
	return nil
}

// ours reports whether path is one of the named packages of the module ("" is the root).
func ours(names ...string) func(string) bool {
	return func(path string) bool {
		return slices.ContainsFunc(names, func(name string) bool { return path == pkgPath(name) })
	}
}

// inModule reports whether path is a package of the module.
func inModule(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func pkgPath(name string) string {
	if name == "" {
		return module
	}
	return module + "/" + name
}

func TestImportChain(t *testing.T) {
	graph := map[string]pkgInfo{
		"a": {imports: []string{"b", "fmt"}},
		"b": {imports: []string{"c"}},
		"c": {},
	}
	tests := []struct {
		name      string
		forbidden string
		want      []string
	}{
		{"direct import", "b", []string{"a", "b"}},
		{"import through another package", "c", []string{"a", "b", "c"}},
		{"no path", "d", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := importChain(graph, "a", func(p string) bool { return p == tt.forbidden })
			if !slices.Equal(got, tt.want) {
				t.Errorf("importChain(a, %s) = %v, want %v", tt.forbidden, got, tt.want)
			}
		})
	}
}

// TestImportGraph keeps the package layout of ARCHITECTURE.md: each package must not reach,
// directly or through others, the packages its rule forbids.
func TestImportGraph(t *testing.T) {
	graph := loadGraph(t)
	tests := []struct {
		name      string
		pkg       string
		forbidden func(string) bool
	}{
		{"root imports only the standard library", "", func(p string) bool { return !graph[p].standard }},
		{"persist imports neither cache, sso nor httpapi", "persist", ours("cache", "sso", "httpapi")},
		{"cache imports neither persist, sso nor httpapi", "cache", ours("persist", "sso", "httpapi")},
		{"sso imports neither persist, cache nor httpapi", "sso", ours("persist", "cache", "httpapi")},
		{"httpapi imports neither persist nor cache", "httpapi", ours("persist", "cache")},
		{"metrics imports nothing of the module", "metrics", inModule},
		// "C" is cgo, which net uses where it is enabled.
		{"client imports only the standard library", "client", func(p string) bool { return !graph[p].standard && p != "C" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := pkgPath(tt.pkg)
			if _, ok := graph[from]; !ok {
				t.Fatalf("package %s not found in the build graph", from)
			}
			if chain := importChain(graph, from, tt.forbidden); chain != nil {
				t.Errorf("forbidden import: %s", strings.Join(chain, " → "))
			}
		})
	}
}

// TestOnlyPersistImportsTheDriver keeps MySQL's driver inside persist (and the test support that
// creates test databases and stacks over them): everything else sees the database only through the store interfaces.
func TestOnlyPersistImportsTheDriver(t *testing.T) {
	// bench/rawmysql measures the driver alone, the baseline the service is compared with.
	allowed := []string{pkgPath("persist"), pkgPath("internal/testenv"), pkgPath("internal/stacktest"), pkgPath("bench/rawmysql")}
	for path, info := range loadGraph(t) {
		if !inModule(path) || slices.Contains(allowed, path) {
			continue
		}
		if slices.Contains(info.imports, mysqlDriver) {
			t.Errorf("%s imports %s; only %v may", path, mysqlDriver, allowed)
		}
	}
}
