package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
)

// logLines returns the JSON log lines written to buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, entry)
	}
	return lines
}

func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	h := httpapi.NewServer(api, httpapi.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	u := newUser(t, false, nil)
	loginInput := jsonOf(map[string]any{"username": u.username, "password": u.password, "current_app": app})

	tests := []struct {
		name          string
		call          call
		wantRoute     string
		wantStatus    float64
		wantSubStatus []any
	}{
		{"login", call{method: http.MethodPost, path: pathLogin, body: loginInput}, pathLogin, 200, []any{}},
		{"refused login", call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": "wrong-secret-pass", "current_app": app})},
			pathLogin, 403, []any{attrcache.CodeNotAllowed}},
		{"unknown path", call{method: http.MethodGet, path: "/no/such/path"}, "unmatched", 404, []any{attrcache.CodeInvalidInput}},
		{"unsupported verb", call{method: http.MethodPut, path: pathUser}, pathUser, 405, []any{attrcache.CodeInvalidInput}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			res := serve(h, tt.call)
			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1:\n%s", len(lines), buf.String())
			}
			line := lines[0]
			want := map[string]any{"cid": res.body["cid"], "method": tt.call.method, "route": tt.wantRoute,
				"status": tt.wantStatus, "remote_addr": "192.0.2.1"}
			for key, value := range want {
				if line[key] != value {
					t.Errorf("log %s = %#v, want %#v", key, line[key], value)
				}
			}
			if got := jsonOf(line["sub_status"]); got != jsonOf(tt.wantSubStatus) {
				t.Errorf("log sub_status = %s, want %s", got, jsonOf(tt.wantSubStatus))
			}
			if _, ok := line["latency"]; !ok {
				t.Errorf("log line has no latency: %v", line)
			}
			issued, _ := res.body["ust"].(string)
			for _, secret := range []string{u.password, "wrong-secret-pass", u.ust, issued} {
				if secret != "" && strings.Contains(buf.String(), secret) {
					t.Errorf("the log holds a secret: %s", buf.String())
				}
			}
		})
	}
}

func TestHealth(t *testing.T) {
	var buf bytes.Buffer
	const detail = "dial tcp 10.9.8.7:3306: secret-detail"
	tests := []struct {
		name       string
		ready      func(ctx context.Context) error
		path       string
		wantStatus int
		wantCode   string
		wantLogged string // in the log, never in the response
	}{
		{"healthz", nil, "/healthz", 200, "", ""},
		{"readyz without a check", nil, "/readyz", 200, "", ""},
		{"readyz, ready", func(context.Context) error { return nil }, "/readyz", 200, "", ""},
		{"readyz, not ready", func(context.Context) error { return errors.New(detail) }, "/readyz", 503, attrcache.CodeInternalError, detail},
		{"readyz panics", func(context.Context) error { panic("boom: " + detail) }, "/readyz", 500, attrcache.CodeInternalError, detail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			h := httpapi.NewServer(api, httpapi.Options{Ready: tt.ready, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
			res := serve(h, call{method: http.MethodGet, path: tt.path})
			if tt.wantCode == "" {
				wantOK(t, res)
				return
			}
			wantError(t, res, tt.wantStatus, tt.wantCode)
			if strings.Contains(string(res.raw), "secret-detail") {
				t.Errorf("the response %s holds the internal detail", res.raw)
			}
			if !strings.Contains(buf.String(), tt.wantLogged) || !strings.Contains(buf.String(), res.body["cid"].(string)) {
				t.Errorf("the log does not hold the detail %q with the cid:\n%s", tt.wantLogged, buf.String())
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := httpapi.NewServer(api, httpapi.Options{
		Metrics:        metrics.New(reg),
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	u := newUser(t, false, nil)
	serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": u.password, "current_app": app})})
	serve(h, call{method: http.MethodPost, path: pathLogin, body: jsonOf(map[string]any{"username": u.username, "password": "wrong-password", "current_app": app})})
	serve(h, call{method: http.MethodGet, path: "/no/such/path/1"})
	serve(h, call{method: http.MethodGet, path: "/no/such/path/2"})
	serve(h, call{method: http.MethodPut, path: pathUser})

	res := serve(h, call{method: http.MethodGet, path: "/metrics"})
	if res.status != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d %s", res.status, res.raw)
	}
	for _, want := range []string{
		`attrcache_http_requests_total{method="POST",route="/zato/sso/user/login",status="200"} 1`,
		`attrcache_http_requests_total{method="POST",route="/zato/sso/user/login",status="403"} 1`,
		`attrcache_http_requests_total{method="GET",route="unmatched",status="404"} 2`,
		`attrcache_http_requests_total{method="PUT",route="/zato/sso/user",status="405"} 1`,
		`attrcache_logins_total{outcome="ok"} 1`,
		`attrcache_logins_total{outcome="E005001"} 1`,
		`attrcache_http_errors_total{route="/zato/sso/user/login",sub_status="` + attrcache.CodeNotAllowed + `"} 1`,
		`attrcache_http_errors_total{route="unmatched",sub_status="` + attrcache.CodeInvalidInput + `"} 2`,
		`attrcache_http_errors_total{route="/zato/sso/user",sub_status="` + attrcache.CodeInvalidInput + `"} 1`,
	} {
		if !strings.Contains(string(res.raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(res.raw), "/no/such/path") {
		t.Errorf("metrics are labelled with a raw unknown path")
	}
}
