package cache

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestRedisUnreachable(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, unreachableRedis(t))

	if err := s.Ping(ctx); err == nil {
		t.Error("Ping = nil with Redis unreachable, want an error")
	}

	u := newUser(t)
	if _, err := testDB.DeleteUser(ctx, u.UserID); err != nil {
		t.Fatalf("clearing the user: %v", err)
	}
	token := "token-" + u.UserID
	u.SignUpConfirmToken = token
	sess := &attrcache.Session{
		Hash:           attrcache.HashSessionID(attrcache.NewSessionID()),
		UserID:         u.UserID,
		CreationTime:   attrcache.Now(),
		ExpirationTime: attrcache.Now().Add(time.Hour),
		StateChanges:   []attrcache.SessionStateChange{},
	}

	// In order: each step may rely on the ones before.
	steps := []struct {
		method string
		call   func() error
	}{
		{"CreateUser", func() error { return s.CreateUser(ctx, u) }},
		{"UserByID", func() error { _, err := s.UserByID(ctx, u.UserID); return err }},
		{"UserByUsername", func() error { _, err := s.UserByUsername(ctx, u.Username); return err }},
		{"UserBySignUpToken", func() error { _, err := s.UserBySignUpToken(ctx, token); return err }},
		{"SearchUsers", func() error {
			users, _, err := s.SearchUsers(ctx, attrcache.UserQuery{UserID: u.UserID})
			if err == nil && len(users) != 1 {
				err = errors.New("the user was not found")
			}
			return err
		}},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)})
			return err
		}},
		{"CreateSession", func() error { return s.CreateSession(ctx, sess) }},
		{"Session", func() error { _, err := s.Session(ctx, u.UserID, sess.Hash); return err }},
		{"SessionWithPrincipal", func() error {
			_, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
			if err == nil && !p.IsLocked {
				err = errors.New("the principal misses the update")
			}
			return err
		}},
		{"RenewSession", func() error {
			_, err := s.RenewSession(ctx, u.UserID, sess.Hash, sess.ExpirationTime.Add(time.Hour), attrcache.SessionStateChange{})
			return err
		}},
		{"UserSessions", func() error {
			sessions, err := s.UserSessions(ctx, u.UserID, attrcache.Now())
			if err == nil && len(sessions) != 1 {
				err = errors.New("the session was not listed")
			}
			return err
		}},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, u.UserID, sess.Hash) }},
		{"DeleteUser", func() error { _, err := s.DeleteUser(ctx, u.UserID); return err }},
	}
	for _, step := range steps {
		t.Run(step.method, func(t *testing.T) {
			inner.reset()
			if err := step.call(); err != nil {
				t.Fatalf("%s: %v", step.method, err)
			}
			if got := inner.counts()[step.method]; got != 1 {
				t.Errorf("inner %s calls = %d, want 1", step.method, got)
			}
		})
	}
}

func TestFailedUpdateDeletesKey(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, inner := newTestStore(t, newRedis(t, hook))
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)
	warm(t, s, inner, sess)

	// The script fails, DEL does not.
	hook.failOnly("evalsha", "eval")
	if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	hook.setFailing(false)

	if _, ok := rawValue(t, s.rdb, s.keys.principal(u.UserID)); ok {
		t.Error("the principal key survived a failed update, want it deleted")
	}
	_, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}
	if !p.IsLocked {
		t.Error("principal.IsLocked = false after locking the user, want true")
	}
}

func TestRelayEndsStalePrincipalAfterFailedUpdate(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, inner := newTestStore(t, newRedis(t, hook))
	plain := newRedis(t)
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)
	warm(t, s, inner, sess)
	principalKey := s.keys.principal(u.UserID)
	stale, _ := rawValue(t, plain, principalKey)

	// Redis fails after MySQL commits the lock: neither the update nor the deletion reaches it.
	hook.setFailing(true)
	if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
		t.Fatalf("UpdateUser with Redis failing: %v", err)
	}
	hook.setFailing(false)
	if got, _ := rawValue(t, plain, principalKey); got != stale {
		t.Fatalf("Redis holds %q, want the stale %q that the test is about", got, stale)
	}

	relayAll(t, s)
	_, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}
	if !p.IsLocked {
		t.Error("principal.IsLocked = false after the relay: the stale cached principal was served")
	}
	if got := cachedPrincipal(t, s, u.UserID); !got.IsLocked {
		t.Error("the refilled principal is not locked")
	}
}

func TestStaleFillAfterRelayIsRefused(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, _ := newTestStore(t, newRedis(t, hook))
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)

	// A reader loads the principal, then stalls; meanwhile a lock commits, its update fails and
	// the relay applies it; then the reader fills what it loaded.
	_, loaded, err := testDB.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	hook.failOnly("evalsha", "eval")
	if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	hook.setFailing(false)
	relayAll(t, s)

	s.fill(ctx, s.principalFill(ctx, loaded)...)
	got, ok := rawValue(t, s.rdb, s.keys.principal(u.UserID))
	if !ok || !strings.HasPrefix(got, floorMark) {
		t.Errorf("after the stale fill Redis holds %q (%v), want the relay's floor", got, ok)
	}
	_, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil || !p.IsLocked {
		t.Errorf("SessionWithPrincipal: %+v, %v; want the locked principal", p, err)
	}
}

func TestCancelledCallerDoesNotFailSharedLoad(t *testing.T) {
	s, inner := newTestStore(t, newRedis(t))
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)

	entered := make(chan struct{})
	release := make(chan struct{})
	inner.before = func(method string) {
		if method == "SessionWithPrincipal" {
			close(entered)
			<-release
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, _, err := s.SessionWithPrincipal(cancelled, u.UserID, sess.Hash)
		firstErr <- err
	}()
	<-entered
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
	}
	close(release)

	// The load finishes for nobody but still fills Redis.
	waitFor(t, "the abandoned load to fill Redis", func() bool {
		_, ok := rawValue(t, s.rdb, s.keys.session(u.UserID, sess.Hash))
		return ok
	})
	got, _, err := s.SessionWithPrincipal(context.Background(), u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}
	if !reflect.DeepEqual(got, sess) {
		t.Errorf("session = %+v, want %+v", got, sess)
	}
}
