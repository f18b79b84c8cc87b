package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// The apps of the test configuration: both may log in, only signupApp may sign up.
const (
	app       = "CRM"
	signupApp = "CRM"
	otherApp  = "Portal"
)

// throttleLimit is the number of failed logins a username may make before the next is refused.
const throttleLimit = 5

var (
	// newAPI returns a new API over the test stores, with a login throttle of its own, after
	// configure changes the test configuration.
	newAPI func(configure ...func(*sso.Config)) *sso.API

	// apiWithKeys returns a new API over the test stores whose attribute values and USTs are
	// sealed and opened with keys; testKeyB64 is the test key, id attrcache.DefaultKeyID.
	apiWithKeys func(keys *attrcache.Keyring) *sso.API
	testKeyB64  string

	api     *sso.API     // the API most test servers are built on
	handler http.Handler // NewServer(api) with default options
	admin   testUser     // a super-user, logged in
	userSeq atomic.Int64 // makes usernames unique
	cidRe   = regexp.MustCompile(`^[0-9a-f]{24}$`)
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpapi tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// runTests builds the whole stack on the test MariaDB and Redis, creates the super-user and runs
// the tests.
func runTests(m *testing.M) (int, error) {
	flag.Parse()
	if worker := flag.Lookup("test.fuzzworker"); worker != nil && worker.Value.String() == "true" {
		// A fuzzing worker runs fuzz targets alone, which need no backends; setting them up in
		// every worker at once would race on the shared test database.
		return m.Run(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := testenv.FreshDatabase("httpapi")
	if err != nil {
		return 0, err
	}
	prefix, err := testenv.RedisPrefix("httpapi")
	if err != nil {
		return 0, err
	}
	testKeyB64 = attrcache.GenerateKey()
	keys, err := attrcache.ParseSecretKey(testKeyB64)
	if err != nil {
		return 0, err
	}
	if err := persist.EnsureDatabase(ctx, dsn); err != nil {
		return 0, err
	}
	db, err := persist.Open(ctx, dsn, keys)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return 0, err
	}
	rdb, err := testenv.RedisClient()
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	rdb.AddHook(tripCounter{})
	store := cache.New(rdb, cache.Options{Prefix: prefix}, db, db)
	defer store.Close()

	cfg := sso.DefaultConfig()
	cfg.Apps = []string{app, otherApp}
	cfg.SignupApps = []string{signupApp}
	cfg.Hash = sso.HashParams{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}
	cfg.Throttle = sso.ThrottleConfig{PerUsername: throttleLimit, Window: time.Hour}
	cfg.Feed = db // read only: no sequencer runs here
	attrs := cache.NewAttrStore(store, db)
	if _, err := sso.New(cfg, keys, store, store, attrs); err != nil {
		return 0, err
	}
	newAPI = func(configure ...func(*sso.Config)) *sso.API {
		cfg := cfg
		for _, f := range configure {
			f(&cfg)
		}
		a, err := sso.New(cfg, keys, store, store, attrs)
		if err != nil {
			panic(fmt.Sprintf("sso.New with a configuration a test changed: %v", err))
		}
		return a
	}
	apiWithKeys = func(keys *attrcache.Keyring) *sso.API {
		a, err := sso.New(cfg, keys, store, store, attrs)
		if err != nil {
			panic(fmt.Sprintf("sso.New with other keys: %v", err))
		}
		return a
	}
	api = newAPI()
	handler = httpapi.NewServer(api, httpapi.Options{})

	password := "admin-secret-pass"
	u, err := api.AdminCreateUser(ctx, sso.CreateUserInput{Username: "admin", Password: &password}, true)
	if err != nil {
		return 0, fmt.Errorf("creating the super-user: %w", err)
	}
	admin = testUser{id: u.UserID, username: u.Username, password: password}
	res := serve(handler, call{method: http.MethodPost, path: "/zato/sso/user/login",
		body: jsonOf(map[string]any{"username": admin.username, "password": password, "current_app": app})})
	if res.status != http.StatusOK || res.body["ust"] == nil {
		return 0, fmt.Errorf("logging the super-user in: HTTP %d %s", res.status, res.raw)
	}
	admin.ust = res.body["ust"].(string)
	return m.Run(), nil
}

// call is one HTTP request to a test server.
type call struct {
	method string
	path   string // with the query string, if any
	body   string // sent as it is; "" sends no body
	header map[string]string
}

// response is a test server's answer, its body decoded when it is a JSON object.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func serve(h http.Handler, c call) *response {
	var body *bytes.Reader
	if c.body != "" {
		body = bytes.NewReader([]byte(c.body))
	} else {
		body = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(c.method, c.path, body)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := &response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(res.raw, &res.body)
	return res
}

// do sends input as a JSON body to the default test server.
func do(t *testing.T, method, path string, input map[string]any) *response {
	t.Helper()
	return serve(handler, call{method: method, path: path, body: jsonOf(input)})
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// withCaller returns input with the caller's UST and current_app added.
func withCaller(u testUser, input map[string]any) map[string]any {
	out := map[string]any{"ust": u.ust, "current_app": app}
	for k, v := range input {
		out[k] = v
	}
	return out
}

// testUser is a user made for a test, logged in unless the test said otherwise.
type testUser struct {
	id, username, password, ust string
}

// newUser creates an approved regular user (a super-user when superUser is true), changed first
// by edit when it is not nil, and logs them in unless they cannot.
func newUser(t *testing.T, superUser bool, edit func(*sso.CreateUserInput)) testUser {
	t.Helper()
	in := sso.CreateUserInput{Username: uniqueName("user")}
	password := "pass-" + in.Username
	in.Password = &password
	if edit != nil {
		edit(&in)
	}
	u, err := api.AdminCreateUser(context.Background(), in, superUser)
	if err != nil {
		t.Fatalf("AdminCreateUser(%s): %v", in.Username, err)
	}
	tu := testUser{id: u.UserID, username: u.Username, password: *in.Password}
	if !in.IsTOTPEnabled && !in.PasswordMustChange && !in.IsLocked {
		tu.ust = login(t, tu)
	}
	return tu
}

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, userSeq.Add(1))
}

// login logs u in over HTTP and returns the UST.
func login(t *testing.T, u testUser) string {
	t.Helper()
	res := do(t, http.MethodPost, "/zato/sso/user/login",
		map[string]any{"username": u.username, "password": u.password, "current_app": app})
	wantOK(t, res)
	ust, _ := res.body["ust"].(string)
	if ust == "" {
		t.Fatalf("login of %s: no ust in %s", u.username, res.raw)
	}
	return ust
}

// wantOK fails the test unless res is a success: HTTP 200, status ok, sub_status [].
func wantOK(t *testing.T, res *response) {
	t.Helper()
	checkCID(t, res)
	if res.status != http.StatusOK || res.body["status"] != "ok" {
		t.Fatalf("got HTTP %d %s, want 200 with status ok", res.status, res.raw)
	}
	if sub, ok := res.body["sub_status"].([]any); !ok || len(sub) != 0 {
		t.Fatalf("sub_status = %v, want []", res.body["sub_status"])
	}
}

// wantError fails the test unless res is an error response of the given HTTP status and code.
func wantError(t *testing.T, res *response, status int, code string) {
	t.Helper()
	checkCID(t, res)
	if res.status != status || res.body["status"] != "error" || !subStatusIs(res, code) {
		t.Fatalf("got HTTP %d %s, want %d with status error and sub_status [%s]", res.status, res.raw, status, code)
	}
	if status == http.StatusBadRequest && (res.body["result"] != "Error" || res.body["details"] != "Bad request") {
		t.Fatalf("400 body %s: want result Error and details Bad request", res.raw)
	}
}

func subStatusIs(res *response, code string) bool {
	sub, ok := res.body["sub_status"].([]any)
	return ok && len(sub) == 1 && sub[0] == code
}

// checkCID fails the test unless res has a 24-hex cid in its body equal to its X-Zato-CID header.
func checkCID(t *testing.T, res *response) {
	t.Helper()
	cid, _ := res.body["cid"].(string)
	if !cidRe.MatchString(cid) {
		t.Fatalf("cid = %q in %s, want 24 hex digits", cid, res.raw)
	}
	if got := res.header.Get("X-Zato-CID"); got != cid {
		t.Fatalf("X-Zato-CID = %q, want the body's cid %q", got, cid)
	}
}

// withEnvelope adds the envelope's keys to a space-separated key list and sorts it.
func withEnvelope(keys string) string {
	all := append(strings.Fields(keys), "cid", "status", "sub_status")
	slices.Sort(all)
	return strings.Join(all, " ")
}

// keysOf returns the sorted keys of a JSON object.
func keysOf(obj map[string]any) string {
	return strings.Join(slices.Sorted(maps.Keys(obj)), " ")
}
