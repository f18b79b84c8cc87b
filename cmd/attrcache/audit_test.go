package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
)

// TestServedAuditFileSink: with audit.sink a file, serve appends a JSON line per call to it, each
// with the response's cid, and counts them on /metrics; the lines go to the file alone, not to
// standard error, and hold no password, UST or value.
func TestServedAuditFileSink(t *testing.T) {
	sink := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(sink, []byte("kept\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unique := strings.ToLower(attrcache.NewUserID()[len("zusr"):])
	username, password, value := "audited-"+unique, "Aud1t-"+unique, "audited-value-"+unique
	userID := createUser(t, "create-user", username, password)
	s := startServe(t, map[string]string{"ATTRCACHE_AUDIT_SINK": sink})

	ust := s.login(t, username, password, "")
	set := s.mustCall(t, http.MethodPut, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "name": "card", "value": value})
	get := s.mustCall(t, http.MethodGet, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "name": "card"})
	pollUntil(t, "attrcache_audit_lines_total to count the three calls", func() bool {
		return s.scrape(t)["attrcache_audit_lines_total"] >= 3
	})
	if dropped := s.scrape(t)["attrcache_audit_dropped_total"]; dropped != 0 {
		t.Errorf("attrcache_audit_dropped_total = %v, want 0", dropped)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(sink)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "kept" {
		t.Fatalf("the sink holds %q, want the line it held and three lines appended", raw)
	}
	want := []struct{ op, cid string }{{"login", ""}, {"attr.set", set["cid"].(string)}, {"attr.get", get["cid"].(string)}}
	for i, w := range want {
		var got struct {
			CID     string `json:"cid"`
			Actor   string `json:"actor_user_id"`
			Target  string `json:"target_user_id"`
			Op      string `json:"operation"`
			Outcome string `json:"outcome"`
			Remote  string `json:"remote_addr"`
		}
		if err := json.Unmarshal([]byte(lines[i+1]), &got); err != nil {
			t.Fatalf("line %q: %v", lines[i+1], err)
		}
		if got.Op != w.op || (w.cid != "" && got.CID != w.cid) || got.Actor != userID || got.Target != userID ||
			got.Outcome != "ok" || got.Remote != "127.0.0.1" {
			t.Errorf("line %d = %+v, want operation %s, cid %q, actor and target %s, outcome ok from 127.0.0.1", i+2, got, w.op, w.cid, userID)
		}
	}
	for what, secret := range map[string]string{"password": password, "UST": ust, "value": value} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit sink holds the %s", what)
		}
	}
	if strings.Contains(s.stderr.String(), `"operation":"attr.set"`) {
		t.Errorf("an audit line went to standard error with audit.sink a file:\n%s", s.stderr)
	}
}

// TestServedAuditStderr: by default the audit lines share standard error with the log, each on a
// line of its own.
func TestServedAuditStderr(t *testing.T) {
	unique := strings.ToLower(attrcache.NewUserID()[len("zusr"):])
	username, password := "audited-err-"+unique, "Aud1t-"+unique
	userID := createUser(t, "create-user", username, password)
	s := startServe(t, nil)
	s.login(t, username, password, "")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	found := false
	for line := range strings.Lines(s.stderr.String()) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("standard error holds a line that is not JSON (a log line and an audit line mixed?): %q", line)
			continue
		}
		if entry["operation"] == "login" && entry["actor_user_id"] == userID {
			found = true
		}
	}
	if !found {
		t.Errorf("standard error holds no audit line of the login:\n%s", s.stderr)
	}
}
