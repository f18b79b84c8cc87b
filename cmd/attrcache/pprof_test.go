package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIsLoopbackHostPort(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:6060", true},
		{"127.0.0.1:0", true},
		{"127.1.2.3:6060", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"LocalHost:6060", true},
		{":6060", false},
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"10.0.0.1:6060", false},
		{"example.com:6060", false},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := isLoopbackHostPort(tt.addr); got != tt.want {
				t.Errorf("isLoopbackHostPort(%q) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

// loggedPprofAddr returns the address of serve's JSON log line "pprof listening", or "".
func loggedPprofAddr(log string) string {
	for line := range strings.Lines(log) {
		var entry struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "pprof listening" {
			return entry.Addr
		}
	}
	return ""
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// TestServePprof checks that debug.pprof_addr serves the profiles on a listener of its own, never
// on the API's, that serve closes it when it stops, and that by default nothing serves them.
func TestServePprof(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		s := startServe(t, nil)
		if addr := loggedPprofAddr(s.stderr.String()); addr != "" {
			t.Errorf("serve with the default config logged pprof listening on %s, want no pprof listener", addr)
		}
		if status, _ := httpGet(t, s.baseURL+"/debug/pprof/"); status != http.StatusNotFound {
			t.Errorf("GET /debug/pprof/ on the API: HTTP %d, want 404", status)
		}
		if err := s.stop(); err != nil {
			t.Errorf("serve after cancellation returned %v, want nil", err)
		}
	})

	t.Run("on its own listener", func(t *testing.T) {
		s := startServe(t, map[string]string{"ATTRCACHE_DEBUG_PPROF_ADDR": "127.0.0.1:0"})
		addr := loggedPprofAddr(s.stderr.String()) // logged before the API's "listening"
		if addr == "" {
			t.Fatalf("serve with debug.pprof_addr logged no pprof listening line:\n%s", s.stderr)
		}
		if addr == s.addr {
			t.Fatalf("pprof listens on the API's address %s", addr)
		}

		status, body := httpGet(t, "http://"+addr+"/debug/pprof/")
		if status != http.StatusOK || !strings.Contains(body, "goroutine") {
			t.Errorf("GET /debug/pprof/ on %s: HTTP %d, want 200 and the profile index listing goroutine", addr, status)
		}
		status, body = httpGet(t, "http://"+addr+"/debug/pprof/goroutine?debug=1")
		if status != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
			t.Errorf("GET /debug/pprof/goroutine?debug=1: HTTP %d, want 200 and a goroutine profile", status)
		}
		if status, _ := httpGet(t, s.baseURL+"/debug/pprof/"); status != http.StatusNotFound {
			t.Errorf("GET /debug/pprof/ on the API: HTTP %d, want 404", status)
		}

		if err := s.stop(); err != nil {
			t.Errorf("serve after cancellation returned %v, want nil", err)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("pprof still accepts connections on %s after serve returned", addr)
		}
	})
}
