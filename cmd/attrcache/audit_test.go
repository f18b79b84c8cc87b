package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
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

// TestCommandAuditLines: the sso commands and keys rewrap write their lines to the configured
// sink, with remote_addr "cli" and no actor, and no password, value, TOTP key or secret key.
func TestCommandAuditLines(t *testing.T) {
	r := newRotation(t, "cmd_audit")
	sink := filepath.Join(t.TempDir(), "audit.jsonl")
	password, newPassword := "Aud1t-first-pw", "Aud1t-second-pw"
	totpKey := "JBSWY3DPEHPK3PXP"
	value := "audited-value-" + strings.ToLower(attrcache.NewUserID()[len("zusr"):])
	command := func(keys, stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(t.Context(), args, testEnv(mergeVars(r.vars(keys), map[string]string{"ATTRCACHE_AUDIT_SINK": sink})),
			strings.NewReader(stdin), &out, &errOut)
		if strings.Contains(errOut.String(), `"operation"`) {
			t.Errorf("attrcache %s wrote an audit line to standard error with audit.sink a file:\n%s", strings.Join(args, " "), errOut.String())
		}
		return out.String(), err
	}
	mustCommand := func(keys, stdin string, args ...string) string {
		t.Helper()
		out, err := command(keys, stdin, args...)
		if err != nil {
			t.Fatalf("attrcache %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	userID := strings.TrimSpace(mustCommand(r.onlyK1(), "", "sso", "create-user", "audited", "--password", password))
	mustCommand(r.onlyK1(), newPassword+"\n", "sso", "change-user-password", "audited")
	mustCommand(r.onlyK1(), "", "sso", "lock-user", "audited")
	mustCommand(r.onlyK1(), "", "sso", "unlock-user", "audited")
	setEncryptedAttr(t, r, "audited", newPassword, value)
	mustCommand(r.onlyK1(), "", "sso", "reset-totp-key", "audited", "--key", totpKey)
	if _, err := command(r.onlyK1(), "", "sso", "lock-user", "nobody-by-that-name"); err == nil {
		t.Error("lock-user of an unknown user succeeded")
	}
	if out := mustCommand(r.onlyK1(), "", "sso", "export-user", "audited"); !strings.Contains(out, value) {
		t.Errorf("export-user printed %q, want the attribute's value in it", out)
	}
	// The value and the TOTP key, sealed with k1, opened and sealed again with k2.
	if out := mustCommand(r.both(), "", "keys", "rewrap"); !strings.HasPrefix(out, "re-sealed 2 values") {
		t.Errorf("keys rewrap printed %q, want 2 values re-sealed", out)
	}
	mustCommand(r.both(), "", "keys", "status")
	mustCommand(r.both(), "", "sso", "delete-user", "audited")

	raw, err := os.ReadFile(sink)
	if err != nil {
		t.Fatal(err)
	}
	type line struct {
		Time    string `json:"time"`
		CID     string `json:"cid"`
		Actor   string `json:"actor_user_id"`
		Target  string `json:"target_user_id"`
		Op      string `json:"operation"`
		Remote  string `json:"remote_addr"`
		Outcome string `json:"outcome"`
	}
	want := []line{
		{Target: userID, Op: "admin.user.create", Outcome: "ok"},
		{Target: userID, Op: "admin.password.change", Outcome: "ok"},
		{Target: userID, Op: "admin.user.lock", Outcome: "ok"},
		{Target: userID, Op: "admin.user.unlock", Outcome: "ok"},
		{Target: userID, Op: "admin.totp.reset", Outcome: "ok"},
		{Op: "admin.user.lock", Outcome: attrcache.CodeNotAllowed},
		{Target: userID, Op: "admin.user.export", Outcome: "ok"},
		{Op: "admin.keys.rewrap", Outcome: "ok"},
		{Target: userID, Op: "admin.user.delete", Outcome: "ok"},
	}
	var got []line
	for text := range strings.Lines(string(raw)) {
		var l line
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("line %q: %v", text, err)
		}
		if l.Time == "" {
			t.Errorf("line %q has no time", text)
		}
		l.Time = ""
		got = append(got, l)
	}
	for i := range want {
		want[i].Remote = "cli"
	}
	if !slices.Equal(got, want) {
		t.Errorf("the sink holds\n%+v\nwant\n%+v", got, want)
	}
	for what, secret := range map[string]string{"first password": password, "new password": newPassword, "value": value,
		"TOTP key": totpKey, "key k1": r.k1, "key k2": r.k2} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit sink holds the %s", what)
		}
	}
}

// TestCommandAuditStderr: with the default sink, a command's line goes to standard error.
func TestCommandAuditStderr(t *testing.T) {
	userID := createUser(t, "create-user", "audited-stderr", "Aud1t-stderr-pw")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"sso", "lock-user", "audited-stderr"}, testEnv(nil), strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(errOut.Bytes(), &entry); err != nil {
		t.Fatalf("standard error holds %q, want one audit line: %v", errOut.String(), err)
	}
	if entry["operation"] != "admin.user.lock" || entry["target_user_id"] != userID || entry["remote_addr"] != "cli" {
		t.Errorf("standard error's line %v, want admin.user.lock of %s from cli", entry, userID)
	}
}

// mergeVars returns the variables of a and b, b's where both have one.
func mergeVars(a, b map[string]string) map[string]string {
	merged := maps.Clone(a)
	maps.Copy(merged, b)
	return merged
}

// setEncryptedAttr logs username in through the Go API over r's database (with its first key
// alone) and sets an encrypted attribute holding value.
func setEncryptedAttr(t *testing.T, r *rotation, username, password, value string) {
	t.Helper()
	_, _, b := r.openBackends(t, r.onlyK1())
	defer b.close()
	res, err := b.api.Login(t.Context(), "test", sso.LoginInput{Username: username, Password: password, CurrentApp: testApp})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	attrs, err := b.api.UserAttrs(t.Context(), "test", "", res.UST, testApp, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := attrs.Set(t.Context(), "card", value, sso.Encrypt(true)); err != nil {
		t.Fatalf("Set: %v", err)
	}
}
