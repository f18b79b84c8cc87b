package sso_test

import (
	"context"
	"fmt"
	"slices"
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
