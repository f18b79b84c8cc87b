package loadtest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a Run: the totals and one entry per operation the mix used.
// Latencies are in milliseconds.
type Report struct {
	Mode        string     `json:"mode"`   // "closed" or "open"
	Driver      string     `json:"driver"` // "builtin" or "wrk"
	Mix         string     `json:"mix"`
	Concurrency int        `json:"concurrency"`
	Rate        float64    `json:"rate,omitempty"` // scheduled requests/s, open loop only
	Seconds     float64    `json:"seconds"`        // wall-clock time of the run
	Total       OpReport   `json:"total"`
	Ops         []OpReport `json:"operations"`
}

// OpReport is what one operation (or, as Report.Total, every operation) measured.
type OpReport struct {
	Op         string  `json:"op"`
	Count      uint64  `json:"count"`  // requests answered, errors included
	Errors     int64   `json:"errors"` // requests that failed
	Throughput float64 `json:"throughput"`
	Latency    Latency `json:"latency_ms"`
	// ErrorsByCode counts the failures by the code the target gave (a sub_status code with
	// its HTTP status, or a transport failure).
	ErrorsByCode map[string]int64 `json:"errors_by_code,omitempty"`
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func newReport(opts Options, elapsed time.Duration, recorders []recorder) *Report {
	r := &Report{Mode: "closed", Driver: "builtin", Mix: opts.Mix.String(), Concurrency: opts.Concurrency, Seconds: elapsed.Seconds()}
	if opts.Rate > 0 {
		r.Mode, r.Rate = "open", opts.Rate
	}
	var all Histogram
	allErrors := make(map[string]int64)
	for op := range numOps {
		if !opts.Mix.Uses(op) {
			continue
		}
		var h Histogram
		errs := make(map[string]int64)
		for i := range recorders {
			h.Merge(&recorders[i].latency[op])
			for code, n := range recorders[i].errors[op] {
				errs[code] += n
				allErrors[code] += n
			}
		}
		all.Merge(&h)
		r.Ops = append(r.Ops, newOpReport(op.String(), &h, errs, elapsed))
	}
	r.Total = newOpReport("total", &all, allErrors, elapsed)
	return r
}

func newOpReport(name string, h *Histogram, errs map[string]int64, elapsed time.Duration) OpReport {
	rep := OpReport{Op: name, Count: h.Count(), Latency: latencyOf(h)}
	if elapsed > 0 {
		rep.Throughput = float64(h.Count()) / elapsed.Seconds()
	}
	for _, n := range errs {
		rep.Errors += n
	}
	if len(errs) > 0 {
		rep.ErrorsByCode = errs
	}
	return rep
}

// latencyOf summarises h.
func latencyOf(h *Histogram) Latency {
	return Latency{
		Mean: millis(h.Mean()),
		P50:  millis(h.Quantile(0.50)),
		P90:  millis(h.Quantile(0.90)),
		P99:  millis(h.Quantile(0.99)),
		P999: millis(h.Quantile(0.999)),
		Max:  millis(h.Max()),
	}
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteText writes the report as a table of the operations and their latency percentiles,
// followed by the errors by code.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s loop", r.Mode)
	if r.Driver == "wrk" {
		b.WriteString(" (wrk)")
	}
	fmt.Fprintf(&b, ", mix %s, concurrency %d", r.Mix, r.Concurrency)
	if r.Mode == "open" {
		fmt.Fprintf(&b, ", rate %g/s", r.Rate)
	}
	fmt.Fprintf(&b, ", %.2f s\n\n", r.Seconds)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\treq/s\tmean ms\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, op := range append(slices.Clone(r.Ops), r.Total) {
		l := op.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n",
			op.Op, op.Count, op.Errors, op.Throughput, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Total.ErrorsByCode) > 0 {
		b.WriteString("\nerrors by code:\n")
		for _, op := range r.Ops {
			for _, code := range slices.Sorted(maps.Keys(op.ErrorsByCode)) {
				fmt.Fprintf(&b, "  %-10s %-28s %d\n", op.Op, code, op.ErrorsByCode[code])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
