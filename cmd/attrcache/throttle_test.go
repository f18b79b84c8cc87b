package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/faultproxy"
	"github.com/attrcache/attrcache/internal/testenv"
)

// reply is a served answer as an attacker sees it.
type reply struct {
	status int
	body   map[string]any
	header http.Header
}

// send sends body as JSON with method to path with the given headers.
func (s *servingTest) sendWith(t *testing.T, method, path string, body map[string]any, header map[string]string) reply {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.baseURL+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
		t.Fatalf("%s %s: decoding the answer: %v", method, path, err)
	}
	return r
}

// wantRefused fails the test unless r is a 403 E005001.
func wantRefused(t *testing.T, what string, r reply) {
	t.Helper()
	if r.status != http.StatusForbidden || !hasSubStatus(r.body, attrcache.CodeNotAllowed) {
		t.Fatalf("%s: HTTP %d %v, want 403 %s", what, r.status, r.body, attrcache.CodeNotAllowed)
	}
}

// wantThrottled fails the test unless r is a 429 E005001 with a Retry-After of whole seconds.
func wantThrottled(t *testing.T, what string, r reply) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || !hasSubStatus(r.body, attrcache.CodeNotAllowed) {
		t.Fatalf("%s: HTTP %d %v, want 429 %s", what, r.status, r.body, attrcache.CodeNotAllowed)
	}
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("%s: Retry-After %q, want whole seconds >= 1", what, r.header.Get("Retry-After"))
	}
}

func hasSubStatus(body map[string]any, code string) bool {
	codes, _ := body["sub_status"].([]any)
	return len(codes) == 1 && codes[0] == code
}

// throttleEnv returns the settings of a served binary whose counters in Redis are the test's
// own (a prefix of its own), so that no other test's failures from 127.0.0.1 count, plus extra.
// Servers started with the same prefix share their counters.
func throttleEnv(prefix string, extra map[string]string) map[string]string {
	env := map[string]string{"ATTRCACHE_REDIS_PREFIX": prefix}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// testOwnPrefix returns a Redis prefix under the package's, of this run of the test alone (a
// cluster run also uses the single server, which TestMain does not clear then).
func testOwnPrefix(t *testing.T) string {
	run := strings.ToLower(attrcache.NewUserID()[len("zusr"):])
	return testPrefix + strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + ":" + run + ":"
}

// forged returns the headers of an attacker naming address i as their own.
func forged(i int) map[string]string {
	addr := fmt.Sprintf("203.0.%d.%d", 100+i/250, 1+i%250)
	return map[string]string{"X-Forwarded-For": addr, "X-Zato-Forwarded-For": addr}
}

func loginBody(username, password string) map[string]any {
	return map[string]any{"username": username, "password": password, "current_app": testApp}
}

// TestServedThrottleIgnoresForgedAddresses guesses alice's password with a different forged
// X-Forwarded-For and X-Zato-Forwarded-For on every request, from a peer that is no trusted
// proxy: the username's limit holds, the address's limit counts the real peer, and the forged
// address is neither the session's remote_addr nor the log's.
func TestServedThrottleIgnoresForgedAddresses(t *testing.T) {
	const perUsername, perAddress = 10, 15
	s := startServe(t, throttleEnv(testOwnPrefix(t), map[string]string{
		"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME": strconv.Itoa(perUsername),
		"ATTRCACHE_LOGIN_THROTTLE_PER_ADDRESS":  strconv.Itoa(perAddress),
	}))
	createUser(t, "create-user", "forged-alice", "Al1ce-secret")
	createUser(t, "create-user", "forged-bob", "B0b-secret")

	bobUST := s.login(t, "forged-bob", "B0b-secret", "") // before the address's limit is reached
	r := s.sendWith(t, http.MethodPost, pathLogin, loginBody("forged-bob", "B0b-secret"), forged(999))
	if r.status != http.StatusOK {
		t.Fatalf("bob's login with forged headers: HTTP %d %v, want 200", r.status, r.body)
	}
	sessions := s.mustCall(t, http.MethodGet, pathSessionList, map[string]any{"ust": bobUST, "current_app": testApp})
	items, _ := sessions["result"].([]any)
	if len(items) != 2 {
		t.Fatalf("bob's sessions: %v, want 2", sessions)
	}
	for _, item := range items {
		if got := item.(map[string]any)["remote_addr"]; got != "127.0.0.1" {
			t.Errorf("a session's remote_addr = %v, want the peer 127.0.0.1, never a forged address", got)
		}
	}

	for i := range perUsername {
		wantRefused(t, fmt.Sprintf("wrong password %d", i+1), s.sendWith(t, http.MethodPost, pathLogin, loginBody("forged-alice", fmt.Sprint("guess-", i)), forged(i)))
	}
	wantThrottled(t, "a wrong password past the limit", s.sendWith(t, http.MethodPost, pathLogin, loginBody("forged-alice", "guess-x"), forged(perUsername)))
	wantThrottled(t, "the right password past the limit", s.sendWith(t, http.MethodPost, pathLogin, loginBody("forged-alice", "Al1ce-secret"), forged(perUsername+1)))

	// The address's counter counted the refused guesses above against 127.0.0.1 (the throttled
	// ones are not counted): a few more, each from another forged address and for another
	// username, reach its limit.
	for i := perUsername; i < perAddress; i++ {
		wantRefused(t, "a guess at another user", s.sendWith(t, http.MethodPost, pathLogin, loginBody(fmt.Sprint("nobody-", i), "guess"), forged(100+i)))
	}
	wantThrottled(t, "bob's right password from the throttled peer", s.sendWith(t, http.MethodPost, pathLogin, loginBody("forged-bob", "B0b-secret"), forged(200)))

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	loggedPeer := false
	for line := range strings.Lines(s.stderr.String()) {
		var entry struct {
			Route      string `json:"route"`
			RemoteAddr string `json:"remote_addr"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Route != pathLogin {
			continue
		}
		if entry.RemoteAddr != "127.0.0.1" {
			t.Errorf("a login's log line shows remote_addr %q, want 127.0.0.1: %s", entry.RemoteAddr, line)
		}
		loggedPeer = true
	}
	if !loggedPeer {
		t.Errorf("no log line of a login:\n%s", s.stderr.String())
	}
}

// TestServedThrottleBehindTrustedProxy serves with the peer (127.0.0.1) as a trusted proxy: the
// client is the right-most untrusted entry of the forwarded header, so two clients behind the
// proxy have counters of their own, and an entry a client wrote at the left is ignored.
func TestServedThrottleBehindTrustedProxy(t *testing.T) {
	const perAddress = 3
	s := startServe(t, throttleEnv(testOwnPrefix(t), map[string]string{
		"ATTRCACHE_HTTP_TRUSTED_PROXIES":        "127.0.0.1/32, 10.0.0.0/8",
		"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME": "0",
		"ATTRCACHE_LOGIN_THROTTLE_PER_ADDRESS":  strconv.Itoa(perAddress),
	}))
	createUser(t, "create-user", "proxied-carol", "C4rol-secret")
	const attacker, victim = "198.51.100.7", "198.51.100.8"
	viaProxy := func(header, spoofed, client string) map[string]string {
		return map[string]string{header: spoofed + ", " + client + ", 10.1.2.3"}
	}
	headers := []string{"X-Forwarded-For", "X-Zato-Forwarded-For"}
	for i := range perAddress {
		h := viaProxy(headers[i%2], fmt.Sprintf("192.0.2.%d", i+1), attacker)
		wantRefused(t, "the attacker's guess", s.sendWith(t, http.MethodPost, pathLogin, loginBody("proxied-carol", fmt.Sprint("guess-", i)), h))
	}
	wantThrottled(t, "the attacker, with yet another left-most entry", s.sendWith(t, http.MethodPost, pathLogin,
		loginBody("proxied-carol", "C4rol-secret"), viaProxy("X-Forwarded-For", "192.0.2.99", attacker)))

	r := s.sendWith(t, http.MethodPost, pathLogin, loginBody("proxied-carol", "C4rol-secret"), viaProxy("X-Forwarded-For", attacker, victim))
	if r.status != http.StatusOK {
		t.Fatalf("the other client, naming the attacker at the left: HTTP %d %v, want 200", r.status, r.body)
	}
	sessions := s.mustCall(t, http.MethodGet, pathSessionList, map[string]any{"ust": r.body["ust"], "current_app": testApp})
	items, _ := sessions["result"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["remote_addr"] != victim {
		t.Errorf("sessions %v, want one whose remote_addr is the client %s", sessions, victim)
	}
}

// TestServedThrottleSharedByInstances runs two servers over one Redis: the budget of guesses is
// one, not one per server.
func TestServedThrottleSharedByInstances(t *testing.T) {
	const perUsername = 10
	env := throttleEnv(testOwnPrefix(t), map[string]string{"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME": strconv.Itoa(perUsername)})
	first, second := startServe(t, env), startServe(t, env)
	createUser(t, "create-user", "shared-dave", "D4ve-secret")
	for i := range perUsername {
		s := first
		if i%2 == 1 {
			s = second
		}
		wantRefused(t, fmt.Sprintf("wrong password %d", i+1), s.sendWith(t, http.MethodPost, pathLogin, loginBody("shared-dave", fmt.Sprint("guess-", i)), nil))
	}
	for name, s := range map[string]*servingTest{"first": first, "second": second} {
		wantThrottled(t, "the right password on the "+name+" server", s.sendWith(t, http.MethodPost, pathLogin, loginBody("shared-dave", "D4ve-secret"), nil))
	}
}

// TestServedOldPasswordThrottled guesses old_password on PATCH /zato/sso/user/password with a
// stolen UST: the username's limit stops it, and stops logins too.
func TestServedOldPasswordThrottled(t *testing.T) {
	const perUsername = 10
	s := startServe(t, throttleEnv(testOwnPrefix(t), map[string]string{"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME": strconv.Itoa(perUsername)}))
	createUser(t, "create-user", "stolen-erin", "Er1n-secret")
	ust := s.login(t, "stolen-erin", "Er1n-secret", "")
	change := func(old string, i int) reply {
		return s.sendWith(t, http.MethodPatch, pathPassword,
			map[string]any{"ust": ust, "current_app": testApp, "old_password": old, "new_password": "N3w-passphrase"}, forged(i))
	}
	for i := range perUsername {
		wantRefused(t, fmt.Sprintf("wrong old_password %d", i+1), change(fmt.Sprint("guess-", i), i))
	}
	wantThrottled(t, "the right old_password past the limit", change("Er1n-secret", perUsername))
	wantThrottled(t, "a login past the limit", s.sendWith(t, http.MethodPost, pathLogin, loginBody("stolen-erin", "Er1n-secret"), nil))
	if code := login(t, "stolen-erin", "Er1n-secret"); code != "" { // through the Go API: the password is unchanged
		t.Errorf("the password changed while throttled: a login with the old one answers %s", code)
	}
}

// TestServedSignupPerAddress signs up over and over from one peer, each time under another forged
// address: past the limit, 429.
func TestServedSignupPerAddress(t *testing.T) {
	const perAddress = 3
	s := startServe(t, throttleEnv(testOwnPrefix(t), map[string]string{
		"ATTRCACHE_SIGNUP_APPS":                 testApp,
		"ATTRCACHE_SIGNUP_THROTTLE_PER_ADDRESS": strconv.Itoa(perAddress),
	}))
	signup := func(i int) reply {
		return s.sendWith(t, http.MethodPost, pathSignup,
			map[string]any{"username": fmt.Sprint("signup-flood-", i), "password": "S1gn-up-secret", "current_app": testApp}, forged(i))
	}
	for i := range perAddress {
		if r := signup(i); r.status != http.StatusOK || r.body["confirm_token"] == nil {
			t.Fatalf("sign-up %d: HTTP %d %v, want 200 with a confirm_token", i+1, r.status, r.body)
		}
	}
	wantThrottled(t, "a sign-up past the limit", signup(perAddress))
	if _, err := storedUser(t, fmt.Sprint("signup-flood-", perAddress)); err == nil {
		t.Error("the throttled sign-up created its user")
	}
}

// TestServedThrottleWithoutRedis takes Redis away in the middle of a guessing run: the
// in-process counts carry on, logins keep working, and the limit still holds.
func TestServedThrottleWithoutRedis(t *testing.T) {
	const perUsername = 10
	redisURL, err := url.Parse(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Listen(redisURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxied := *redisURL
	proxied.Host = proxy.Addr()
	s := startServe(t, throttleEnv(testOwnPrefix(t), map[string]string{
		"ATTRCACHE_REDIS_URL":                   proxied.String(),
		"ATTRCACHE_REDIS_ADDRS":                 "", // the single server behind the proxy, also in a cluster run
		"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME": strconv.Itoa(perUsername),
	}))
	createUser(t, "create-user", "offline-frank", "Fr4nk-secret")
	createUser(t, "create-user", "offline-grace", "Gr4ce-secret")
	guess := func(i int) reply {
		return s.sendWith(t, http.MethodPost, pathLogin, loginBody("offline-frank", fmt.Sprint("guess-", i)), nil)
	}
	for i := range perUsername / 2 {
		wantRefused(t, "a guess with Redis up", guess(i))
	}
	proxy.Down()
	for i := perUsername / 2; i < perUsername; i++ {
		wantRefused(t, "a guess with Redis down", guess(i))
	}
	wantThrottled(t, "the right password with Redis down", s.sendWith(t, http.MethodPost, pathLogin, loginBody("offline-frank", "Fr4nk-secret"), nil))
	s.login(t, "offline-grace", "Gr4ce-secret", "") // Redis down fails no login
	if log := s.stderr.String(); !strings.Contains(log, "throttle counters in Redis unavailable") {
		t.Errorf("the log does not say that the throttle counts in process only:\n%s", log)
	}
}
