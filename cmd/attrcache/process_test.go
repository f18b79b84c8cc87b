package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envRunMain, set in the environment of the test binary, makes it run main() instead of the
// tests: startServeProcess runs `attrcache serve` that way, as a process of its own that a real
// signal can reach.
const envRunMain = "ATTRCACHE_TEST_RUN_MAIN"

// serveProcess is `attrcache serve` running as a process of its own on a free port.
type serveProcess struct {
	*servingTest
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and exitErr is set
	// exitErr is what waiting for the process returned: nil when it exited with status 0.
	exitErr error
}

// startServeProcess runs `attrcache serve` with the test settings plus extra as a child process
// and waits until /healthz answers. The child is the test binary (see envRunMain), or with built
// a binary `go build` makes, without the race detector, whose memory figures are the product's.
// At the end of the test the process gets SIGTERM, and SIGKILL if it has not exited 30 s later.
func startServeProcess(t *testing.T, extra map[string]string, built bool) *serveProcess {
	t.Helper()
	settings := map[string]string{"ATTRCACHE_HTTP_ADDR": "127.0.0.1:0", "ATTRCACHE_LOG_FORMAT": "json", "ATTRCACHE_LOG_LEVEL": "info"}
	for k, v := range extra {
		settings[k] = v
	}
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), envRunMain + "=1"}
	if built {
		bin := filepath.Join(t.TempDir(), "attrcache")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		cmd = exec.Command(bin, "serve")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	for k, v := range testEnvVars(settings) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting serve: %v", err)
	}
	p := &serveProcess{servingTest: &servingTest{stderr: stderr}, cmd: cmd, exited: make(chan struct{})}
	p.stop = func() error { return fmt.Errorf("a serving process is stopped by a signal") }
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if p.hasExited() {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	pollUntil(t, "serve to log its address", func() bool {
		if p.hasExited() {
			t.Fatalf("serve exited before listening: %v\n%s", p.exitErr, stderr)
		}
		p.addr = loggedAddr(stderr.String())
		p.baseURL = "http://" + p.addr
		return p.addr != ""
	})
	pollUntil(t, "/healthz", func() bool { return p.healthy(context.Background()) == nil })
	return p
}

// hasExited reports whether the process has exited.
func (p *serveProcess) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// waitExit waits, within a bound, for the process to exit and returns what waiting returned.
func (p *serveProcess) waitExit(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(bound):
		t.Fatalf("serve did not exit within %v of the signal", bound)
		return nil
	}
}

// healthy returns nil when /healthz answers 200 within 5 s.
func (p *serveProcess) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// peakRSS returns the process's peak resident set size (VmHWM), in bytes.
func (p *serveProcess) peakRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("no /proc to read the peak RSS from: %v", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmHWM", p.cmd.Process.Pid)
	return 0
}
