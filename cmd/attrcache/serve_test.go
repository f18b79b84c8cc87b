package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

const (
	pathLogin    = "/zato/sso/user/login"
	pathUser     = "/zato/sso/user"
	pathTOTP     = "/zato/sso/user/totp"
	pathUserAttr = "/zato/sso/user/attr"
	testApp      = "CRM"
)

// requestGate holds the requests for one path as the server receives them, until it is opened.
type requestGate struct {
	path    string
	arrived chan struct{} // one value per request held
	opened  chan struct{} // closed by open
}

func newRequestGate(path string, capacity int) *requestGate {
	return &requestGate{path: path, arrived: make(chan struct{}, capacity), opened: make(chan struct{})}
}

// wrap is a testHookWrapHandler that holds the requests for the gate's path.
func (g *requestGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == g.path {
			g.arrived <- struct{}{}
			<-g.opened
		}
		next.ServeHTTP(w, r)
	})
}

// waitHeld waits, within a bound, until n requests are held at the gate.
func (g *requestGate) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for held := 0; held < n; held++ {
		select {
		case <-g.arrived:
		case <-deadline:
			t.Fatalf("%d of %d requests reached the server within 30 s", held, n)
		}
	}
}

// open lets the held requests, and every later one, through.
func (g *requestGate) open() { close(g.opened) }

// holdRequests makes serve hold the requests for path at gate until the gate opens; serve must
// start after this call.
func holdRequests(t *testing.T, gate *requestGate) {
	t.Helper()
	testHookWrapHandler = gate.wrap
	t.Cleanup(func() { testHookWrapHandler = nil })
}

// refusesConnections reports whether nothing accepts connections on the server's address any
// more.
func (s *servingTest) refusesConnections() bool {
	conn, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}

// login logs username in over HTTP, with a TOTP code when totpKey is not empty, and returns the
// UST.
func (s *servingTest) login(t *testing.T, username, password, totpKey string) string {
	t.Helper()
	body := map[string]any{"username": username, "password": password, "current_app": testApp}
	if totpKey != "" {
		key, err := attrcache.DecodeTOTPKey(totpKey)
		if err != nil {
			t.Fatal(err)
		}
		body["totp_code"] = attrcache.TOTPCode(key, time.Now())
	}
	status, answer := s.call(t, http.MethodPost, pathLogin, body)
	ust, _ := answer["ust"].(string)
	if status != http.StatusOK || answer["status"] != "ok" || ust == "" {
		t.Fatalf("login of %s: HTTP %d %v, want 200, status ok and a ust", username, status, answer)
	}
	return ust
}

// mustCall sends body with method to path and fails the test unless the answer is HTTP 200 with
// status ok.
func (s *servingTest) mustCall(t *testing.T, method, path string, body map[string]any) map[string]any {
	t.Helper()
	status, answer := s.call(t, method, path, body)
	if status != http.StatusOK || answer["status"] != "ok" {
		t.Fatalf("%s %s: HTTP %d %v, want 200 and status ok", method, path, status, answer)
	}
	return answer
}

func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	const inFlight = 20
	userID := createUser(t, "create-user", "in-flight", "In-fl1ght-pass")
	gate := newRequestGate(pathUserAttr, inFlight)
	holdRequests(t, gate)
	s := startServe(t, nil)
	ust := s.login(t, "in-flight", "In-fl1ght-pass", "")

	type outcome struct {
		name   string
		status int
		answer map[string]any
		err    error
	}
	outcomes := make(chan outcome, inFlight)
	names := make([]string, inFlight)
	for i := range inFlight {
		names[i] = fmt.Sprintf("in-flight-%02d", i)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			status, answer, err := s.send(ctx, http.MethodPut, pathUserAttr,
				map[string]any{"ust": ust, "current_app": testApp, "name": names[i], "value": i})
			outcomes <- outcome{names[i], status, answer, err}
		}()
	}
	gate.waitHeld(t, inFlight)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	pollUntil(t, "serve to stop accepting connections", s.refusesConnections)
	gate.open()

	for range inFlight {
		o := <-outcomes // each request gives up after 30 s
		if o.err != nil || o.status != http.StatusOK || o.answer["status"] != "ok" {
			t.Errorf("setting %s during the shutdown: HTTP %d %v, error %v; want 200 and status ok", o.name, o.status, o.answer, o.err)
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("serve returned %v after a shutdown with requests in flight, want nil", err)
	}

	db := openTestDB(t)
	stored, err := db.Attrs(t.Context(), attrcache.AttrScope{UserID: userID}, names, attrcache.Now())
	if err != nil {
		t.Fatalf("reading the attributes from MySQL: %v", err)
	}
	for i, name := range names {
		if got, want := attrValue(stored[name]), strconv.Itoa(i); got != want {
			t.Errorf("MySQL holds %s = %s, want %s", name, got, want)
		}
	}
}

// attrValue returns a's JSON value, or "(none)".
func attrValue(a *attrcache.Attr) string {
	if a == nil {
		return "(none)"
	}
	return a.Value
}

// TestLogsHoldNoSecrets runs serve at the debug level in both log formats through a log-in with
// TOTP, a refused password, and encrypted attributes set and read, and checks that its log holds
// none of the secrets that passed through it.
func TestLogsHoldNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			unique := strings.ToLower(attrcache.NewUserID()[len("zusr"):])
			username, password, wrongPassword := "secretive-"+format, "Pa55-"+unique, "Wr0ng-"+unique
			createUser(t, "create-user", username, password)
			s := startServe(t, map[string]string{"ATTRCACHE_LOG_FORMAT": format, "ATTRCACHE_LOG_LEVEL": "debug"})

			if status, answer := s.call(t, http.MethodPost, pathLogin,
				map[string]any{"username": username, "password": wrongPassword, "current_app": testApp}); answer["status"] != "error" {
				t.Fatalf("login with a wrong password: HTTP %d %v, want an error", status, answer)
			}
			firstUST := s.login(t, username, password, "")
			totpKey := attrcache.NewTOTPKey()
			s.mustCall(t, http.MethodPatch, pathTOTP,
				map[string]any{"ust": firstUST, "current_app": testApp, "totp_key": totpKey, "totp_label": "tests"})
			s.mustCall(t, http.MethodPatch, pathUser, map[string]any{"ust": firstUST, "current_app": testApp, "is_totp_enabled": true})
			ust := s.login(t, username, password, totpKey)

			single, inMany := "single-"+unique, "many-"+unique
			s.mustCall(t, http.MethodPut, pathUserAttr,
				map[string]any{"ust": ust, "current_app": testApp, "name": "pin", "value": single, "encrypt": true})
			s.mustCall(t, http.MethodPut, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "encrypt": true,
				"data": []any{map[string]any{"name": "card", "value": map[string]any{"number": inMany}}}})
			if answer := s.mustCall(t, http.MethodGet, pathUserAttr,
				map[string]any{"ust": ust, "current_app": testApp, "name": "pin"}); answer["value"] != single {
				t.Errorf("reading the encrypted attribute back: %v, want the value %q", answer, single)
			}
			s.mustCall(t, http.MethodGet, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "data": []string{"pin", "card"}})
			if err := s.stop(); err != nil {
				t.Fatalf("serve after cancellation returned %v, want nil", err)
			}

			log := s.stderr.String()
			if !strings.Contains(log, pathUserAttr) {
				t.Fatalf("the log has no line for the attribute requests, so it cannot show that they leave no secret:\n%s", log)
			}
			secrets := map[string]string{
				"password":                password,
				"refused password":        wrongPassword,
				"UST before TOTP":         firstUST,
				"UST":                     ust,
				"TOTP key":                totpKey,
				"encrypted value":         single,
				"encrypted value in many": inMany,
				"secret key":              testKey,
			}
			for what, secret := range secrets {
				if strings.Contains(log, secret) {
					t.Errorf("the %s log holds the %s", format, what)
				}
			}
		})
	}
}
