package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// WrkConfig says how to run wrk (https://github.com/wg/wrk), the closed-loop driver in C whose
// CPU per request is a fraction of the built-in driver's: on a machine shared with the service,
// what the driver spends the service does not get.
type WrkConfig struct {
	Path    string        // the wrk executable: a path, or a name looked up in $PATH
	Threads int           // wrk's threads, at most the concurrency
	Timeout time.Duration // a request unanswered for this long counts as a timeout
}

// wrkMarker starts the line of the script's done() that carries the results.
const wrkMarker = "attrcache-wrk-result "

// wrkBodyBudget bounds the bytes of the request bodies the script holds, and wrkMaxRequests
// their number: the script cycles through them, each thread from its own offset.
const (
	wrkBodyBudget  = 8 << 20
	wrkMaxRequests = 4096
)

// RunWrk drives target with wrk, closed loop: opts.Concurrency connections for opts.Duration
// (rounded up to whole seconds), each sending requests of opts.Mix's one operation, for users and
// attributes drawn at random before the run. A request counts as failed when it gets no answer,
// or an answer whose HTTP status is not 2xx; the answers' bodies are not read, so an error
// carried in a 200 (Zato's E004001, a wrong current_app) goes unseen: the built-in driver checks
// those.
func RunWrk(ctx context.Context, t *ZatoTarget, opts Options, cfg WrkConfig) (*Report, error) {
	op, path, err := cfg.Check(opts)
	if err != nil {
		return nil, err
	}
	script, err := os.CreateTemp("", "attrcache-bench-*.lua")
	if err != nil {
		return nil, err
	}
	defer os.Remove(script.Name())
	err = t.writeWrkScript(script, op, rand.New(rand.NewPCG(opts.Seed, opts.Seed>>1)))
	if closeErr := script.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the wrk script: %w", err)
	}

	seconds := int((opts.Duration + time.Second - 1) / time.Second)
	args := []string{"-t", strconv.Itoa(cfg.Threads), "-c", strconv.Itoa(opts.Concurrency),
		"-d", strconv.Itoa(seconds) + "s", "-s", script.Name()}
	if cfg.Timeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(int((cfg.Timeout+time.Second-1)/time.Second))+"s")
	}
	args = append(args, t.cfg.BaseURL+pathUserAttr)
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "wrk: %s, %d threads, %d connections, %ds\n", op, cfg.Threads, opts.Concurrency, seconds)
		// The line a caller waits for to know that the load has been running for a second.
		running := time.AfterFunc(time.Second, func() { fmt.Fprintln(opts.Progress, "wrk: load running") })
		defer running.Stop()
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return wrkReport(stdout.Bytes(), op, opts)
}

// Check returns the one operation of opts that wrk is to drive and the path of wrk, or why
// wrk cannot run opts: an open loop, a bound in requests, a mix of several operations, more
// threads than connections, no wrk installed.
func (cfg WrkConfig) Check(opts Options) (Op, string, error) {
	if err := opts.Validate(); err != nil {
		return 0, "", err
	}
	switch {
	case opts.Rate > 0:
		return 0, "", errors.New("wrk drives the closed loop only; the open loop (a rate) needs the built-in driver")
	case opts.Requests > 0:
		return 0, "", errors.New("wrk runs for a duration, not a number of requests")
	case cfg.Threads < 1 || cfg.Threads > opts.Concurrency:
		return 0, "", fmt.Errorf("wrk threads %d: want from 1 to the concurrency (%d)", cfg.Threads, opts.Concurrency)
	}
	var ops []Op
	for op := range numOps {
		if opts.Mix.Uses(op) {
			ops = append(ops, op)
		}
	}
	if len(ops) != 1 {
		return 0, "", fmt.Errorf("mix %s: wrk drives one operation at a time", opts.Mix)
	}
	path, err := exec.LookPath(cfg.Path)
	if err != nil {
		return 0, "", fmt.Errorf("wrk: %w", err)
	}
	return ops[0], path, nil
}

// writeWrkScript writes the Lua script that sends requests of op: bodies built as Do builds
// them, for users and attributes drawn with rng, which wrk cycles through.
func (t *ZatoTarget) writeWrkScript(w *os.File, op Op, rng *rand.Rand) error {
	b := bufio.NewWriter(w)
	method := "GET"
	if op == OpSet || op == OpSetMany {
		method = "PUT"
	}
	fmt.Fprintf(b, "-- written by attrcache bench for one run of wrk: %s requests\n", op)
	b.WriteString("local bodies = {\n")
	var body []byte
	for n, size := 0, 0; n < wrkMaxRequests && (n == 0 || size < wrkBodyBudget); n++ {
		u := &t.users[rng.IntN(len(t.users))]
		first := rng.IntN(len(t.names))
		switch op {
		case OpGet:
			body = t.getBody(body[:0], u, first)
		case OpSet:
			body = t.setBody(body[:0], u, first)
		case OpSetMany:
			body = t.setManyBody(body[:0], u, first, t.cfg.Many)
		case OpGetMany:
			body = t.getManyBody(body[:0], u, first, t.cfg.Many)
		}
		size += len(body)
		b.WriteString("  ")
		writeLuaString(b, body)
		b.WriteString(",\n")
	}
	fmt.Fprintf(b, "}\nlocal method = %q\n", method)
	b.WriteString(wrkScriptBody)
	return b.Flush()
}

// writeLuaString writes s as a Lua string literal: bytes other than printable ASCII, and the
// quote and the backslash, as decimal escapes.
func writeLuaString(b *bufio.Writer, s []byte) {
	b.WriteByte('"')
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			fmt.Fprintf(b, "\\%03d", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
}

// wrkScriptBody is the rest of the script: each thread formats the requests once, then sends
// them in turn from its own offset; done() prints the results as one JSON line after wrkMarker
// (latencies in microseconds).
const wrkScriptBody = `
local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

local requests = {}
local i = 0
function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format(method, nil, headers, body)
  end
  bodies = nil
  i = (thread_index * 7919) % #requests
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format('` + wrkMarker + `{"duration_us":%d,"requests":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%f,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d,"max":%d}}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
`

// wrkResult is the JSON line of the script's done().
type wrkResult struct {
	DurationUS int64 `json:"duration_us"`
	Requests   int64 `json:"requests"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"`
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	LatencyUS struct {
		Mean float64 `json:"mean"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		P999 int64   `json:"p99_9"`
		Max  int64   `json:"max"`
	} `json:"latency_us"`
}

// wrkReport turns wrk's output into a Report of op.
func wrkReport(out []byte, op Op, opts Options) (*Report, error) {
	var line []byte
	for l := range bytes.Lines(out) {
		if rest, ok := bytes.CutPrefix(l, []byte(wrkMarker)); ok {
			line = rest
		}
	}
	if line == nil {
		return nil, fmt.Errorf("wrk printed no results: %s", strings.TrimSpace(string(out)))
	}
	var res wrkResult
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, fmt.Errorf("wrk's results: %w", err)
	}
	if res.DurationUS <= 0 {
		return nil, fmt.Errorf("wrk's results: a run of %d µs", res.DurationUS)
	}
	errs := map[string]int64{}
	for code, n := range map[string]int64{
		"connect": res.Errors.Connect, "read": res.Errors.Read, "write": res.Errors.Write,
		"HTTP status not 2xx": res.Errors.Status, "timeout": res.Errors.Timeout,
	} {
		if n > 0 {
			errs[code] = n
		}
	}
	seconds := float64(res.DurationUS) / 1e6
	ms := func(us int64) float64 { return float64(us) / 1e3 }
	total := OpReport{
		Op: "total", Count: uint64(res.Requests), Throughput: float64(res.Requests) / seconds,
		Latency: Latency{
			Mean: res.LatencyUS.Mean / 1e3, P50: ms(res.LatencyUS.P50), P90: ms(res.LatencyUS.P90),
			P99: ms(res.LatencyUS.P99), P999: ms(res.LatencyUS.P999), Max: ms(res.LatencyUS.Max),
		},
	}
	for _, n := range errs {
		total.Errors += n
	}
	if len(errs) > 0 {
		total.ErrorsByCode = errs
	}
	one := total
	one.Op = op.String()
	return &Report{
		Mode: "closed", Mix: opts.Mix.String(), Concurrency: opts.Concurrency, Seconds: seconds,
		Driver: "wrk", Total: total, Ops: []OpReport{one},
	}, nil
}
