package sso_test

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache/sso"
)

// BenchmarkAuditLogRecord is what an audited call adds to its path: encoding its line and
// queueing it (the writer goroutine writes to io.Discard).
func BenchmarkAuditLogRecord(b *testing.B) {
	audit := sso.NewAuditLog(io.Discard, 4<<20)
	defer audit.Close()
	entry := sso.AuditEntry{Time: time.Now(), CID: "0123456789abcdef01234567", Actor: "zusr53mtyj3azey5w0v2tfwcppxhrg",
		Target: "zusr53mtyj3azey5w0v2tfwcppxhrg", Operation: "attr.get", Attrs: []string{"bench-attr-00"},
		RemoteAddr: "192.0.2.1", Outcome: sso.OutcomeOK}
	b.ReportAllocs()
	for b.Loop() {
		audit.Record(b.Context(), entry)
	}
	b.StopTimer()
	if audit.Dropped() > 0 {
		b.Logf("%d of the lines dropped: the writer fell behind", audit.Dropped())
	}
}

// TestAuditLogLine: a line is one JSON object with the entry's fields, whatever characters they
// hold, the optional ones left out when empty.
func TestAuditLogLine(t *testing.T) {
	tests := []struct {
		name  string
		entry sso.AuditEntry
		want  string
	}{
		{"plain", sso.AuditEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("CET", 3600)), CID: "c1", Actor: "a", Target: "t",
			Operation: "attr.get", Attrs: []string{"x", "y"}, RemoteAddr: "192.0.2.1", Outcome: "ok"},
			`{"time":"2026-01-02T02:04:05.000006Z","cid":"c1","actor_user_id":"a","target_user_id":"t","operation":"attr.get","attrs":["x","y"],"remote_addr":"192.0.2.1","outcome":"ok"}`},
		{"failed login", sso.AuditEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Username: "bob", Operation: "login", Outcome: "E005001"},
			`{"time":"2026-01-02T03:04:05.000000Z","cid":"","actor_user_id":"","target_user_id":"","username":"bob","operation":"login","remote_addr":"","outcome":"E005001"}`},
		{"escapes", sso.AuditEntry{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Operation: "attr.set",
			Attrs: []string{"q\"uote", `back\slash`, "<tag>&", "é\u2028", "tab\t"}, Outcome: "ok"},
			`{"time":"2026-01-02T03:04:05.000000Z","cid":"","actor_user_id":"","target_user_id":"","operation":"attr.set","attrs":["q\"uote","back\\slash","\u003ctag\u003e\u0026","é\u2028","tab\t"],"remote_addr":"","outcome":"ok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink strings.Builder
			audit := sso.NewAuditLog(&sink, 1<<20)
			audit.Record(t.Context(), tt.entry)
			if err := audit.Close(); err != nil {
				t.Fatal(err)
			}
			if got := sink.String(); got != tt.want+"\n" {
				t.Errorf("line\n%s\nwant\n%s", got, tt.want)
			}
			// The command line's writer writes the same line, at once.
			var direct strings.Builder
			sso.NewAuditWriter(&direct).Record(t.Context(), tt.entry)
			if got := direct.String(); got != tt.want+"\n" {
				t.Errorf("AuditWriter's line\n%s\nwant\n%s", got, tt.want)
			}
			var decoded map[string]any
			if err := json.Unmarshal([]byte(sink.String()), &decoded); err != nil {
				t.Errorf("the line is not JSON: %v", err)
			}
			if attrs, _ := decoded["attrs"].([]any); len(attrs) != len(tt.entry.Attrs) || (len(attrs) > 0 && attrs[0] != tt.entry.Attrs[0]) {
				t.Errorf("attrs decode as %v, want %q", decoded["attrs"], tt.entry.Attrs)
			}
		})
	}
}

// failingWriter refuses every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestAuditWriterErr: the first failed write is what Err returns.
func TestAuditWriterErr(t *testing.T) {
	audit := sso.NewAuditWriter(failingWriter{})
	if err := audit.Err(); err != nil {
		t.Fatalf("Err before any line = %v, want nil", err)
	}
	audit.Record(t.Context(), sso.AuditEntry{Operation: "admin.user.lock", Outcome: sso.OutcomeOK})
	if err := audit.Err(); err == nil || err.Error() != "disk full" {
		t.Errorf("Err after a failed write = %v, want the writer's error", err)
	}
}
