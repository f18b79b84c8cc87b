package main

import (
	"strings"
	"testing"
)

// A buffered line reaches the output without Close, within the flush interval; what is still
// buffered at Close is written then; after Close, writes go straight through.
func TestBufferedLog(t *testing.T) {
	out := &syncBuffer{}
	b := newBufferedLog(out)
	if _, err := b.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the first line to be flushed", func() bool { return out.String() == "first\n" })

	big := strings.Repeat("x", logBufferBytes) + "\n" // larger than the buffer: written at once
	if _, err := b.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first\n"+big {
		t.Fatalf("a write larger than the buffer was held back (%d bytes out)", len(got))
	}
	if _, err := b.Write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, big+"last\n") {
		t.Fatalf("Close did not write out the buffered line: ends %q", got[max(0, len(got)-20):])
	}
	if _, err := b.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, "last\nafter\n") {
		t.Fatalf("a write after Close did not go straight through")
	}
}
