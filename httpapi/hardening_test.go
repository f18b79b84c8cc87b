package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
)

// TestEveryAnswerForbidsCachingAndSniffing checks Cache-Control: no-store and
// X-Content-Type-Options: nosniff on answers of every kind: success, refusal, 400, 404, 405,
// 413, health and metrics.
func TestEveryAnswerForbidsCachingAndSniffing(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{
		Metrics:        metrics.New(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		MaxBodyBytes:   1 << 10,
	})
	u := newUser(t, false, nil)
	tests := []struct {
		name       string
		call       call
		wantStatus int
	}{
		{"login", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": u.password, "current_app": app})}, 200},
		{"refused login", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": "wrong", "current_app": app})}, 403},
		{"attribute read", call{method: http.MethodGet, path: pathUserAttr, body: jsonOf(withCaller(u, map[string]any{"name": "n"}))}, 200},
		{"malformed body", call{method: http.MethodPost, path: pathLogin, body: "{"}, 400},
		{"unknown path", call{method: http.MethodGet, path: "/no/such/path"}, 404},
		{"unsupported verb", call{method: http.MethodPut, path: pathUser}, 405},
		{"body too large", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": strings.Repeat("u", 2048)})}, 413},
		{"healthz", call{method: http.MethodGet, path: "/healthz"}, 200},
		{"readyz", call{method: http.MethodGet, path: "/readyz"}, 200},
		{"metrics", call{method: http.MethodGet, path: "/metrics"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(h, tt.call)
			if res.status != tt.wantStatus {
				t.Fatalf("HTTP %d %s, want %d", res.status, res.raw, tt.wantStatus)
			}
			for header, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
				if got := res.header.Values(header); len(got) != 1 || got[0] != want {
					t.Errorf("%s: %q, want %q", header, got, want)
				}
			}
		})
	}
}

// TestMadeUpMethodsAddNoSeries sends many requests with made-up methods, to a routed path, a
// path routed for other methods only and an unknown path, and checks that the metrics label them
// all "other": the series do not grow with the methods.
func TestMadeUpMethodsAddNoSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{
		Metrics:        metrics.New(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	paths := []string{"/healthz", pathLogin, "/no/such/path"}
	send := func(from, to int) {
		for i := from; i < to; i++ {
			for _, path := range paths {
				if res := serve(h, call{method: fmt.Sprintf("X%08x", i), path: path}); res.status >= 500 {
					t.Fatalf("made-up method on %s: HTTP %d %s", path, res.status, res.raw)
				}
			}
		}
	}
	scrape := func() string {
		t.Helper()
		res := serve(h, call{method: http.MethodGet, path: "/metrics"})
		if res.status != http.StatusOK {
			t.Fatalf("GET /metrics: HTTP %d", res.status)
		}
		return string(res.raw)
	}
	scrape() // so that the scrapes' own series exist before the count
	send(0, 1)
	before := scrape()
	send(1, 200)
	after := scrape()

	if got := strings.Count(after, "X0000"); got != 0 {
		t.Errorf("the metrics hold %d made-up methods as labels", got)
	}
	for _, family := range []string{"attrcache_http_requests_total{", "attrcache_http_request_duration_seconds_count{"} {
		if got, want := strings.Count(after, family), strings.Count(before, family); got != want {
			t.Errorf("%s series: %d after 200 made-up methods, want %d as after one", family, got, want)
		}
	}
	for _, path := range paths {
		route := path
		if path == "/no/such/path" {
			route = "unmatched"
		}
		want := fmt.Sprintf(`attrcache_http_requests_total{method="other",route=%q,status="405"} 200`, route)
		if route == "unmatched" {
			want = fmt.Sprintf(`attrcache_http_requests_total{method="other",route=%q,status="404"} 200`, route)
		}
		if !strings.Contains(after, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
