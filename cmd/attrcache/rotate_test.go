package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/consistency"
	"github.com/attrcache/attrcache/internal/testenv"
	"github.com/attrcache/attrcache/persist"
)

// rotation is a database and key prefix of their own, and two keys, for a rotation test.
type rotation struct {
	dsn, prefix string
	k1, k2      string // base64
}

func newRotation(t *testing.T, name string) *rotation {
	t.Helper()
	dsn, err := testenv.FreshDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := testenv.RedisPrefix(name)
	if err != nil {
		t.Fatal(err)
	}
	return &rotation{dsn: dsn, prefix: prefix, k1: attrcache.GenerateKey(), k2: attrcache.GenerateKey()}
}

func (r *rotation) onlyK1() string { return "k1:" + r.k1 }
func (r *rotation) both() string   { return "k2:" + r.k2 + ",k1:" + r.k1 }
func (r *rotation) onlyK2() string { return "k2:" + r.k2 }

// vars are the settings of a command on the rotation's database with the secret keys keys.
// openBackends opens the backends of r's database with the secret keys keys, as a command does,
// and returns them with their config and keyring; the caller closes them.
func (r *rotation) openBackends(t *testing.T, keys string) (config, *attrcache.Keyring, *backends) {
	t.Helper()
	cfg, err := loadConfig(testEnv(r.vars(keys)))
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := attrcache.ParseSecretKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openBackends(t.Context(), cfg, keyring, newLogger(cfg, io.Discard), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, keyring, b
}

func (r *rotation) vars(keys string) map[string]string {
	return map[string]string{"ATTRCACHE_MYSQL_DSN": r.dsn, "ATTRCACHE_REDIS_PREFIX": r.prefix, envSecretKeys: keys,
		"ATTRCACHE_HTTP_DRAIN_DELAY": "0s"}
}

// cli runs a command in process with keys and returns its standard output.
func (r *rotation) cli(t *testing.T, keys string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, testEnv(r.vars(keys)), strings.NewReader(""), &out, &errOut)
	return out.String(), err
}

// child returns the command `attrcache args…` as a process of its own (the test binary, see
// envRunMain) with keys.
func (r *rotation) child(keys string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), envRunMain + "=1"}
	for k, v := range testEnvVars(r.vars(keys)) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// sealedCounts reads the counts per kind and key id straight from the database.
func (r *rotation) sealedCounts(t *testing.T, keys string) map[string]int64 {
	t.Helper()
	k, err := attrcache.ParseSecretKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	db, err := persist.Open(t.Context(), r.dsn, k)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	counts, err := db.SealedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range counts {
		out[c.KeyID+"/"+c.Kind] = c.Count
	}
	return out
}

const (
	rotationUsers        = 4
	rotationAttrsPerUser = 5000
)

type rotationUser struct {
	name, password, ust string
}

// encName is the name of a user's i-th encrypted attribute.
func encName(i int) string { return fmt.Sprintf("e%05d", i) }

// readAll reads every encrypted attribute of u, decrypted, 1,000 at a time, and returns the
// values by name as JSON text.
func (s *servingTest) readAll(t *testing.T, ust string) map[string]string {
	t.Helper()
	values := map[string]string{}
	for start := 0; start < rotationAttrsPerUser; start += attrcache.MaxAttrItems {
		var names []string
		for i := start; i < min(start+attrcache.MaxAttrItems, rotationAttrsPerUser); i++ {
			names = append(names, encName(i))
		}
		status, answer := s.call(t, http.MethodGet, "/zato/sso/user/attr", map[string]any{"ust": ust, "current_app": "CRM", "data": names})
		if status != http.StatusOK {
			t.Fatalf("GET many: HTTP %d %v", status, answer)
		}
		result, _ := answer["result"].(map[string]any)
		for _, name := range names {
			attr, _ := result[name].(map[string]any)
			if attr == nil {
				t.Fatalf("%s is missing", name)
			}
			b, _ := json.Marshal(attr["value"])
			values[name] = string(b)
		}
	}
	return values
}

// rotationLoad writes and reads encrypted attributes through serve while a rewrap runs: one
// writer per user on the first 100 names, readers of random names. Every call must succeed and
// every value read must have been decrypted.
type rotationLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	failures atomic.Int64
	calls    atomic.Int64
	mu       sync.Mutex
	firstErr error
	written  map[string]string // user/name → last acknowledged value
}

func (l *rotationLoad) fail(err error) {
	l.failures.Add(1)
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

func startRotationLoad(s *servingTest, users []rotationUser) *rotationLoad {
	l := &rotationLoad{stop: make(chan struct{}), written: map[string]string{}}
	deadline := time.Now().Add(2 * time.Minute)
	running := func() bool {
		select {
		case <-l.stop:
			return false
		default:
			return time.Now().Before(deadline)
		}
	}
	for ui, u := range users {
		l.wg.Go(func() { // writer
			for n := 0; running(); n++ {
				name := encName(n % 100)
				value := fmt.Sprintf(`{"user":%d,"w":%d}`, ui, n) // as a read re-encodes it: keys sorted
				status, answer, err := s.send(context.Background(), http.MethodPut, "/zato/sso/user/attr",
					map[string]any{"ust": u.ust, "current_app": "CRM", "name": name, "value": json.RawMessage(value), "encrypt": true})
				l.calls.Add(1)
				if err != nil || status != http.StatusOK {
					l.fail(fmt.Errorf("PUT %s: HTTP %d %v %v", name, status, answer, err))
					continue
				}
				l.mu.Lock()
				l.written[u.name+"/"+name] = value
				l.mu.Unlock()
			}
		})
		l.wg.Go(func() { // reader
			rng := rand.New(rand.NewPCG(uint64(ui), 1))
			for running() {
				names := make([]string, 50)
				for i := range names {
					names[i] = encName(rng.IntN(rotationAttrsPerUser))
				}
				status, answer, err := s.send(context.Background(), http.MethodGet, "/zato/sso/user/attr",
					map[string]any{"ust": u.ust, "current_app": "CRM", "data": names})
				l.calls.Add(1)
				if err != nil || status != http.StatusOK {
					l.fail(fmt.Errorf("GET many: HTTP %d %v %v", status, answer, err))
					continue
				}
				result, _ := answer["result"].(map[string]any)
				for _, name := range names {
					attr, _ := result[name].(map[string]any)
					value, _ := attr["value"].(map[string]any)
					if value == nil { // a ciphertext would be a string
						l.fail(fmt.Errorf("GET %s: %v, want a decrypted object", name, result[name]))
					}
				}
			}
		})
	}
	return l
}

func (l *rotationLoad) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failures.Load(); n > 0 {
		t.Errorf("%d of %d calls during the rewrap failed; the first: %v", n, l.calls.Load(), l.firstErr)
	}
	if l.calls.Load() == 0 {
		t.Error("no call ran during the rewrap")
	}
}

var resealedRe = regexp.MustCompile(`re-sealed (\d+) values with key k2 .* in ([0-9.a-zµ]+)`)

// TestKeyRotationEndToEnd: data sealed with k1; serve without k1 says so at start and answers a
// clear error; k2 added first; a rewrap killed half-way (SIGKILL) and run again, under writes and
// reads that all succeed; status then counts nothing for k1 and Redis equals MySQL; with k1
// removed everything still reads.
func TestKeyRotationEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes over 20,000 attributes")
	}
	r := newRotation(t, "rotate_e2e")
	ctx := t.Context()

	// Data sealed with k1: users with e-mails and TOTP keys, 5,000 encrypted attributes each.
	users := make([]rotationUser, rotationUsers)
	for i := range users {
		users[i] = rotationUser{name: fmt.Sprintf("rot%d", i), password: fmt.Sprintf("Rot-pass-%d", i)}
		if _, err := r.cli(t, r.onlyK1(), "sso", "create-user", users[i].name, "--password", users[i].password,
			"--email", users[i].name+"@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	s1 := startServe(t, r.vars(r.onlyK1()))
	for i := range users {
		users[i].ust = s1.login(t, users[i].name, users[i].password, "")
		for start := 0; start < rotationAttrsPerUser; start += attrcache.MaxAttrItems {
			var data []map[string]any
			for n := start; n < start+attrcache.MaxAttrItems; n++ {
				data = append(data, map[string]any{"name": encName(n), "value": map[string]any{"n": n}, "encrypt": true})
			}
			if status, answer := s1.call(t, http.MethodPut, "/zato/sso/user/attr",
				map[string]any{"ust": users[i].ust, "current_app": "CRM", "data": data}); status != http.StatusOK {
				t.Fatalf("PUT many: HTTP %d %v", status, answer)
			}
		}
		s1.readAll(t, users[i].ust) // Redis now holds copies sealed with k1
	}
	if err := s1.stop(); err != nil {
		t.Fatal(err)
	}
	before := r.sealedCounts(t, r.onlyK1())
	if want := int64(rotationUsers * rotationAttrsPerUser); before["k1/attr_value"] != want || before["k1/email"] != rotationUsers {
		t.Fatalf("sealed with k1: %v, want %d attribute values and %d e-mails", before, want, rotationUsers)
	}

	t.Run("k1 missing", func(t *testing.T) {
		s := startServe(t, r.vars(r.onlyK2()))
		if log := s.stderr.String(); !strings.Contains(log, "not configured") || !strings.Contains(log, `"key_id":"k1"`) {
			t.Errorf("serve's start-up log does not report the values sealed with k1:\n%s", log)
		}
		status, answer := s.call(t, http.MethodPost, "/zato/sso/user/login",
			map[string]any{"username": users[0].name, "password": users[0].password, "current_app": "CRM"})
		if msg, _ := answer["message"].(string); status != http.StatusServiceUnavailable ||
			!slices.Equal(subStatus(answer), []string{attrcache.CodeInternalError}) || !strings.Contains(msg, `"k1"`) {
			t.Errorf("login of a user whose e-mail is sealed with k1: HTTP %d %v, want 503 E008004 naming k1", status, answer)
		}
		missing := `attrcache_sealed_values{configured="false",key_id="k1",kind="attr_value"}`
		pollUntil(t, missing, func() bool { return s.scrape(t)[missing] == float64(before["k1/attr_value"]) })
		if out, err := r.cli(t, r.onlyK2(), "keys", "status"); err == nil || !strings.Contains(out, "NOT CONFIGURED") {
			t.Errorf("keys status without k1: %v\n%s\nwant an error and k1 flagged", err, out)
		}
	})

	// Deploy: k2 first, k1 still there.
	s2 := startServe(t, r.vars(r.both()))
	for i := range users {
		users[i].ust = s2.login(t, users[i].name, users[i].password, "")
	}
	load := startRotationLoad(s2, users)

	// A rewrap in a pipe, killed once it has done about half.
	var killedOut, killedErr syncBuffer
	killed := r.child(r.both(), "keys", "rewrap", "--batch", "200", "--rate", "4000")
	killed.Stdout, killed.Stderr = &killedOut, &killedErr
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	total := before["k1/attr_value"]
	pollUntil(t, "the first rewrap to re-seal half", func() bool {
		return r.sealedCounts(t, r.both())["k1/attr_value"] <= total/2
	})
	if err := killed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := killed.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the first rewrap ended with %v, want killed", err)
	}
	left := r.sealedCounts(t, r.both())["k1/attr_value"]
	if left == 0 || left >= total {
		t.Fatalf("after the kill %d of %d values are sealed with k1, want some but not all", left, total)
	}
	if plain := killedErr.String(); !strings.Contains(plain, "progress: ") || strings.Contains(plain, "\r") {
		t.Errorf("rewrap's progress in a pipe = %q, want plain lines", plain)
	}

	// Run again, in a pseudo-terminal: it finds what is left and shows a bar.
	pty := exec.Command("script", "-qfec", os.Args[0]+" keys rewrap --batch 500", "/dev/null")
	pty.Env = r.child(r.both()).Env
	out, err := pty.CombinedOutput()
	if err != nil {
		t.Fatalf("the second rewrap: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\r[") || !strings.Contains(string(out), "ETA") || !strings.Contains(string(out), "100.0%") {
		t.Errorf("rewrap's progress on a terminal = %q, want a bar redrawn with \\r, its rate and ETA", out)
	}
	m := resealedRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("the second rewrap printed %q, want its summary", out)
	}
	resealed, _ := strconv.Atoi(m[1])
	elapsed, _ := time.ParseDuration(m[2])
	t.Logf("second rewrap: %d values in %s: %.0f rows/s, under load", resealed, elapsed, float64(resealed)/elapsed.Seconds())
	load.finish(t)

	after := r.sealedCounts(t, r.both())
	for kind, n := range after {
		if strings.HasPrefix(kind, "k1/") && n != 0 {
			t.Errorf("after the rewrap %s = %d, want 0", kind, n)
		}
	}
	status, err := r.cli(t, r.both(), "keys", "status")
	t.Logf("keys status after the rewrap:\n%s", status)
	if err != nil || !regexp.MustCompile(`(?m)^k1\s+older\s+0\s+0\s+0$`).MatchString(status) {
		t.Errorf("keys status after the rewrap: %v\n%s\nwant k1 sealing nothing", err, status)
	}
	rawDB := openRawDSN(t, r.dsn)
	rdb, err := testenv.RedisClient()
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if client, ok := rdb.(*redis.Client); ok {
		diffs, cached, err := consistency.Differences(ctx, rawDB, client, r.prefix)
		if err != nil || len(diffs) > 0 || cached == 0 {
			t.Errorf("Redis against MySQL after the rewrap: %d keys cached, %v, differences %v", cached, err, diffs)
		}
	}
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}

	// k1 removed: everything still reads, and nothing is reported missing.
	s3 := startServe(t, r.vars(r.onlyK2()))
	if strings.Contains(s3.stderr.String(), "not configured") {
		t.Errorf("serve with k2 alone reports values it cannot read:\n%s", s3.stderr)
	}
	for _, u := range users {
		values := s3.readAll(t, s3.login(t, u.name, u.password, ""))
		for i := range rotationAttrsPerUser {
			name := encName(i)
			want := fmt.Sprintf(`{"n":%d}`, i)
			if w, ok := load.written[u.name+"/"+name]; ok {
				want = w
			}
			if got := values[name]; got != want {
				t.Fatalf("%s/%s = %s, want %s", u.name, name, got, want)
			}
		}
	}
	sealed := `attrcache_sealed_values{configured="true",key_id="k2",kind="attr_value"}`
	pollUntil(t, sealed, func() bool { return s3.scrape(t)[sealed] == float64(before["k1/attr_value"]) })
	if _, err := r.cli(t, r.onlyK2(), "keys", "status"); err != nil {
		t.Errorf("keys status with k2 alone: %v", err)
	}
	exported, err := r.cli(t, r.onlyK2(), "sso", "export-user", users[0].name)
	var export struct {
		User  map[string]any            `json:"user"`
		Attrs map[string]map[string]any `json:"attrs"`
	}
	if err != nil || json.Unmarshal([]byte(exported), &export) != nil || len(export.Attrs) != rotationAttrsPerUser ||
		export.User["email"] != users[0].name+"@example.com" {
		t.Errorf("export-user with k2 alone: %v, %d attributes, user %v", err, len(export.Attrs), export.User)
	}
}

// openRawDSN opens dsn with database/sql, closed at the end of the test.
func openRawDSN(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestRewrapDropsCopiesAKilledRunLeft: a rewrap killed between a batch's commit and its cache
// update leaves Redis holding copies sealed with the old key while MySQL holds the new; the next
// run finds nothing left to re-seal in MySQL but deletes those copies, so that with the old key
// removed every read still opens. The kill is reproduced exactly: the batch is committed through
// the database alone.
func TestRewrapDropsCopiesAKilledRunLeft(t *testing.T) {
	r := newRotation(t, "rotate_killwindow")
	if _, err := r.cli(t, r.onlyK1(), "sso", "create-user", "kw", "--password", "Kill-window-1"); err != nil {
		t.Fatal(err)
	}
	s1 := startServe(t, r.vars(r.onlyK1()))
	ust := s1.login(t, "kw", "Kill-window-1", "")
	var data []map[string]any
	for n := range 20 {
		data = append(data, map[string]any{"name": encName(n), "value": map[string]any{"n": n}, "encrypt": true})
	}
	if status, answer := s1.call(t, http.MethodPut, "/zato/sso/user/attr", map[string]any{"ust": ust, "current_app": "CRM", "data": data}); status != http.StatusOK {
		t.Fatalf("PUT many: HTTP %d %v", status, answer)
	}
	if err := s1.stop(); err != nil {
		t.Fatal(err)
	}

	cfg, keys, b := r.openBackends(t, r.both())
	defer b.close()
	rw := &rewrapper{db: b.db, attrs: b.attrs, users: b.cache, keys: keys, batch: 100, log: newLogger(cfg, io.Discard),
		progress: newProgress(io.Discard)}
	// The killed run's batch: committed in MySQL, never cached. Redis keeps the k1 copies that
	// the PUT above cached.
	rows, err := b.db.AttrsSealedWith(t.Context(), "k1", attrcache.AttrKey{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var reseals []attrcache.AttrReseal
	for _, row := range rows {
		resealed, err := rw.resealAttrValue(row)
		if err != nil {
			t.Fatal(err)
		}
		reseals = append(reseals, attrcache.AttrReseal{Key: attrcache.AttrKey{Scope: row.Scope, Name: row.Name}, Sealed: row.Value, Resealed: resealed})
	}
	if stored, err := b.db.ResealAttrs(t.Context(), reseals); err != nil || len(stored) != 20 {
		t.Fatalf("the killed run's batch: %d rows, %v", len(stored), err)
	}

	done, err := rw.run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if done.resealed != 1 || done.cacheDropped != 20 {
		t.Errorf("the next run re-sealed %d values and dropped %d copies, want 1 (the user's TOTP key) and the 20 the killed run left",
			done.resealed, done.cacheDropped)
	}
	if client, ok := b.redis.(*redis.Client); ok {
		if diffs, _, err := consistency.Differences(t.Context(), openRawDSN(t, r.dsn), client, r.prefix); err != nil || len(diffs) > 0 {
			t.Errorf("Redis against MySQL: %v %v", err, diffs)
		}
	}
	s2 := startServe(t, r.vars(r.onlyK2()))
	ust = s2.login(t, "kw", "Kill-window-1", "")
	status, answer := s2.call(t, http.MethodGet, "/zato/sso/user/attr", map[string]any{"ust": ust, "current_app": "CRM", "name": encName(7)})
	if value, _ := answer["value"].(map[string]any); status != http.StatusOK || value["n"] != float64(7) {
		t.Errorf("GET with k1 removed: HTTP %d %v, want 200 and the value", status, answer)
	}
}
