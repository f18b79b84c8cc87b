package main

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/attrcache/attrcache/metrics/metricstest"
)

// scrape returns the samples that GET /metrics of s serves, keyed by series.
func (s *servingTest) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	status, body := s.get(t, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d %s", status, body)
	}
	samples, err := metricstest.ParseSamples(body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return samples
}

// TestServeMetrics checks that the metrics of a running server move with real requests, labelled
// by route template, and that the pool, build and purger metrics are exported.
func TestServeMetrics(t *testing.T) {
	createUser(t, "create-super-user", "metrics-admin", "Me4sure-everything")
	s := startServe(t, map[string]string{"ATTRCACHE_PURGE_INTERVAL": "100ms"})
	status, answer := s.call(t, http.MethodPost, "/zato/sso/user/login",
		map[string]any{"username": "metrics-admin", "password": "Me4sure-everything", "current_app": "CRM"})
	ust, _ := answer["ust"].(string)
	if status != http.StatusOK || ust == "" {
		t.Fatalf("login: HTTP %d %v, want 200 and a ust", status, answer)
	}
	attrCall := func(method string, body map[string]any) {
		t.Helper()
		body["ust"], body["current_app"] = ust, "CRM"
		if status, answer := s.call(t, method, "/zato/sso/user/attr", body); status != http.StatusOK || answer["status"] != "ok" {
			t.Fatalf("%s /zato/sso/user/attr: HTTP %d %v, want 200 ok", method, status, answer)
		}
	}

	t.Run("requests and cache look-ups", func(t *testing.T) {
		before := s.scrape(t)
		// The first read misses and leaves an absent marker in Redis; the second hits it.
		attrCall(http.MethodGet, map[string]any{"name": "never-set"})
		attrCall(http.MethodGet, map[string]any{"name": "never-set"})
		s.get(t, "/zato/sso/user/attr/no-such-path")
		after := s.scrape(t)

		tests := []struct {
			series string
			want   float64
		}{
			{`attrcache_cache_requests_total{op="attr",result="miss"}`, 1},
			{`attrcache_cache_requests_total{op="attr",result="hit"}`, 1},
			{`attrcache_http_requests_total{method="GET",route="/zato/sso/user/attr",status="200"}`, 2},
			{`attrcache_http_requests_total{method="GET",route="unmatched",status="404"}`, 1},
		}
		for _, tt := range tests {
			if got := after[tt.series] - before[tt.series]; got != tt.want {
				t.Errorf("%s grew by %v, want %v", tt.series, got, tt.want)
			}
		}
		for series := range after {
			if strings.Contains(series, "no-such-path") {
				t.Errorf("a series is labelled with a raw path: %s", series)
			}
		}
	})

	t.Run("pools and build", func(t *testing.T) {
		samples := s.scrape(t)
		if got := samples[`attrcache_mysql_connections{state="open"}`]; got < 1 {
			t.Errorf(`attrcache_mysql_connections{state="open"} = %v, want at least 1`, got)
		}
		for _, series := range []string{`attrcache_mysql_max_open_connections`, `attrcache_redis_connections{state="open"}`, `attrcache_redis_pool_hits_total`} {
			if _, ok := samples[series]; !ok {
				t.Errorf("/metrics lacks %s", series)
			}
		}
		isBuildInfo := func(series string) bool { return strings.HasPrefix(series, "attrcache_build_info{") }
		if !slices.ContainsFunc(slices.Collect(maps.Keys(samples)), isBuildInfo) {
			t.Error("/metrics lacks attrcache_build_info")
		}
	})

	t.Run("purger", func(t *testing.T) {
		const purged = `attrcache_expired_rows_purged_total{kind="attr"}`
		before := s.scrape(t)[purged]
		attrCall(http.MethodPut, map[string]any{"name": "short-lived", "value": "soon gone", "expiration": 1})
		pollUntil(t, "the purger to delete the expired attribute and count the live session", func() bool {
			samples := s.scrape(t)
			return samples[purged] > before && samples["attrcache_active_sessions"] >= 1
		})
	})

	if err := s.stop(); err != nil {
		t.Errorf("serve after cancellation returned %v, want nil", err)
	}
}
