package cache

import (
	"context"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestEveryKeyExpiresWithinMaxTTL(t *testing.T) {
	ctx := context.Background()
	const maxTTL = 30 * time.Minute
	a, inner := newAttrTestStoreWith(t, newRedis(t), Options{MaxTTL: maxTTL})
	u := newUser(t)
	sess := newSession(t, u.UserID, 48*time.Hour) // ends after the max TTL
	warm(t, a.s, inner, sess)
	userScope := attrcache.AttrScope{UserID: u.UserID}
	sessionScope := attrcache.AttrScope{UserID: u.UserID, Session: sess.Hash}
	now := attrcache.Now()
	for _, scope := range []attrcache.AttrScope{userScope, sessionScope} {
		if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("never", "1"), item("doomed", "2"), item("later", "3", now.Add(48*time.Hour))}, now); err != nil {
			t.Fatalf("SetAttrs: %v", err)
		}
		if _, err := a.DeleteAttrs(ctx, scope, []string{"doomed"}, now); err != nil {
			t.Fatalf("DeleteAttrs: %v", err)
		}
		if _, err := a.Attrs(ctx, scope, []string{"missing"}, now); err != nil {
			t.Fatalf("Attrs: %v", err)
		}
	}
	if _, err := a.s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	err := a.s.ApplyChanges(ctx, []attrcache.Change{{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeSet, UserID: u.UserID, Name: "floored", Version: 1}})
	if err != nil {
		t.Fatalf("ApplyChanges: %v", err)
	}

	// Every kind of key: principal, session, absent budget; per scope a value that never
	// expires, a tombstone, a value that expires after the max TTL, an absent marker; a floor.
	keys := []string{a.s.keys.principal(u.UserID), a.s.keys.session(u.UserID, sess.Hash), a.s.keys.absentBudget(u.UserID),
		a.s.keys.attr(attrcache.AttrKey{Scope: userScope, Name: "floored"})}
	for _, scope := range []attrcache.AttrScope{userScope, sessionScope} {
		keys = append(keys, a.s.keys.attrs(scope, []string{"never", "doomed", "later", "missing"})...)
	}
	for _, key := range keys {
		ttl, err := a.s.rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		if ttl == -2*time.Nanosecond {
			t.Errorf("%s is not in Redis, want it written", a.s.keys.redact(key))
			continue
		}
		if ttl <= 0 || ttl > maxTTL {
			t.Errorf("%s: PTTL %v, want 0 < PTTL <= %v", a.s.keys.redact(key), ttl, maxTTL)
		}
	}
}

func TestReadsSkipRedisAfterAFailureUntilTheRelayCaughtUp(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, inner := newTestStore(t, newRedis(t, hook))
	r := NewRelay(s, testDB, RelayOptions{})
	s.trust.gated.Store(true) // as Run does
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)
	warm(t, s, inner, sess)

	// Redis fails after MySQL commits the lock: the stale principal stays in Redis.
	hook.setFailing(true)
	if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
		t.Fatalf("UpdateUser with Redis failing: %v", err)
	}
	hook.setFailing(false)
	hook.reset()
	if _, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); err != nil || !p.IsLocked {
		t.Errorf("SessionWithPrincipal before the catch-up: %+v, %v; want the locked principal", p, err)
	}
	if n := hook.sent("mget"); n != 0 {
		t.Errorf("a read before the catch-up sent %d MGETs, want 0", n)
	}

	if err := r.catchUp(ctx); err != nil {
		t.Fatalf("catchUp: %v", err)
	}
	hook.reset()
	if _, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); err != nil || !p.IsLocked {
		t.Errorf("SessionWithPrincipal after the catch-up: %+v, %v; want the locked principal", p, err)
	}
	if n := hook.sent("mget"); n == 0 {
		t.Error("a read after the catch-up sent no MGET, want Redis used again")
	}
}

func TestReplayAppliesEveryChangeSince(t *testing.T) {
	ctx := context.Background()
	a, inner := newAttrTestStore(t, newRedis(t))
	scope := newScope(t, a, inner, false)
	if _, err := a.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("kept", "1"), item("doomed", "1")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	since := time.Now().Add(-time.Second) // the database's clock may be a little behind this one
	// Writes that reach MySQL only, as if Redis had lost them: Redis keeps the old copies.
	if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{item("kept", "2")}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs in MySQL: %v", err)
	}
	if _, err := testDB.DeleteAttrs(ctx, scope, []string{"doomed"}, attrcache.Now()); err != nil {
		t.Fatalf("DeleteAttrs in MySQL: %v", err)
	}
	if e := cachedEntry(t, a, scope, "kept"); e.state != entryLive {
		t.Fatalf("before the replay the key is in state %v, want the old value", e.state)
	}

	if err := NewRelay(a.s, testDB, RelayOptions{}).Replay(ctx, since); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	for name, want := range map[string]entryState{"kept": entryFloor, "doomed": entryTombstone} {
		if e := cachedEntry(t, a, scope, name); e.state != want {
			t.Errorf("after the replay %q is in state %v, want %v", name, e.state, want)
		}
	}
	checkReadsMatchMySQL(t, a, scope, "kept", "doomed")
}
