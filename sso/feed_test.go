package sso_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// settledFeed waits, within a bound, until the sequencer has numbered every change logged so
// far, and then returns the whole change feed of userID ("": the caller's own) as the caller of
// ust reads it.
func settledFeed(t *testing.T, e *env, ust, userID string) []attrcache.FeedEvent {
	t.Helper()
	var logged int64
	if err := testSQL.QueryRowContext(t.Context(), "SELECT COALESCE(MAX(change_id), 0) FROM sso_change").Scan(&logged); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var unfed int
		err := testSQL.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM sso_change WHERE fed = FALSE AND change_id <= ?", logged).Scan(&unfed)
		if err != nil {
			t.Fatal(err)
		}
		if unfed == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes still not in the feed", unfed)
		}
	}
	stream, err := e.api.OpenChanges(t.Context(), "cid", userID, ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("OpenChanges: %v", err)
	}
	var events []attrcache.FeedEvent
	for cursor := ""; ; {
		page, err := stream.Read(t.Context(), cursor, sso.FeedMaxLimit, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(page.Events) == 0 {
			return events
		}
		events = append(events, page.Events...)
		cursor = page.Next
	}
}

// sessionOf returns the hash of the session of ust.
func sessionOf(t *testing.T, ust string) attrcache.SessionHash {
	t.Helper()
	rawID, _, err := attrcache.ParseUST(testKeys, ust)
	if err != nil {
		t.Fatalf("ParseUST: %v", err)
	}
	return attrcache.HashSessionID(rawID)
}

// A logout and a user's deletion take their attributes with them: one delete event each, of a
// version above the attribute's set; a session without attributes adds nothing.
func TestFeedDeletesAttributesGoneWithTheirScope(t *testing.T) {
	e := newEnv(t, func(c *sso.Config) { c.Feed = testFeed })
	ctx := context.Background()
	_, adminUST := e.superUser(t)
	u := e.createUser(t, false)
	withAttrs, without, stays := e.login(t, u), e.login(t, u), e.login(t, u)
	_, otherUST := e.regularUser(t)

	api := func(attrs *sso.AttrAPI, err error) *sso.AttrAPI {
		t.Helper()
		if err != nil {
			t.Fatalf("attribute API: %v", err)
		}
		return attrs
	}
	set := func(attrs *sso.AttrAPI, names ...string) {
		t.Helper()
		for _, name := range names {
			if err := attrs.Set(ctx, name, name+"-secret"); err != nil {
				t.Fatalf("Set(%s): %v", name, err)
			}
		}
	}
	set(api(e.api.SessionAttrs(ctx, "cid", withAttrs, withAttrs, testApp, testAddr)), "a", "b")
	set(api(e.api.SessionAttrs(ctx, "cid", stays, stays, testApp, testAddr)), "c")
	set(api(e.api.UserAttrs(ctx, "cid", "", stays, testApp, testAddr)), "p")
	for _, ust := range []string{withAttrs, without} {
		if err := e.api.Logout(ctx, "cid", ust, testApp, testAddr); err != nil {
			t.Fatalf("Logout: %v", err)
		}
	}

	key := func(ev attrcache.FeedEvent) string { return fmt.Sprintf("%s %s/%s", ev.Op, ev.Session, ev.Name) }
	checkGone := func(events []attrcache.FeedEvent, deleted map[string]attrcache.SessionHash) {
		t.Helper()
		setVersion := make(map[string]int64)
		var got, want []string
		for _, ev := range events {
			if ev.UserID != u.UserID {
				t.Errorf("event of user %s in the feed of %s", ev.UserID, u.UserID)
			}
			if ev.Session == sessionOf(t, without) {
				t.Errorf("event %s of the session without attributes", key(ev))
			}
			got = append(got, key(ev))
			switch ev.Op {
			case attrcache.FeedSet:
				setVersion[string(ev.Session)+"/"+ev.Name] = ev.Version
			case attrcache.FeedDelete:
				if v, ok := setVersion[string(ev.Session)+"/"+ev.Name]; !ok || ev.Version <= v {
					t.Errorf("%s of version %d after a set of version %d (seen: %v)", key(ev), ev.Version, v, ok)
				}
			}
		}
		for name, session := range map[string]attrcache.SessionHash{"a": sessionOf(t, withAttrs), "b": sessionOf(t, withAttrs),
			"c": sessionOf(t, stays), "p": ""} {
			want = append(want, key(attrcache.FeedEvent{Op: attrcache.FeedSet, Session: session, Name: name}))
		}
		for name, session := range deleted {
			want = append(want, key(attrcache.FeedEvent{Op: attrcache.FeedDelete, Session: session, Name: name}))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("events:\n got %q\nwant %q", got, want)
		}
	}

	// The owner sees the logout's deletes in their own feed; another user sees none of it.
	gone := map[string]attrcache.SessionHash{"a": sessionOf(t, withAttrs), "b": sessionOf(t, withAttrs)}
	checkGone(settledFeed(t, e, stays, ""), gone)
	for _, ev := range settledFeed(t, e, otherUST, "") {
		t.Errorf("another user's feed holds %s of %s", key(ev), ev.UserID)
	}

	if err := e.api.DeleteUserByID(ctx, "cid", u.UserID, adminUST, testApp, testAddr); err != nil {
		t.Fatalf("DeleteUserByID: %v", err)
	}
	gone["c"] = sessionOf(t, stays)
	gone["p"] = ""
	checkGone(settledFeed(t, e, adminUST, u.UserID), gone)
}

// TestFeedEventsCarryTheirCID checks that every event carries the cid of the call that made it:
// concurrent single writes (which group commit may join in one transaction), a many write, a
// delete and a logout.
func TestFeedEventsCarryTheirCID(t *testing.T) {
	e := newEnv(t, func(c *sso.Config) { c.Feed = testFeed })
	ctx := context.Background()
	u := e.createUser(t, false)
	ust, session := e.login(t, u), e.login(t, u)
	attrs := func(cid string) *sso.AttrAPI {
		t.Helper()
		a, err := e.api.UserAttrs(ctx, cid, "", ust, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	var wg sync.WaitGroup
	for i := range 8 {
		a := attrs(fmt.Sprintf("cid-single-%d", i))
		wg.Go(func() {
			if err := a.Set(ctx, fmt.Sprint("s", i), i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	must(t, attrs("cid-many").SetMany(ctx, []sso.AttrItem{{Name: "m1", Value: 1}, {Name: "m2", Value: 2}}))
	must(t, attrs("cid-delete").Delete(ctx, "m1"))
	sessionAttrs, err := e.api.SessionAttrs(ctx, "cid-session-set", session, session, testApp, testAddr)
	must(t, err)
	must(t, sessionAttrs.Set(ctx, "x", 1))
	must(t, e.api.Logout(ctx, "cid-logout", session, testApp, testAddr))

	want := map[string]string{"set m1": "cid-many", "set m2": "cid-many", "delete m1": "cid-delete",
		"set x": "cid-session-set", "delete x": "cid-logout"}
	for i := range 8 {
		want[fmt.Sprint("set s", i)] = fmt.Sprintf("cid-single-%d", i)
	}
	got := make(map[string]string)
	for _, ev := range settledFeed(t, e, ust, "") {
		got[string(ev.Op)+" "+ev.Name] = ev.CID
	}
	for event, cid := range want {
		if got[event] != cid {
			t.Errorf("%s: cid %q, want %q", event, got[event], cid)
		}
	}
}

// TestFeedWaitWokenByThisInstance: a reader waiting on the feed gets an event that this
// instance's sequencer added without waiting for the instance's poll of the feed (an hour here).
func TestFeedWaitWokenByThisInstance(t *testing.T) {
	e := newEnv(t, func(c *sso.Config) { c.Feed, c.FeedPollInterval = testFeed, time.Hour })
	_, ust := e.regularUser(t)
	attrs, err := e.api.UserAttrs(t.Context(), "cid", "", ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("UserAttrs: %v", err)
	}
	cursor := ""
	for _, ev := range settledFeed(t, e, ust, "") {
		cursor = strconv.FormatInt(ev.Seq, 10)
	}
	stream, err := e.api.OpenChanges(t.Context(), "cid", "", ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("OpenChanges: %v", err)
	}
	// A read that found its event before it waited proves nothing: write again, up to 5 times.
	for i := range 5 {
		type read struct {
			page *sso.Changes
			err  error
		}
		got := make(chan read, 1)
		start := time.Now()
		go func() {
			page, err := stream.Read(t.Context(), cursor, sso.FeedMaxLimit, 20*time.Second)
			got <- read{page, err}
		}()
		if err := attrs.Set(t.Context(), fmt.Sprintf("woken-%d", i), "v"); err != nil {
			t.Fatalf("Set: %v", err)
		}
		r := <-got
		if r.err != nil {
			t.Fatalf("Read: %v", r.err)
		}
		// The read looks at the feed once more when its wait ends: it must not have waited so long.
		if len(r.page.Events) == 0 || time.Since(start) >= 10*time.Second {
			t.Fatalf("a read waiting up to 20 s got %d events after %v: the sequencer did not wake the reader",
				len(r.page.Events), time.Since(start).Round(time.Millisecond))
		}
		if r.page.Waited {
			return
		}
		cursor = r.page.Next
	}
	t.Skip("each read found its event before it waited")
}
