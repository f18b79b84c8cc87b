package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgress: on a terminal the bar is redrawn in place (\r) with the count, rate and time
// left, at most every barEvery; elsewhere a plain line at most every plainEvery; both show the
// final state.
func TestProgress(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		want []string
	}{
		{"terminal", true, []string{"\r[###############...............]  50.0% 500/1000 100/s ETA 5s", "\r[" + strings.Repeat("#", barWidth) + "] 100.0% 1000/1000 100/s ETA 0s"}},
		{"pipe", false, []string{"progress: 500/1000 (50.0%) 100/s eta 5s\n", "progress: 1000/1000 (100.0%) 100/s eta 0s\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := &progress{w: &out, tty: tc.tty, now: func() time.Time { return now }}
			p.start(1000)
			for done := int64(1); done <= 1000; done++ { // 100 units a second
				now = now.Add(10 * time.Millisecond)
				p.update(done)
			}
			p.finish()
			for _, want := range tc.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%q", want, out.String())
				}
			}
			if tc.tty {
				if draws := strings.Count(out.String(), "\r"); draws > 10_000/int(barEvery/time.Millisecond)+3 {
					t.Errorf("the bar was drawn %d times in 10 s, want at most once per %v", draws, barEvery)
				}
				if !strings.HasSuffix(out.String(), "\n") {
					t.Errorf("the bar's line is not ended: %q", out.String())
				}
			} else if n := strings.Count(out.String(), "\n"); n > 10+3 || strings.Contains(out.String(), "\r") {
				t.Errorf("%d plain lines in 10 s (want at most one a second), carriage returns: %v", n, strings.Contains(out.String(), "\r"))
			}
		})
	}
}
