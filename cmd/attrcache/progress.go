package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress shows how far a long command is: on a terminal a bar redrawn in place with the count,
// the rate and the time left; elsewhere (a pipe, a log file) a plain line at most every
// plainEvery, so that logs stay readable.
type progress struct {
	w       io.Writer
	tty     bool
	total   int64
	done    int64
	began   time.Time
	shown   time.Time // when the last line or bar was written
	started bool
	now     func() time.Time
}

// Progress display pacing.
const (
	barEvery   = 100 * time.Millisecond
	plainEvery = time.Second
	barWidth   = 30
)

// newProgress returns a progress display on w, a bar when w is a terminal.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), now: time.Now}
}

// start begins the display of total units of work.
func (p *progress) start(total int64) {
	p.total, p.began, p.started = total, p.now(), true
	p.show(true)
}

// update records that done units are finished, and shows it when it is time to.
func (p *progress) update(done int64) {
	p.done = done
	p.show(false)
}

// finish shows the final state and ends the bar's line.
func (p *progress) finish() {
	if !p.started {
		return
	}
	p.show(true)
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// show writes the state when force is set or enough time has passed since the last one.
func (p *progress) show(force bool) {
	now := p.now()
	every := plainEvery
	if p.tty {
		every = barEvery
	}
	if !force && now.Sub(p.shown) < every {
		return
	}
	p.shown = now
	elapsed := now.Sub(p.began)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed.Seconds()
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(max(p.total-p.done, 0)) / rate * float64(time.Second))).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = min(100, 100*float64(p.done)/float64(p.total))
	}
	if p.tty {
		filled := int(pct / 100 * barWidth)
		fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d/%d %.0f/s ETA %s\x1b[K", strings.Repeat("#", filled),
			strings.Repeat(".", barWidth-filled), pct, p.done, p.total, rate, eta)
		return
	}
	fmt.Fprintf(p.w, "progress: %d/%d (%.1f%%) %.0f/s eta %s\n", p.done, p.total, pct, rate, eta)
}
