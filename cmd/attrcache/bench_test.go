package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func TestBench(t *testing.T) {
	createUser(t, "create-super-user", "bench-admin", "B3nch-marked")
	s := startServe(t, nil)
	tests := []struct {
		name     string
		args     []string
		wantMany int
	}{
		{"with --many", []string{"--users", "3", "--attrs", "20", "--many", "10"}, 10},
		// The default --many of 100 would exceed --attrs: it takes --attrs instead.
		{"--many defaults to at most --attrs", []string{"--users", "16", "--attrs", "20"}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkBenchRun(t, s.baseURL, tt.args, tt.wantMany)
		})
	}
}

// checkBenchRun runs `attrcache bench` with args for 200 requests and checks its report.
func checkBenchRun(t *testing.T, baseURL string, args []string, wantMany int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench", "--url", baseURL, "--username", "bench-admin", "--password", "B3nch-marked",
		"--requests", "200", "--concurrency", "8", "--value-size", "50", "--json"}, args...)
	if err := run(t.Context(), args, testEnv(nil), strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("attrcache bench: %v\n%s", err, stderr.String())
	}
	var report struct {
		Mode        string
		Concurrency int
		Many        int
		Total       struct{ Count, Errors int64 }
		Operations  []struct {
			Op           string
			Count        int64
			Errors       int64
			ErrorsByCode map[string]int64                `json:"errors_by_code"`
			Latency      struct{ P50, P99, Max float64 } `json:"latency_ms"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, stdout.String())
	}
	if report.Mode != "closed" || report.Concurrency != 8 || report.Many != wantMany {
		t.Errorf("mode %q, concurrency %d, many %d; want closed, 8, %d", report.Mode, report.Concurrency, report.Many, wantMany)
	}
	if report.Total.Count != 200 || report.Total.Errors != 0 {
		t.Errorf("total: %d requests, %d errors; want 200 without errors\n%s", report.Total.Count, report.Total.Errors, stdout.String())
	}
	var ops []string
	var sum int64
	for _, op := range report.Operations {
		ops = append(ops, op.Op)
		sum += op.Count
		if op.Errors != 0 {
			t.Errorf("%s: %d errors %v, want none", op.Op, op.Errors, op.ErrorsByCode)
		}
		if op.Count > 0 && (op.Latency.P50 <= 0 || op.Latency.P50 > op.Latency.P99 || op.Latency.P99 > op.Latency.Max) {
			t.Errorf("%s: p50 %v, p99 %v, max %v ms; want 0 < p50 ≤ p99 ≤ max", op.Op, op.Latency.P50, op.Latency.P99, op.Latency.Max)
		}
	}
	if got, want := strings.Join(ops, ","), "get,set,set_many,get_many"; got != want {
		t.Errorf("operations %s, want %s", got, want)
	}
	if sum != 200 {
		t.Errorf("the operations count %d requests in all, want 200", sum)
	}
	if strings.Contains(stderr.String(), "B3nch-marked") || strings.Contains(stdout.String(), "B3nch-marked") {
		t.Error("the output holds the password")
	}
}

// TestBenchFeed: with --feed, the report counts one change feed event per PUT of the load, with
// its delivery lag, and leaves out what was committed before the load.
func TestBenchFeed(t *testing.T) {
	createUser(t, "create-super-user", "bench-feed-admin", "B3nch-fed")
	s := startServe(t, nil)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "--url", s.baseURL, "--username", "bench-feed-admin", "--password", "B3nch-fed",
		"--requests", "200", "--concurrency", "8", "--users", "3", "--attrs", "20", "--mix", "set=100", "--feed", "--json"}
	if err := run(t.Context(), args, testEnv(nil), strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("attrcache bench: %v\n%s", err, stderr.String())
	}
	var report struct {
		Total struct{ Count, Errors int64 }
		Feed  *struct {
			Events  int64
			Earlier int64
			Lag     struct{ P50, P99, Max float64 } `json:"lag_ms"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, stdout.String())
	}
	if report.Total.Count != 200 || report.Total.Errors != 0 {
		t.Fatalf("total: %d requests, %d errors; want 200 without errors", report.Total.Count, report.Total.Errors)
	}
	if report.Feed == nil {
		t.Fatalf("the report has no feed:\n%s", stdout.String())
	}
	if f := report.Feed; f.Events != 200 || f.Lag.P50 <= 0 || f.Lag.P50 > f.Lag.P99 || f.Lag.P99 > f.Lag.Max {
		t.Errorf("feed: %d events, lag p50 %v, p99 %v, max %v ms; want 200 events, 0 < p50 ≤ p99 ≤ max", f.Events, f.Lag.P50, f.Lag.P99, f.Lag.Max)
	}
}

// TestBenchWrk: --driver wrk drives each operation through wrk for the duration, and the report
// counts its requests, none failed, with wrk's latencies.
func TestBenchWrk(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (make bench installs it)")
	}
	createUser(t, "create-super-user", "bench-wrk-admin", "B3nch-wrked")
	s := startServe(t, nil)
	for _, op := range []string{"get", "set", "set_many", "get_many"} {
		t.Run(op, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := []string{"bench", "--url", s.baseURL, "--username", "bench-wrk-admin", "--password", "B3nch-wrked",
				"--driver", "wrk", "--wrk-threads", "2", "--duration", "1s", "--concurrency", "4",
				"--users", "3", "--attrs", "20", "--many", "10", "--mix", op + "=1", "--json"}
			if err := run(t.Context(), args, testEnv(nil), strings.NewReader(""), &stdout, &stderr); err != nil {
				t.Fatalf("attrcache bench: %v\n%s", err, stderr.String())
			}
			var report struct {
				Mode, Driver string
				Total        struct {
					Count, Errors int64
					Throughput    float64
					Latency       struct{ P50, P99, Max float64 } `json:"latency_ms"`
				}
				Operations []struct {
					Op    string
					Count int64
				}
			}
			if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
				t.Fatalf("the report is not JSON: %v\n%s", err, stdout.String())
			}
			tot := report.Total
			if report.Mode != "closed" || report.Driver != "wrk" || tot.Count == 0 || tot.Errors != 0 || tot.Throughput <= 0 {
				t.Errorf("mode %q, driver %q, %d requests, %d errors, %v req/s; want closed, wrk, some requests and no errors\n%s",
					report.Mode, report.Driver, tot.Count, tot.Errors, tot.Throughput, stdout.String())
			}
			if l := tot.Latency; l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.Max {
				t.Errorf("p50 %v, p99 %v, max %v ms; want 0 < p50 ≤ p99 ≤ max", l.P50, l.P99, l.Max)
			}
			if len(report.Operations) != 1 || report.Operations[0].Op != op || report.Operations[0].Count != tot.Count {
				t.Errorf("operations %+v, want one, %s, of every request", report.Operations, op)
			}
			if strings.Contains(stderr.String()+stdout.String(), "B3nch-wrked") {
				t.Error("the output holds the password")
			}
		})
	}
}

func TestBenchRefuses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a remote URL", []string{"--url", "http://192.0.2.1:17010", "--ust", "x"}, "not a loopback address"},
		{"an unknown operation", []string{"--mix", "get=1,frob=2", "--ust", "x"}, `unknown operation "frob"`},
		{"no credentials", nil, "give --username"},
		{"no password", []string{"--username", "root"}, "no password"},
		{"an unbounded run", []string{"--ust", "x", "--duration", "0"}, "unbounded"},
		{"more items than attributes", []string{"--ust", "x", "--attrs", "5", "--many", "6"}, "many 6"},
		{"an unknown driver", []string{"--ust", "x", "--driver", "ab"}, `--driver "ab"`},
		{"wrk with a rate", []string{"--ust", "x", "--driver", "wrk", "--mix", "get=1", "--rate", "10"}, "closed loop only"},
		{"wrk with a number of requests", []string{"--ust", "x", "--driver", "wrk", "--mix", "get=1", "--requests", "10"}, "not a number of requests"},
		{"wrk with a mix", []string{"--ust", "x", "--driver", "wrk", "--mix", "get=1,set=1"}, "one operation at a time"},
		{"wrk with more threads than connections", []string{"--ust", "x", "--driver", "wrk", "--mix", "get=1", "--concurrency", "2", "--wrk-threads", "3"}, "wrk threads 3"},
		{"no wrk", []string{"--ust", "x", "--driver", "wrk", "--mix", "get=1", "--wrk", "./no-such-wrk"}, "no-such-wrk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens on port 1: a check that passed would fail on connecting instead.
			args := append([]string{"bench", "--url", "http://127.0.0.1:1"}, tt.args...)
			_, err := runCLI(t, "", args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
