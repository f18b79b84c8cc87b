package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// The test database, Redis prefix and secret key, set by TestMain.
var (
	testDSN    string
	testPrefix string
	testKey    = attrcache.GenerateKey()
)

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) != "" {
		main() // the test binary as the attrcache command: see startServeProcess
		os.Exit(0)
	}
	var err error
	if testDSN, err = testenv.FreshDatabase("cmd"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testPrefix, err = testenv.RedisPrefix("cmd"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// testEnv returns the environment of a command against the test backends (the test Redis
// Cluster when there is one), with cheap password hashing, plus extra.
func testEnv(extra map[string]string) func(string) string {
	return envOf(testEnvVars(extra))
}

// testEnvVars is testEnv's environment as variables.
func testEnvVars(extra map[string]string) map[string]string {
	env := map[string]string{
		"ATTRCACHE_MYSQL_DSN":         testDSN,
		"ATTRCACHE_REDIS_URL":         testenv.RedisURL(),
		"ATTRCACHE_REDIS_ADDRS":       strings.Join(testenv.RedisClusterAddrs(), ","),
		"ATTRCACHE_REDIS_PREFIX":      testPrefix,
		"ATTRCACHE_ARGON2_TIME":       "1",
		"ATTRCACHE_ARGON2_MEMORY_KIB": "1024",
		"ATTRCACHE_LOG_LEVEL":         "warn",
		envSecretKey:                  testKey,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// runCLI runs the command with args and stdin against the test backends and returns what it
// printed.
func runCLI(t *testing.T, stdin string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, testEnv(nil), strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

// mustRunCLI runs the command and fails the test when it fails.
func mustRunCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, stdin, args...)
	if err != nil {
		t.Fatalf("attrcache %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// createUser creates a user with the CLI and returns their user_id.
func createUser(t *testing.T, command, username, password string) string {
	t.Helper()
	userID := strings.TrimSpace(mustRunCLI(t, "", "sso", command, username, "--password", password))
	if !attrcache.ValidUserID(userID) {
		t.Fatalf("sso %s printed %q, want a user_id", command, userID)
	}
	return userID
}

// openTestDB opens the test database, closed at the end of the test.
func openTestDB(t *testing.T) *persist.DB {
	t.Helper()
	db, err := persist.Open(t.Context(), testDSN, mustKeyring(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// storedUser reads a user straight from MySQL.
func storedUser(t *testing.T, username string) (*attrcache.User, error) {
	t.Helper()
	return openTestDB(t).UserByUsername(t.Context(), username)
}

func mustStoredUser(t *testing.T, username string) *attrcache.User {
	t.Helper()
	u, err := storedUser(t, username)
	if err != nil {
		t.Fatalf("reading user %s: %v", username, err)
	}
	return u
}

// login logs in through the Go API over the test backends and returns the Zato code of the
// refusal, "" on success.
func login(t *testing.T, username, password string) string {
	t.Helper()
	cfg, err := loadConfig(testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := openBackends(t.Context(), cfg, mustKeyring(t, testKey), newLogger(cfg, io.Discard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	_, err = b.api.Login(t.Context(), "test", sso.LoginInput{Username: username, Password: password, CurrentApp: "CRM"})
	return attrcache.CodeOf(err)
}

func TestCreateUsers(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		stdin     string
		username  string
		password  string
		superUser bool
		email     string
	}{
		{"super-user with --password", []string{"create-super-user", "root1", "--password", "Sup3r-secret"}, "", "root1", "Sup3r-secret", true, ""},
		{"user with the password on stdin", []string{"create-user", "bob"}, "St4ndard-in\n", "bob", "St4ndard-in", false, ""},
		{"flags before the username", []string{"create-user", "--email", "c@example.com", "--password", "Fl4gs-first", "carol"}, "", "carol", "Fl4gs-first", false, "c@example.com"},
		{"flags after the username", []string{"create-user", "dave", "--email", "d@example.com"}, "Fl4gs-after\r\n", "dave", "Fl4gs-after", false, "d@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustRunCLI(t, tt.stdin, append([]string{"sso"}, tt.args...)...)
			userID := strings.TrimSpace(out)
			u := mustStoredUser(t, tt.username)
			if u.UserID != userID {
				t.Errorf("printed %q, want the user_id %q", userID, u.UserID)
			}
			if u.IsSuperUser != tt.superUser || u.ApprovalStatus != attrcache.ApprovalApproved || u.ApprovalStatusModBy != attrcache.ModByAuto {
				t.Errorf("stored super-user %v, approval %q by %q; want %v, approved by auto",
					u.IsSuperUser, u.ApprovalStatus, u.ApprovalStatusModBy, tt.superUser)
			}
			if got := deref(u.Email); got != tt.email {
				t.Errorf("stored e-mail %q, want %q", got, tt.email)
			}
			if code := login(t, tt.username, tt.password); code != "" {
				t.Errorf("login with the given password: %s, want success", code)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestCreateExistingUser(t *testing.T) {
	createUser(t, "create-super-user", "twice", "Tw1ce-over")
	_, err := runCLI(t, "", "sso", "create-super-user", "twice", "--password", "Tw1ce-over")
	if err == nil || !strings.Contains(err.Error(), `user "twice" already exists`) {
		t.Errorf("second create-super-user: error %v, want one saying the user already exists", err)
	}
}

func TestLockAndUnlock(t *testing.T) {
	userID := createUser(t, "create-user", "locky", "L0cked-out")
	for _, tt := range []struct {
		command    string
		wantLocked bool
		wantLogin  string
	}{
		{"lock-user", true, attrcache.CodeLocked},
		{"unlock-user", false, ""},
	} {
		t.Run(tt.command, func(t *testing.T) {
			if got := strings.TrimSpace(mustRunCLI(t, "", "sso", tt.command, "locky")); got != userID {
				t.Errorf("printed %q, want %q", got, userID)
			}
			if u := mustStoredUser(t, "locky"); u.IsLocked != tt.wantLocked {
				t.Errorf("stored is_locked = %v, want %v", u.IsLocked, tt.wantLocked)
			}
			if code := login(t, "locky", "L0cked-out"); code != tt.wantLogin {
				t.Errorf("login answered %q, want %q", code, tt.wantLogin)
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	userID := createUser(t, "create-user", "changer", "0ld-passw0rd")
	before := time.Now().UTC()
	out := mustRunCLI(t, "N3w-passw0rd\n", "sso", "change-user-password", "changer", "--expiry", "10", "--must-change")
	if got := strings.TrimSpace(out); got != userID {
		t.Errorf("printed %q, want %q", got, userID)
	}
	u := mustStoredUser(t, "changer")
	if !u.PasswordMustChange {
		t.Error("stored password_must_change = false, want true")
	}
	if earliest := before.Add(10 * day).Add(-time.Minute); u.PasswordExpiry.Before(earliest) || u.PasswordExpiry.After(before.Add(11*day)) {
		t.Errorf("stored password_expiry = %v, want about 10 days after %v", u.PasswordExpiry, before)
	}
	if code := login(t, "changer", "0ld-passw0rd"); code != attrcache.CodeNotAllowed {
		t.Errorf("login with the old password answered %q, want %s", code, attrcache.CodeNotAllowed)
	}
	if code := login(t, "changer", "N3w-passw0rd"); code != attrcache.CodePasswordMustSendNew {
		t.Errorf("login with the new password answered %q, want %s (it must be changed)", code, attrcache.CodePasswordMustSendNew)
	}
}

func TestResetTOTPKey(t *testing.T) {
	userID := createUser(t, "create-user", "totpy", "T0tp-secret")
	tests := []struct {
		name    string
		args    []string
		wantKey string // "" for a generated key
	}{
		{"given key", []string{"--key", "JBSWY3DPEHPK3PXP"}, "JBSWY3DPEHPK3PXP"},
		{"generated key", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := mustRunCLI(t, "", append([]string{"sso", "reset-totp-key", "totpy"}, tt.args...)...)
			lines := strings.Fields(out)
			if len(lines) != 2 || lines[0] != userID {
				t.Fatalf("printed %q, want the user_id %s and the key on two lines", out, userID)
			}
			key := lines[1]
			if tt.wantKey != "" && key != tt.wantKey {
				t.Errorf("printed key %q, want %q", key, tt.wantKey)
			}
			if _, err := attrcache.DecodeTOTPKey(key); err != nil {
				t.Errorf("printed key %q: %v", key, err)
			}
			if u := mustStoredUser(t, "totpy"); u.TOTPKey != key {
				t.Errorf("stored TOTP key %q, want the printed %q", u.TOTPKey, key)
			}
		})
	}
}

func TestDeleteUser(t *testing.T) {
	userID := createUser(t, "create-user", "goner", "G0ne-for-good")
	if got := strings.TrimSpace(mustRunCLI(t, "", "sso", "delete-user", "goner")); got != userID {
		t.Errorf("printed %q, want %q", got, userID)
	}
	if _, err := storedUser(t, "goner"); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("reading the deleted user: %v, want ErrNotFound", err)
	}
	if _, err := runCLI(t, "", "sso", "delete-user", "goner"); err == nil {
		t.Error("deleting the user again succeeded, want an error")
	}
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
	}{
		{"no command", nil, "", "no command given"},
		{"unknown command", []string{"frobnicate"}, "", `unknown command "frobnicate"`},
		{"unknown sso command", []string{"sso", "frobnicate", "x"}, "", `unknown command "frobnicate"`},
		{"no username", []string{"sso", "lock-user"}, "", "want exactly one USERNAME, got 0"},
		{"two usernames", []string{"sso", "lock-user", "a", "b"}, "", "want exactly one USERNAME, got 2"},
		{"unknown flag", []string{"sso", "lock-user", "a", "--force"}, "", "flag provided but not defined: -force"},
		{"no password on stdin", []string{"sso", "create-user", "nopw"}, "", "no password"},
		{"argument to serve", []string{"serve", "now"}, "", `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans more than one line", err)
			}
		})
	}
}

func TestErrorsHideTheMySQLPassword(t *testing.T) {
	tests := []struct{ name, dsn string }{
		{"malformed DSN", "app:s3cret@tcp(127.0.0.1:3306"},
		{"unreachable server", "app:s3cret@tcp(127.0.0.1:1)/attrcache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := testEnv(map[string]string{"ATTRCACHE_MYSQL_DSN": tt.dsn})
			err := run(t.Context(), []string{"migrate"}, env, strings.NewReader(""), io.Discard, &stderr)
			if err == nil {
				t.Fatal("migrate succeeded, want an error")
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(stderr.String(), "s3cret") {
				t.Errorf("the password shows: error %q, log %q", err, stderr.String())
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--version"}, "attrcache "},
		{[]string{"help"}, "attrcache sso create-super-user USERNAME"},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			if out := mustRunCLI(t, "", tt.args...); !strings.Contains(out, tt.want) {
				t.Errorf("printed %q, want it to contain %q", out, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that a server goroutine writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pollUntil calls check until it reports done, failing the test after a bound.
func pollUntil(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servingTest is a `serve` running in process on a free port.
type servingTest struct {
	addr    string // host:port
	baseURL string
	stderr  *syncBuffer
	stop    func() error // cancels serve's context and returns what run returned
}

// startServe runs `attrcache serve args...` with extra settings and waits until /healthz answers.
func startServe(t *testing.T, extra map[string]string, args ...string) *servingTest {
	t.Helper()
	env := map[string]string{"ATTRCACHE_HTTP_ADDR": "127.0.0.1:0", "ATTRCACHE_HTTP_DRAIN_DELAY": "0s",
		"ATTRCACHE_LOG_FORMAT": "json", "ATTRCACHE_LOG_LEVEL": "info"}
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), testEnv(env), strings.NewReader(""), io.Discard, stderr)
	}()
	s := &servingTest{stderr: stderr}
	var stopOnce sync.Once
	var stopErr error
	s.stop = func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("serve did not return within 30 s of the cancellation")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = s.stop() })

	pollUntil(t, "serve to log its address", func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve returned before listening: %v\n%s", err, stderr)
		default:
		}
		addr := loggedAddr(stderr.String())
		s.addr, s.baseURL = addr, "http://"+addr
		return addr != ""
	})
	pollUntil(t, "/healthz", func() bool {
		resp, err := http.Get(s.baseURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// loggedAddr returns the address of the log line "listening", in JSON or text form, or "".
func loggedAddr(log string) string {
	for line := range strings.Lines(log) {
		var entry struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil {
			if entry.Msg == "listening" {
				return entry.Addr
			}
			continue
		}
		if _, attrs, found := strings.Cut(line, " msg=listening "); found {
			_, addr, _ := strings.Cut(attrs, "addr=")
			addr, _, _ = strings.Cut(strings.TrimSpace(addr), " ")
			return addr
		}
	}
	return ""
}

// call sends a JSON body with method to path and decodes the JSON answer.
func (s *servingTest) call(t *testing.T, method, path string, body map[string]any) (int, map[string]any) {
	t.Helper()
	status, answer, err := s.send(t.Context(), method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, answer
}

// send is call for goroutines other than the test's: it returns what went wrong.
func (s *servingTest) send(ctx context.Context, method, path string, body map[string]any) (int, map[string]any, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.baseURL+path, bytes.NewReader(data))
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return 0, nil, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return resp.StatusCode, answer, nil
}

func (s *servingTest) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.baseURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServe(t *testing.T) {
	createUser(t, "create-super-user", "server-admin", "S3rve-and-protect")
	s := startServe(t, nil)

	status, answer := s.call(t, http.MethodPost, "/zato/sso/user/login",
		map[string]any{"username": "server-admin", "password": "S3rve-and-protect", "current_app": "CRM"})
	ust, _ := answer["ust"].(string)
	if status != http.StatusOK || answer["status"] != "ok" || ust == "" {
		t.Fatalf("login: HTTP %d %v, want 200, status ok and a ust", status, answer)
	}
	status, answer = s.call(t, http.MethodGet, "/zato/sso/user", map[string]any{"ust": ust, "current_app": "CRM"})
	if status != http.StatusOK || answer["username"] != "server-admin" || answer["is_super_user"] != true {
		t.Errorf("get user: HTTP %d %v, want 200 with the super-user server-admin", status, answer)
	}
	if status, body := s.get(t, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz: HTTP %d %s, want 200", status, body)
	}
	status, body := s.get(t, "/metrics")
	for _, series := range []string{"attrcache_http_requests_total", "attrcache_cache_requests_total", "go_goroutines", "process_cpu_seconds_total", "attrcache_mysql_connections"} {
		if status != http.StatusOK || !strings.Contains(body, series) {
			t.Errorf("/metrics: HTTP %d, want 200 with the series %s", status, series)
		}
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve after cancellation returned %v, want nil (a graceful shutdown)", err)
	}
	if strings.Contains(s.stderr.String(), testKey) {
		t.Error("the log holds the secret key")
	}
}

func TestServeSecretKey(t *testing.T) {
	noKey := map[string]string{envSecretKey: ""}
	t.Run("refuses to start without one", func(t *testing.T) {
		err := run(t.Context(), []string{"serve"}, testEnv(noKey), strings.NewReader(""), io.Discard, io.Discard)
		if !errors.Is(err, errNoSecretKey) {
			t.Errorf("serve without a key returned %v, want errNoSecretKey", err)
		}
	})
	t.Run("--dev prints a throwaway key", func(t *testing.T) {
		s := startServe(t, noKey, "--dev")
		if err := s.stop(); err != nil {
			t.Errorf("serve --dev after cancellation returned %v, want nil", err)
		}
		_, key, found := strings.Cut(s.stderr.String(), envSecretKey+"=")
		key, _, _ = strings.Cut(key, "\n")
		if raw, err := base64.StdEncoding.DecodeString(key); !found || err != nil || len(raw) != 32 {
			t.Errorf("serve --dev printed no usable key: %q", s.stderr.String())
		}
		if !strings.Contains(s.stderr.String(), "throwaway") {
			t.Errorf("serve --dev did not warn that the key is throwaway: %q", s.stderr.String())
		}
	})
}
