package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// procStatusBytes returns a field of /proc/PID/status given in kB (VmRSS, VmHWM), in bytes.
func (p *serveProcess) procStatusBytes(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, rest, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", p.cmd.Process.Pid, field)
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS.
func (p *serveProcess) resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestExportFiftyThousandAttrsBoundedMemory: the export of a user with 50,000 attributes of
// 1 KiB (about 55 MB of JSON) streams: serve's peak RSS grows by less than maxGrowth while it
// answers, whereas holding the answer, or the attributes, would take more than the answer's size.
func TestExportFiftyThousandAttrsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50,000 attributes")
	}
	const (
		attrs     = 50_000
		valueLen  = 1000
		maxGrowth = 16 << 20
	)
	r := newRotation(t, "export_mem")
	if _, err := r.cli(t, r.onlyK1(), "sso", "create-user", "many", "--password", "Many-pass-1"); err != nil {
		t.Fatal(err)
	}
	p := startServeProcess(t, r.vars(r.onlyK1()), true)
	ust := p.login(t, "many", "Many-pass-1", "")
	pad := strings.Repeat("x", valueLen)
	for start := 0; start < attrs; start += attrcache.MaxAttrItems {
		var data []map[string]any
		for n := start; n < start+attrcache.MaxAttrItems; n++ {
			data = append(data, map[string]any{"name": fmt.Sprintf("a%05d", n), "value": pad, "encrypt": n%2 == 0})
		}
		if status, answer := p.call(t, http.MethodPut, pathUserAttr,
			map[string]any{"ust": ust, "current_app": testApp, "data": data}); status != http.StatusOK {
			t.Fatalf("PUT many: HTTP %d %v", status, answer)
		}
	}

	baseline := p.procStatusBytes(t, "VmRSS")
	p.resetPeakRSS(t)
	body, err := json.Marshal(map[string]any{"ust": ust, "current_app": testApp})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, p.baseURL+"/zato/sso/user/export", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	counted := &countingReader{r: resp.Body}
	var export struct {
		Status string                    `json:"status"`
		Attrs  map[string]map[string]any `json:"attrs"`
	}
	if err := json.NewDecoder(counted).Decode(&export); err != nil {
		t.Fatalf("decoding the export: %v (HTTP %d)", err, resp.StatusCode)
	}
	elapsed := time.Since(started)
	peak := p.procStatusBytes(t, "VmHWM")
	if resp.StatusCode != http.StatusOK || export.Status != "ok" || len(export.Attrs) != attrs {
		t.Fatalf("export: HTTP %d status %q with %d attributes, want 200 ok with %d", resp.StatusCode, export.Status, len(export.Attrs), attrs)
	}
	for _, name := range []string{"a00000", "a00001", "a49999"} {
		if export.Attrs[name]["value"] != pad {
			t.Fatalf("exported %s = %v, want its value", name, export.Attrs[name])
		}
	}
	growth := peak - baseline
	t.Logf("export of %d attributes: %d MB of JSON in %s; serve's RSS %d MiB before, peak %d MiB during (+%d MiB)",
		attrs, counted.n/1e6, elapsed.Round(time.Millisecond), baseline>>20, peak>>20, growth>>20)
	if growth >= maxGrowth {
		t.Errorf("serve's peak RSS grew by %d MiB during the export, want under %d MiB", growth>>20, maxGrowth>>20)
	}
}
