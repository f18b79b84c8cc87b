package loadtest

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestWriteLuaString(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	writeLuaString(w, []byte("{\"ust\":\"a\\\\b\"}\n\x7fé"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `"{\034ust\034:\034a\092\092b\034}\010\127\195\169"`
	if out.String() != want {
		t.Errorf("writeLuaString = %s, want %s", out.String(), want)
	}
}

func TestWrkReport(t *testing.T) {
	mix, err := ParseMix("set=1")
	if err != nil {
		t.Fatal(err)
	}
	out := "Running 10s test @ http://127.0.0.1:1/zato/sso/user/attr\n  2 threads and 64 connections\n" +
		wrkMarker + `{"duration_us":2000000,"requests":5000,"errors":{"connect":0,"read":1,"write":0,"status":2,"timeout":0},` +
		`"latency_us":{"mean":1500.5,"p50":1200,"p90":2500,"p99":4000,"p99_9":9000,"max":12000}}` + "\n"
	r, err := wrkReport([]byte(out), OpSet, Options{Mix: mix, Concurrency: 64})
	if err != nil {
		t.Fatal(err)
	}
	tot := r.Total
	if r.Driver != "wrk" || r.Mode != "closed" || r.Seconds != 2 || tot.Count != 5000 || tot.Throughput != 2500 || tot.Errors != 3 {
		t.Errorf("report %+v, want wrk, closed, 2 s, 5000 requests at 2500/s, 3 errors", r)
	}
	if tot.ErrorsByCode["read"] != 1 || tot.ErrorsByCode["HTTP status not 2xx"] != 2 || len(tot.ErrorsByCode) != 2 {
		t.Errorf("errors by code %v, want read 1 and HTTP status not 2xx 2", tot.ErrorsByCode)
	}
	if l := tot.Latency; l.Mean != 1.5005 || l.P50 != 1.2 || l.P99 != 4 || l.P999 != 9 || l.Max != 12 {
		t.Errorf("latency %+v, want mean 1.5005, p50 1.2, p99 4, p99.9 9, max 12 ms", l)
	}
	if len(r.Ops) != 1 || r.Ops[0].Op != "set" || r.Ops[0].Count != 5000 {
		t.Errorf("operations %+v, want set with every request", r.Ops)
	}
	if _, err := wrkReport([]byte("Running 10s test\n"), OpSet, Options{Mix: mix}); err == nil || !strings.Contains(err.Error(), "no results") {
		t.Errorf("wrkReport of output without results: %v, want an error", err)
	}
}
