package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/stacktest"
	"github.com/attrcache/attrcache/sso"
)

// feedEvent is a change feed event as the wire has it.
type feedEvent struct {
	Cursor  string `json:"cursor"`
	Op      string `json:"op"`
	Scope   string `json:"scope"`
	UserID  string `json:"user_id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Time    string `json:"time"`
}

// feedPage is one answer of GET /zato/sso/user/attr/changes.
type feedPage struct {
	status    int
	Status    string      `json:"status"`
	SubStatus []string    `json:"sub_status"`
	Result    []feedEvent `json:"result"`
	Next      string      `json:"next"`
}

// getChanges reads the feed through s with the query q (ust, current_app and the rest).
func getChanges(ctx context.Context, t *testing.T, s *stacktest.Stack, q url.Values) (*feedPage, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Server.URL+"/zato/sso/user/attr/changes?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	page := &feedPage{status: res.StatusCode}
	if err := json.NewDecoder(res.Body).Decode(page); err != nil {
		return nil, fmt.Errorf("HTTP %d: %w", res.StatusCode, err)
	}
	return page, nil
}

// feedQuery returns the query of u's read of the feed with the given keys and values.
func feedQuery(u user, kv ...string) url.Values {
	q := url.Values{"ust": {u.UST}, "current_app": {stacktest.App}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}

// newSuperUser creates a super-user through s and logs them in.
func newSuperUser(t *testing.T, s *stacktest.Stack, username string) user {
	t.Helper()
	password := username + "-Xk9#q2"
	u, err := s.API.AdminCreateUser(t.Context(), sso.CreateUserInput{Username: username, Password: &password}, true)
	if err != nil {
		t.Fatalf("AdminCreateUser: %v", err)
	}
	res := s.Call(t.Context(), http.MethodPost, "/zato/sso/user/login",
		map[string]any{"username": username, "password": password, "current_app": stacktest.App})
	ust, _ := res.Body["ust"].(string)
	if !res.OK() || ust == "" {
		t.Fatalf("login of %s: %s", username, res)
	}
	return user{ID: u.UserID, UST: ust}
}

// feedEnd returns the cursor of the last event the feed has handed out so far.
func feedEnd(t *testing.T, s *stacktest.Stack) string {
	t.Helper()
	_, last, err := s.DB.FeedBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(last, 10)
}

// opKey names an event by attribute: user, scope and name.
func opKey(userID, scope, name string) string { return userID + "/" + scope + "/" + name }

// feedLog gathers what one reader received and checks it as it comes: cursors grow, and each
// attribute's versions grow.
type feedLog struct {
	mu       sync.Mutex
	users    map[string]bool // the test's users; other events are another test's
	cursors  map[string]bool
	last     int64
	versions map[string]int64
	ops      map[string][]string // by opKey, in the order received
	problems []string
}

func newFeedLog(users []user) *feedLog {
	l := &feedLog{users: make(map[string]bool), cursors: make(map[string]bool), versions: make(map[string]int64), ops: make(map[string][]string)}
	for _, u := range users {
		l.users[u.ID] = true
	}
	return l
}

func (l *feedLog) add(e feedEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq, err := strconv.ParseInt(e.Cursor, 10, 64)
	switch {
	case err != nil:
		l.problems = append(l.problems, fmt.Sprintf("cursor %q is not a seq", e.Cursor))
	case l.cursors[e.Cursor]:
		l.problems = append(l.problems, "cursor "+e.Cursor+" delivered twice")
	case seq <= l.last:
		l.problems = append(l.problems, fmt.Sprintf("cursor %d after %d", seq, l.last))
	}
	l.cursors[e.Cursor], l.last = true, seq
	if !l.users[e.UserID] {
		return
	}
	k := opKey(e.UserID, e.Scope, e.Name)
	if e.Version <= l.versions[k] {
		l.problems = append(l.problems, fmt.Sprintf("%s: version %d after %d", k, e.Version, l.versions[k]))
	}
	l.versions[k] = e.Version
	l.ops[k] = append(l.ops[k], e.Op)
}

// count returns how many events of the test's users the reader received.
func (l *feedLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ops := range l.ops {
		n += len(ops)
	}
	return n
}

// check compares what the reader received with the writes each attribute had, in order.
func (l *feedLog) check(t *testing.T, reader string, want map[string][]string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.problems {
		t.Errorf("%s: %s", reader, p)
	}
	for k, ops := range want {
		if !slices.Equal(l.ops[k], ops) {
			t.Errorf("%s: %s: got ops %v, want %v (each acknowledged write once, in order)", reader, k, l.ops[k], ops)
		}
	}
	for k := range l.ops {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: events of %s, which nobody wrote", reader, k)
		}
	}
}

// readSSE reads Server-Sent Events from s as u from the cursor lastID ("" the feed's oldest),
// handing each event to got, until ctx ends or got says stop; it returns the last event's id.
func readSSE(ctx context.Context, s *stacktest.Stack, u user, lastID string, got func(feedEvent) (more bool)) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Server.URL+"/zato/sso/user/attr/changes?"+feedQuery(u).Encode(), nil)
	if err != nil {
		return lastID, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return lastID, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return lastID, fmt.Errorf("HTTP %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	scanner := bufio.NewScanner(res.Body)
	var id, data string
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case strings.HasPrefix(line, "event: "):
			return lastID, fmt.Errorf("the stream sent %s", line)
		case line == "" && data != "":
			var e feedEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return lastID, err
			}
			if e.Cursor != id {
				return lastID, fmt.Errorf("id %q for the event of cursor %q", id, e.Cursor)
			}
			lastID, data = id, ""
			if !got(e) {
				return lastID, nil
			}
		}
	}
	return lastID, ctx.Err()
}

// TestFeedDeliversEveryWriteOnce: two instances write a mixed load (single and many sets, deletes,
// session attributes) for several users; a third serves the feed to a super-user that pages
// through it, one that long-polls, one that streams it as Server-Sent Events and drops the
// connection every 40 events to resume with Last-Event-ID, and to a regular user long-polling
// their own. Each receives every acknowledged write of the users concerned exactly once, each
// attribute's in the order written, and the regular user nothing of anyone else.
func TestFeedDeliversEveryWriteOnce(t *testing.T) {
	a, b, c := env.NewStack(t, stacktest.Options{}), env.NewStack(t, stacktest.Options{}), env.NewStack(t, stacktest.Options{})
	prefix := fmt.Sprintf("feed-%d", time.Now().UnixNano())
	users := a.NewUsers(t, prefix, 4)
	admin := newSuperUser(t, c, prefix+"-admin")
	start := feedEnd(t, c)

	const rounds = 30
	total, totalOwn := 0, 0
	want := make(map[string][]string) // by opKey: the ops acknowledged, in order
	wantOwn := make(map[string][]string)
	var writes sync.Mutex
	ack := func(u user, scope, name, op string) {
		writes.Lock()
		defer writes.Unlock()
		want[opKey(u.ID, scope, name)] = append(want[opKey(u.ID, scope, name)], op)
		if u.ID == users[0].ID {
			wantOwn[opKey(u.ID, scope, name)] = append(wantOwn[opKey(u.ID, scope, name)], op)
			totalOwn++
		}
		total++
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	superLog, pollLog, sseLog, ownLog := newFeedLog(users), newFeedLog(users), newFeedLog(users), newFeedLog(users)
	var done sync.WaitGroup
	writing := make(chan struct{})
	allWritten := func(l *feedLog) bool {
		select {
		case <-writing: // the writes are over: total is final
		default:
			return false
		}
		writes.Lock()
		defer writes.Unlock()
		if l == ownLog {
			return l.count() >= totalOwn
		}
		return l.count() >= total
	}
	longPoll := func(u user, l *feedLog, name string, onlyOwn bool) {
		defer done.Done()
		after := start
		for ctx.Err() == nil && !allWritten(l) {
			page, err := getChanges(ctx, t, c, feedQuery(u, "after", after, "wait", "2", "limit", "25"))
			if err != nil || page.status != http.StatusOK {
				t.Errorf("%s: %v, %+v", name, err, page)
				return
			}
			for _, e := range page.Result {
				if onlyOwn && e.UserID != u.ID {
					t.Errorf("%s: an event of %s", name, e.UserID)
				}
				l.add(e)
			}
			after = page.Next
		}
	}
	done.Add(3)
	go longPoll(admin, pollLog, "long poll", false)
	go longPoll(users[0], ownLog, "own long poll", true)
	var lags []time.Duration // from commit to the SSE client, of events received live
	go func() {
		defer done.Done()
		lastID := start
		for ctx.Err() == nil && !allWritten(sseLog) {
			n := 0
			var err error
			lastID, err = readSSE(ctx, c, admin, lastID, func(e feedEvent) bool {
				if committed, err := attrcache.ParseTime(e.Time); err == nil && n > 0 {
					lags = append(lags, time.Since(committed))
				}
				sseLog.add(e)
				n++
				return n < 40 && !allWritten(sseLog)
			})
			if err != nil && ctx.Err() == nil {
				t.Errorf("SSE: %v", err)
				return
			}
		}
	}()

	// Each user's attributes are written by one writer, alternately through A and B.
	var writers sync.WaitGroup
	for i, u := range users {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for r := range rounds {
				s := []*stacktest.Stack{a, b}[(i+r)%2]
				name := fmt.Sprintf("k%d", r%4)
				switch r % 5 {
				case 0, 1:
					if res := s.SetAttr(ctx, u, name, fmt.Sprint(r)); res.OK() {
						ack(u, "user", name, "set")
					}
				case 2:
					res := s.Call(ctx, http.MethodPut, "/zato/sso/user/attr", map[string]any{"ust": u.UST, "current_app": stacktest.App,
						"data": []map[string]any{{"name": name, "value": "m"}, {"name": "many", "value": "m"}}})
					if res.OK() {
						ack(u, "user", name, "set")
						ack(u, "user", "many", "set")
					}
				case 3:
					if res := s.Attr(ctx, http.MethodDelete, u, name, nil); res.OK() {
						ack(u, "user", name, "delete")
					}
				case 4:
					res := s.Call(ctx, http.MethodPut, "/zato/sso/session/attr", map[string]any{"ust": u.UST, "current_app": stacktest.App,
						"target_ust": u.UST, "name": name, "value": "s"})
					if res.OK() {
						ack(u, "session", name, "set")
					}
				}
			}
		}()
	}
	writers.Wait()
	close(writing)
	if total < len(users)*rounds {
		t.Fatalf("%d writes acknowledged, want at least %d", total, len(users)*rounds)
	}

	// Paging, after the load, from the same start.
	after := start
	for ctx.Err() == nil && superLog.count() < total {
		page, err := getChanges(ctx, t, c, feedQuery(admin, "after", after, "limit", "7", "wait", "1"))
		if err != nil || page.status != http.StatusOK {
			t.Fatalf("paging: %v, %+v", err, page)
		}
		for _, e := range page.Result {
			superLog.add(e)
		}
		after = page.Next
	}
	done.Wait()
	if len(lags) > 0 {
		slices.Sort(lags)
		t.Logf("delivery lag from commit to the SSE client, %d events: p50 %v, p99 %v, max %v",
			len(lags), lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1])
	}
	superLog.check(t, "paging", want)
	pollLog.check(t, "long poll", want)
	sseLog.check(t, "SSE", want)
	ownLog.check(t, "own long poll", wantOwn)

	// A regular user may not name another.
	page, err := getChanges(ctx, t, c, feedQuery(users[1], "user_id", users[0].ID, "after", start))
	if err != nil || page.status != http.StatusForbidden || !slices.Equal(page.SubStatus, []string{"E005001"}) {
		t.Errorf("a regular user's read of another's feed: %v, %+v; want 403 E005001", err, page)
	}
	// A super-user may, and sees that user's events alone.
	page, err = getChanges(ctx, t, c, feedQuery(admin, "user_id", users[1].ID, "after", start, "limit", "1000"))
	if err != nil || page.status != http.StatusOK {
		t.Fatalf("a super-user's read of one user: %v, %+v", err, page)
	}
	for _, e := range page.Result {
		if e.UserID != users[1].ID {
			t.Errorf("the feed of %s holds an event of %s", users[1].ID, e.UserID)
		}
	}
}

// TestFeedExpireEventsOfUnreadAttributes: an attribute nobody reads after writing it gets its
// expire event within 5 s of its expiration time, once, and the purge follows.
func TestFeedExpireEventsOfUnreadAttributes(t *testing.T) {
	a, c := env.NewStack(t, stacktest.Options{}), env.NewStack(t, stacktest.Options{})
	u := a.NewUsers(t, fmt.Sprintf("feed-expire-%d", time.Now().UnixNano()), 1)[0]
	start := feedEnd(t, c)
	res := a.Call(t.Context(), http.MethodPut, "/zato/sso/user/attr", map[string]any{"ust": u.UST, "current_app": stacktest.App,
		"name": "short", "value": "v", "expiration": 1})
	if !res.OK() {
		t.Fatalf("PUT: %s", res)
	}
	written := time.Now()
	var events []feedEvent
	after := start
	for time.Since(written) < 10*time.Second {
		page, err := getChanges(t.Context(), t, c, feedQuery(u, "after", after, "wait", "1"))
		if err != nil || page.status != http.StatusOK {
			t.Fatalf("reading the feed: %v, %+v", err, page)
		}
		events = append(events, page.Result...)
		after = page.Next
		if len(events) >= 2 {
			break
		}
	}
	if len(events) != 2 || events[0].Op != "set" || events[1].Op != "expire" || events[1].Version != events[0].Version {
		t.Fatalf("events %+v, want the set and then the expire of its version", events)
	}
	// The expiry was 1 s after the write; its event came within 5 s of that.
	if late := time.Since(written) - time.Second; late > 5*time.Second {
		t.Errorf("the expire event came %v after the expiration time, want at most 5s", late)
	}
	page, err := getChanges(t.Context(), t, c, feedQuery(u, "after", after, "wait", "1.5"))
	if err != nil || len(page.Result) != 0 {
		t.Errorf("after the expire event: %v, %+v; want no more events", err, page)
	}
}

// TestFeedCursorTooOld: once retention has purged the events after a cursor, reading from it
// answers 410 E009102, and reading without a cursor starts at the oldest event kept.
func TestFeedCursorTooOld(t *testing.T) {
	a := env.NewStack(t, stacktest.Options{})
	u := a.NewUsers(t, fmt.Sprintf("feed-gone-%d", time.Now().UnixNano()), 1)[0]
	// Each write waits for its event, so that each is numbered in a page after the one before.
	_, start, err := a.DB.FeedBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var last int64 // the seq of u's last event
	for i := range 3 {
		if res := a.SetAttr(t.Context(), u, fmt.Sprint(i), "v"); !res.OK() {
			t.Fatalf("PUT: %s", res)
		}
		last = 0
		for deadline := time.Now().Add(5 * time.Second); last == 0 && time.Now().Before(deadline); {
			_, end, err := a.DB.FeedBounds(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			events, readTo, err := a.DB.FeedEvents(t.Context(), u.ID, start, end, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) > 0 {
				last, start = events[0].Seq, events[0].Seq
			} else {
				start = readTo
			}
		}
		if last == 0 {
			t.Fatalf("write %d did not reach the feed within 5s", i)
		}
	}
	// Every page before that of u's last event entered the feed beyond the retention.
	if _, err := a.DB.SQL().ExecContext(t.Context(), "UPDATE sso_feed_page SET fed_time = fed_time - INTERVAL 8 DAY WHERE last_seq < ?", last); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DB.PurgeFeed(t.Context(), time.Now().Add(-7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	page, err := getChanges(t.Context(), t, a, feedQuery(u, "after", strconv.FormatInt(last-2, 10)))
	if err != nil || page.status != http.StatusGone || !slices.Equal(page.SubStatus, []string{"E009102"}) {
		t.Errorf("a purged cursor: %v, %+v; want 410 E009102", err, page)
	}
	page, err = getChanges(t.Context(), t, a, feedQuery(u))
	if err != nil || page.status != http.StatusOK || len(page.Result) != 1 || page.Result[0].Name != "2" {
		t.Errorf("without a cursor: %v, %+v; want the one event of u kept", err, page)
	}
	for _, bad := range []string{"x", "-1", "01", strconv.FormatInt(last+1000, 10)} {
		page, err = getChanges(t.Context(), t, a, feedQuery(u, "after", bad))
		if err != nil || page.status != http.StatusForbidden || !slices.Equal(page.SubStatus, []string{"E008002"}) {
			t.Errorf("after=%q: %v, %+v; want 403 E008002", bad, err, page)
		}
	}
	for _, q := range [][]string{{"limit", "0"}, {"limit", "1001"}, {"wait", "31"}, {"wait", "x"}} {
		page, err = getChanges(t.Context(), t, a, feedQuery(u, q...))
		if err != nil || page.status != http.StatusForbidden || !slices.Equal(page.SubStatus, []string{"E008002"}) {
			t.Errorf("%v: %v, %+v; want 403 E008002", q, err, page)
		}
	}
}

// TestFeedKeepsWritesOfAKilledInstance: writes committed by an instance whose sequencer is dead
// (killed, as a process killed right after its commits leaves them) reach the feed all the
// same: the survivor's sequencer numbers them, and a reader on the survivor gets each once.
func TestFeedKeepsWritesOfAKilledInstance(t *testing.T) {
	a, c := env.NewStack(t, stacktest.Options{}), env.NewStack(t, stacktest.Options{})
	u := a.NewUsers(t, fmt.Sprintf("feed-kill-%d", time.Now().UnixNano()), 1)[0]
	start := feedEnd(t, c)
	a.Kill() // its relay, sequencer and server stop; its store still commits through the Go API
	attrs, err := a.API.UserAttrs(t.Context(), "cid-kill", "", u.UST, stacktest.App, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i := range 20 {
		name := fmt.Sprint(i % 3)
		if err := attrs.Set(t.Context(), name, "v"); err != nil {
			t.Fatalf("Set: %v", err)
		}
		want[opKey(u.ID, "user", name)] = append(want[opKey(u.ID, "user", name)], "set")
	}
	l := newFeedLog([]user{u})
	after := start
	for deadline := time.Now().Add(10 * time.Second); l.count() < 20 && time.Now().Before(deadline); {
		page, err := getChanges(t.Context(), t, c, feedQuery(u, "after", after, "wait", "1"))
		if err != nil || page.status != http.StatusOK {
			t.Fatalf("reading the feed: %v, %+v", err, page)
		}
		for _, e := range page.Result {
			l.add(e)
		}
		after = page.Next
	}
	l.check(t, "the survivor's reader", want)
}
