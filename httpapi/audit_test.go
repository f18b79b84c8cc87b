package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/sso"
)

// lockedBuffer is a bytes.Buffer the audit log's writer fills while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// auditLine is what an audit line should say; cid is the response's.
type auditLine struct {
	cid, actor, target, username, op, outcome string
	attrs                                     []string
}

// TestAuditLog: a scripted sequence of calls over HTTP leaves one line per call on the audit
// sink, in order, each with the call's cid, actor, target, operation, attribute names, address
// and outcome, and not one of the secrets or values the calls carried.
func TestAuditLog(t *testing.T) {
	sink := &lockedBuffer{}
	audit := sso.NewAuditLog(sink, 1<<20)
	t.Cleanup(func() { audit.Close() })
	h := httpapi.NewServer(newAPI(func(c *sso.Config) { c.Audit = audit }), httpapi.Options{})

	email := "audit-" + uniqueName("mail") + "@example.com"
	u := newUser(t, false, func(in *sso.CreateUserInput) { in.Email = &email })
	secrets := map[string]string{"the admin's password": admin.password, "the user's password": u.password,
		"the admin's UST": admin.ust, "the e-mail": email}
	var want []auditLine
	// send makes one call as input and expects its line to say line (cid filled in here).
	send := func(method, path string, input map[string]any, line auditLine) *response {
		t.Helper()
		res := serve(h, call{method: method, path: path, body: jsonOf(input)})
		checkCID(t, res)
		line.cid = res.body["cid"].(string)
		want = append(want, line)
		return res
	}

	res := send(http.MethodPost, pathLogin, map[string]any{"username": u.username, "password": u.password, "current_app": app},
		auditLine{actor: u.id, target: u.id, op: "login", outcome: "ok"})
	wantOK(t, res)
	u.ust = res.body["ust"].(string)
	secrets["the user's UST"] = u.ust
	res = send(http.MethodPost, pathLogin, map[string]any{"username": u.username, "password": "wrong-" + u.password, "current_app": app},
		auditLine{username: u.username, op: "login", outcome: "E005001"})
	wantError(t, res, http.StatusForbidden, "E005001")
	secrets["the wrong password"] = "wrong-" + u.password

	values := map[string]string{"plain value": "audit-value-plain-7f3a", "encrypted value": "audit-value-sealed-91bc",
		"session value": "audit-value-session-44d0"}
	for what, value := range values {
		secrets[what] = value
	}
	wantOK(t, send(http.MethodPut, pathUserAttr, withCaller(u, map[string]any{"data": []any{
		map[string]any{"name": "a1", "value": values["plain value"]},
		map[string]any{"name": "a2", "value": values["encrypted value"], "encrypt": true},
	}}), auditLine{actor: u.id, target: u.id, op: "attr.set", attrs: []string{"a1", "a2"}, outcome: "ok"}))
	wantOK(t, send(http.MethodGet, pathUserAttr, withCaller(u, map[string]any{"data": []any{"a1", "a2"}}),
		auditLine{actor: u.id, target: u.id, op: "attr.get", attrs: []string{"a1", "a2"}, outcome: "ok"}))
	wantOK(t, send(http.MethodGet, pathUserAttr, withCaller(u, map[string]any{"name": "a1"}), // cached now
		auditLine{actor: u.id, target: u.id, op: "attr.get", attrs: []string{"a1"}, outcome: "ok"}))
	wantOK(t, send(http.MethodDelete, pathUserAttr, withCaller(u, map[string]any{"data": []any{"a1", "gone"}}),
		auditLine{actor: u.id, target: u.id, op: "attr.delete", attrs: []string{"a1", "gone"}, outcome: "ok"}))
	wantOK(t, send(http.MethodGet, pathUserAttr, withCaller(admin, map[string]any{"user_id": u.id, "name": "a2"}),
		auditLine{actor: admin.id, target: u.id, op: "attr.get", attrs: []string{"a2"}, outcome: "ok"}))
	wantError(t, send(http.MethodGet, pathUserAttr, withCaller(u, map[string]any{"user_id": admin.id, "name": "a2"}),
		auditLine{actor: u.id, target: admin.id, op: "attr.get", attrs: []string{"a2"}, outcome: "E005001"}),
		http.StatusForbidden, "E005001")
	wantOK(t, send(http.MethodPut, pathSessionAttr, withCaller(u, map[string]any{"target_ust": u.ust, "name": "s1", "value": values["session value"]}),
		auditLine{actor: u.id, target: u.id, op: "session_attr.set", attrs: []string{"s1"}, outcome: "ok"}))

	newEmail := "audit-new-" + uniqueName("mail") + "@example.com"
	secrets["the new e-mail"] = newEmail
	wantOK(t, send(http.MethodPatch, pathUser, withCaller(u, map[string]any{"email": newEmail, "display_name": "Audited"}),
		auditLine{actor: u.id, target: u.id, op: "user.update", outcome: "ok"}))
	newPassword := "new-" + u.password
	secrets["the new password"] = newPassword
	wantOK(t, send(http.MethodPatch, pathPassword, withCaller(u, map[string]any{"old_password": u.password, "new_password": newPassword}),
		auditLine{actor: u.id, target: u.id, op: "password.change", outcome: "ok"}))
	const totpKey = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"
	secrets["the TOTP key"] = totpKey
	wantOK(t, send(http.MethodPatch, pathTOTP, withCaller(admin, map[string]any{"user_id": u.id, "totp_key": totpKey, "totp_label": "audit"}),
		auditLine{actor: admin.id, target: u.id, op: "totp.reset", outcome: "ok"}))
	wantOK(t, send(http.MethodPost, pathLock, withCaller(admin, map[string]any{"user_id": u.id}),
		auditLine{actor: admin.id, target: u.id, op: "user.lock", outcome: "ok"}))
	wantError(t, send(http.MethodGet, pathExport, withCaller(u, nil),
		auditLine{actor: u.id, target: u.id, op: "user.export", outcome: "E005002"}), http.StatusForbidden, "E005002")
	wantOK(t, send(http.MethodDelete, pathLock, withCaller(admin, map[string]any{"user_id": u.id}),
		auditLine{actor: admin.id, target: u.id, op: "user.unlock", outcome: "ok"}))
	u.password = newPassword
	u.ust = ""
	res = send(http.MethodPost, pathLogin, map[string]any{"username": u.username, "password": u.password, "current_app": app},
		auditLine{actor: u.id, target: u.id, op: "login", outcome: "ok"})
	wantOK(t, res)
	u.ust = res.body["ust"].(string)
	secrets["the user's second UST"] = u.ust
	res = send(http.MethodGet, pathExport, withCaller(u, nil), auditLine{actor: u.id, target: u.id, op: "user.export", outcome: "ok"})
	wantOK(t, res)
	if !strings.Contains(string(res.raw), values["encrypted value"]) {
		t.Fatalf("the export %s lacks the attribute's value: the test would not see it leak", res.raw)
	}
	wantOK(t, send(http.MethodPost, pathLogout, withCaller(u, nil), auditLine{actor: u.id, target: u.id, op: "logout", outcome: "ok"}))

	if err := audit.Close(); err != nil {
		t.Fatalf("closing the audit log: %v", err)
	}
	got := sink.String()
	checkAuditLines(t, got, want)
	for what, secret := range secrets {
		if strings.Contains(got, secret) {
			t.Errorf("the audit sink holds %s %q:\n%s", what, secret, got)
		}
	}
	if n := audit.Written(); n != uint64(len(want)) {
		t.Errorf("Written() = %d, want %d", n, len(want))
	}
}

// checkAuditLines fails the test unless sink holds exactly the lines want describes, in order.
func checkAuditLines(t *testing.T, sink string, want []auditLine) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(sink, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("the sink holds %d lines, want %d:\n%s", len(lines), len(want), sink)
	}
	for i, raw := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatalf("line %d %s is not a JSON object: %v", i+1, raw, err)
		}
		w := want[i]
		fields := map[string]string{"cid": w.cid, "actor_user_id": w.actor, "target_user_id": w.target,
			"operation": w.op, "outcome": w.outcome, "remote_addr": "192.0.2.1"}
		for key, value := range fields {
			if got[key] != value {
				t.Errorf("line %d (%s) %s = %v, want %q", i+1, w.op, key, got[key], value)
			}
		}
		if name, _ := got["username"].(string); name != w.username {
			t.Errorf("line %d (%s) username = %q, want %q", i+1, w.op, name, w.username)
		}
		var attrs []string
		if list, ok := got["attrs"].([]any); ok {
			for _, a := range list {
				attrs = append(attrs, a.(string))
			}
		}
		if !slices.Equal(attrs, w.attrs) {
			t.Errorf("line %d (%s) attrs = %q, want %q", i+1, w.op, attrs, w.attrs)
		}
		stamp, _ := got["time"].(string)
		when, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || !strings.HasSuffix(stamp, "Z") || len(stamp) != len("2006-01-02T15:04:05.000000Z") || time.Since(when) > time.Minute {
			t.Errorf("line %d (%s) time = %q, want the call's time in UTC RFC 3339 to the microsecond", i+1, w.op, stamp)
		}
		if len(got) > len(fields)+3 {
			t.Errorf("line %d has keys beyond the audit fields: %s", i+1, raw)
		}
	}
}

// TestAuditLogDropsWhatItCannotBuffer: with the sink stalled, Record does not block, and the
// lines the full buffer cannot take are counted as dropped, not lost silently.
func TestAuditLogDropsWhatItCannotBuffer(t *testing.T) {
	w := &stalledWriter{entered: make(chan struct{}), release: make(chan struct{})}
	audit := sso.NewAuditLog(w, 1000)
	entry := sso.AuditEntry{Time: time.Now(), CID: "0123456789abcdef01234567", Operation: "attr.get", Outcome: sso.OutcomeOK}
	audit.Record(t.Context(), entry)
	select { // the writer writes that line within sso.AuditFlushInterval, and stalls
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the audit log did not write its line within 10 s")
	}
	start := time.Now()
	for range 100 {
		audit.Record(t.Context(), entry)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("100 records with the sink stalled took %v, want no waiting", elapsed)
	}
	dropped := audit.Dropped()
	if dropped < 80 || dropped > 99 {
		t.Errorf("Dropped() = %d of 100 lines of some 150 bytes into a buffer of 1000 bytes, want 80 to 99", dropped)
	}
	close(w.release)
	if err := audit.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := audit.Written(), 101-dropped; got != want {
		t.Errorf("Written() = %d, want %d: the stalled line and the buffered ones", got, want)
	}
	audit.Record(t.Context(), entry)
	if got := audit.Dropped(); got != dropped+1 {
		t.Errorf("Dropped() = %d after a record once closed, want %d", got, dropped+1)
	}
}

// stalledWriter closes entered at its first Write and holds every Write until release is closed.
type stalledWriter struct {
	once             sync.Once
	entered, release chan struct{}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}
