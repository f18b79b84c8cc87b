package cache

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// lookup is one of the two cache-first session look-ups, returning the principal when it does.
type lookup func(ctx context.Context, s *Store, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error)

func sessionWithPrincipal(ctx context.Context, s *Store, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error) {
	return s.SessionWithPrincipal(ctx, userID, hash)
}

func sessionOnly(ctx context.Context, s *Store, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error) {
	sess, err := s.Session(ctx, userID, hash)
	return sess, nil, err
}

// warm fills Redis with the session and its owner and resets the inner call counts.
func warm(t *testing.T, s *Store, inner *countingStore, sess *attrcache.Session) {
	t.Helper()
	if _, _, err := s.SessionWithPrincipal(context.Background(), sess.UserID, sess.Hash); err != nil {
		t.Fatalf("warming the cache: %v", err)
	}
	inner.reset()
}

func deleteKey(t *testing.T, s *Store, key string) {
	t.Helper()
	if err := s.rdb.Del(context.Background(), key).Err(); err != nil {
		t.Fatalf("DEL %s: %v", key, err)
	}
}

func TestLookupInnerCalls(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))

	// Each case prepares the cache for a fresh user and session, then looks the session up.
	tests := []struct {
		name    string
		prepare func(t *testing.T, sess *attrcache.Session)
		lookup  lookup
		want    map[string]int // inner calls
	}{
		{
			name:    "SessionWithPrincipal, cold cache",
			prepare: func(t *testing.T, sess *attrcache.Session) {},
			lookup:  sessionWithPrincipal,
			want:    map[string]int{"SessionWithPrincipal": 1},
		},
		{
			name:    "SessionWithPrincipal, both cached",
			prepare: func(t *testing.T, sess *attrcache.Session) { warm(t, s, inner, sess) },
			lookup:  sessionWithPrincipal,
			want:    map[string]int{},
		},
		{
			name: "SessionWithPrincipal, principal expired",
			prepare: func(t *testing.T, sess *attrcache.Session) {
				warm(t, s, inner, sess)
				deleteKey(t, s, s.keys.principal(sess.UserID))
			},
			lookup: sessionWithPrincipal,
			want:   map[string]int{"UserByID": 1},
		},
		{
			name: "SessionWithPrincipal, session evicted",
			prepare: func(t *testing.T, sess *attrcache.Session) {
				warm(t, s, inner, sess)
				deleteKey(t, s, s.keys.session(sess.UserID, sess.Hash))
			},
			lookup: sessionWithPrincipal,
			want:   map[string]int{"SessionWithPrincipal": 1},
		},
		{
			name:    "Session, cold cache",
			prepare: func(t *testing.T, sess *attrcache.Session) {},
			lookup:  sessionOnly,
			want:    map[string]int{"Session": 1},
		},
		{
			name:    "Session, both cached",
			prepare: func(t *testing.T, sess *attrcache.Session) { warm(t, s, inner, sess) },
			lookup:  sessionOnly,
			want:    map[string]int{},
		},
		{
			name: "Session, principal expired",
			prepare: func(t *testing.T, sess *attrcache.Session) {
				warm(t, s, inner, sess)
				deleteKey(t, s, s.keys.principal(sess.UserID))
			},
			lookup: sessionOnly,
			want:   map[string]int{"Session": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t)
			sess := newSession(t, u.UserID, time.Hour)
			tt.prepare(t, sess)
			inner.reset()

			gotSession, gotPrincipal, err := tt.lookup(ctx, s, u.UserID, sess.Hash)
			if err != nil {
				t.Fatalf("look-up: %v", err)
			}
			if got := inner.counts(); !maps.Equal(got, tt.want) {
				t.Errorf("inner calls = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(gotSession, sess) {
				t.Errorf("session = %+v, want %+v", gotSession, sess)
			}
			if gotPrincipal != nil && !reflect.DeepEqual(gotPrincipal, u.Principal()) {
				t.Errorf("principal = %+v, want %+v", gotPrincipal, u.Principal())
			}
		})
	}
}

func TestMissFillsRedis(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, inner := newTestStore(t, newRedis(t, hook))
	u := newUser(t)
	sess := newSession(t, u.UserID, 30*time.Minute)

	if _, _, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}

	sessionKey := s.keys.session(u.UserID, sess.Hash)
	if got, want := expiresAt(t, s.rdb, sessionKey), time.UnixMilli(sess.ExpirationTime.UnixMilli()); !got.Equal(want) {
		t.Errorf("session key expires at %v, want the session's expiration time %v", got, want)
	}
	principalKey := s.keys.principal(u.UserID)
	ttl, err := s.rdb.PTTL(ctx, principalKey).Result()
	if err != nil {
		t.Fatalf("PTTL: %v", err)
	}
	if ttl <= 0 || ttl > DefaultPrincipalTTL {
		t.Errorf("principal key PTTL = %v, want within (0, %v]", ttl, DefaultPrincipalTTL)
	}
	if got := cachedPrincipal(t, s, u.UserID); !reflect.DeepEqual(got, u.Principal()) {
		t.Errorf("cached principal = %+v, want %+v", got, u.Principal())
	}

	inner.reset()
	hook.reset()
	if _, _, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); err != nil {
		t.Fatalf("SessionWithPrincipal again: %v", err)
	}
	if got := inner.counts(); len(got) != 0 {
		t.Errorf("a look-up after the fill called the inner store: %v", got)
	}
	if got, want := hook.sentAll(), map[string]int{"mget": 1}; !maps.Equal(got, want) {
		t.Errorf("a cache hit sent %v to Redis, want %v (one round trip)", got, want)
	}
}

// Cached look-ups decode through a memo shared by every caller, yet each caller owns what it
// gets: changing a session, its history or a principal returned once changes no later answer.
func TestCachedLookupsHandOutCopies(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))
	u := newUser(t)
	now := attrcache.Now()
	sess := &attrcache.Session{
		Hash:           attrcache.HashSessionID(attrcache.NewSessionID()),
		UserID:         u.UserID,
		CreationTime:   now,
		ExpirationTime: now.Add(time.Hour),
		RemoteAddr:     "127.0.0.1",
		AuthType:       "default",
		StateChanges:   []attrcache.SessionStateChange{{RemoteAddr: "127.0.0.1", CtxSource: "login"}},
	}
	if err := testDB.CreateSession(ctx, sess); err != nil {
		t.Fatalf("creating a session: %v", err)
	}
	warm(t, s, inner, sess)

	for _, lookup := range []lookup{sessionWithPrincipal, sessionOnly} {
		gotSession, gotPrincipal, err := lookup(ctx, s, u.UserID, sess.Hash)
		if err != nil {
			t.Fatalf("look-up: %v", err)
		}
		gotSession.RemoteAddr = "changed"
		gotSession.ExpirationTime = now
		gotSession.StateChanges[0].CtxSource = "changed"
		if gotPrincipal != nil {
			gotPrincipal.IsLocked = true
			gotPrincipal.ApprovalStatus = "changed"
		}
	}

	again, p, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("look-up after the changes: %v", err)
	}
	if got := inner.counts(); len(got) != 0 {
		t.Errorf("the look-up after the changes called the inner store (%v): they reached what the cache decoded", got)
	}
	if !reflect.DeepEqual(again, sess) {
		t.Errorf("session = %+v, want %+v", again, sess)
	}
	if !reflect.DeepEqual(p, u.Principal()) {
		t.Errorf("principal = %+v, want %+v", p, u.Principal())
	}
}

func TestExpiredSessionNotServedFromCache(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)
	warm(t, s, inner, sess)

	// Redis still holds the key (its TTL has not fired, say the clocks disagree), but the
	// session it holds has ended.
	// Its newer version keeps the fills of the look-ups below from replacing it.
	ended := *sess
	ended.ExpirationTime = time.Now().Add(-time.Minute)
	ended.Version++
	w, err := s.sessionWrite(&ended)
	if err != nil {
		t.Fatalf("sessionWrite: %v", err)
	}
	w.expireAt = time.Now().Add(time.Hour)
	if _, err := s.apply(ctx, w); err != nil {
		t.Fatalf("apply: %v", err)
	}

	tests := []struct {
		name   string
		lookup lookup
		method string
	}{
		{name: "SessionWithPrincipal", lookup: sessionWithPrincipal, method: "SessionWithPrincipal"},
		{name: "Session", lookup: sessionOnly, method: "Session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner.reset()
			got, _, err := tt.lookup(ctx, s, u.UserID, sess.Hash)
			if err != nil {
				t.Fatalf("look-up: %v", err)
			}
			if n := inner.counts()[tt.method]; n != 1 {
				t.Errorf("inner %s calls = %d, want 1", tt.method, n)
			}
			if !got.ExpirationTime.Equal(sess.ExpirationTime) {
				t.Errorf("expiration time = %v, want the stored %v", got.ExpirationTime, sess.ExpirationTime)
			}
		})
	}
}

func TestWritesReachNextLookup(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))

	tests := []struct {
		name  string
		write func(t *testing.T, u *attrcache.User, sess *attrcache.Session)
		check func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal)
	}{
		{
			name: "lock",
			write: func(t *testing.T, u *attrcache.User, sess *attrcache.Session) {
				if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)}); err != nil {
					t.Fatalf("UpdateUser: %v", err)
				}
			},
			check: func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal) {
				if !p.IsLocked {
					t.Errorf("principal.IsLocked = false after locking the user, want true")
				}
			},
		},
		{
			name: "approval",
			write: func(t *testing.T, u *attrcache.User, sess *attrcache.Session) {
				if _, err := s.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{ApprovalStatus: attrcache.SetTo(attrcache.ApprovalRejected)}); err != nil {
					t.Fatalf("UpdateUser: %v", err)
				}
			},
			check: func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal) {
				if p.ApprovalStatus != attrcache.ApprovalRejected {
					t.Errorf("principal.ApprovalStatus = %q, want %q", p.ApprovalStatus, attrcache.ApprovalRejected)
				}
			},
		},
		{
			name: "renewal",
			write: func(t *testing.T, u *attrcache.User, sess *attrcache.Session) {
				expiresAt := sess.ExpirationTime.Add(2 * time.Hour)
				if _, err := s.RenewSession(ctx, u.UserID, sess.Hash, expiresAt, attrcache.SessionStateChange{CtxSource: "renew"}); err != nil {
					t.Fatalf("RenewSession: %v", err)
				}
			},
			check: func(t *testing.T, got *attrcache.Session, p *attrcache.Principal) {
				stored, err := testDB.Session(ctx, got.UserID, got.Hash)
				if err != nil {
					t.Fatalf("reading the stored session: %v", err)
				}
				if !reflect.DeepEqual(got, stored) {
					t.Errorf("session = %+v, want the renewed %+v", got, stored)
				}
				key := s.keys.session(got.UserID, got.Hash)
				if at, want := expiresAt(t, s.rdb, key), time.UnixMilli(stored.ExpirationTime.UnixMilli()); !at.Equal(want) {
					t.Errorf("session key expires at %v, want the renewed %v", at, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t)
			sess := newSession(t, u.UserID, time.Hour)
			warm(t, s, inner, sess)

			tt.write(t, u, sess)
			inner.reset()
			gotSession, gotPrincipal, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
			if err != nil {
				t.Fatalf("SessionWithPrincipal after the write: %v", err)
			}
			if n := inner.counts()["SessionWithPrincipal"] + inner.counts()["UserByID"]; n != 0 {
				t.Errorf("the look-up after the write read the inner store %d times, want 0 (the write updates Redis)", n)
			}
			tt.check(t, gotSession, gotPrincipal)
		})
	}
}

func TestDeletionsEndLookups(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))

	tests := []struct {
		name   string
		delete func(t *testing.T, sess *attrcache.Session)
	}{
		{
			name: "logout",
			delete: func(t *testing.T, sess *attrcache.Session) {
				if err := s.DeleteSession(ctx, sess.UserID, sess.Hash); err != nil {
					t.Fatalf("DeleteSession: %v", err)
				}
			},
		},
		{
			name: "user deleted",
			delete: func(t *testing.T, sess *attrcache.Session) {
				if _, err := s.DeleteUser(ctx, sess.UserID); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
			},
		},
		{
			name: "user deleted, tombstone expired",
			delete: func(t *testing.T, sess *attrcache.Session) {
				if _, err := s.DeleteUser(ctx, sess.UserID); err != nil {
					t.Fatalf("DeleteUser: %v", err)
				}
				// The session key outlives the tombstone; without a principal it is not served.
				deleteKey(t, s, s.keys.principal(sess.UserID))
			},
		},
	}
	for _, tt := range tests {
		for _, lk := range []struct {
			name   string
			lookup lookup
		}{{"SessionWithPrincipal", sessionWithPrincipal}, {"Session", sessionOnly}} {
			t.Run(tt.name+"/"+lk.name, func(t *testing.T) {
				u := newUser(t)
				sess := newSession(t, u.UserID, time.Hour)
				warm(t, s, inner, sess)

				tt.delete(t, sess)
				_, _, err := lk.lookup(ctx, s, u.UserID, sess.Hash)
				if !errors.Is(err, attrcache.ErrNotFound) {
					t.Errorf("look-up after the deletion: err = %v, want ErrNotFound", err)
				}
			})
		}
	}
}

func TestTombstoneBlocksRacingFill(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, newRedis(t))

	tests := []struct {
		name   string
		delete func(sess *attrcache.Session) error
		fill   func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal) []write
	}{
		{
			name:   "session",
			delete: func(sess *attrcache.Session) error { return s.DeleteSession(ctx, sess.UserID, sess.Hash) },
			fill: func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal) []write {
				return s.sessionFill(ctx, sess)
			},
		},
		{
			name:   "user",
			delete: func(sess *attrcache.Session) error { _, err := s.DeleteUser(ctx, sess.UserID); return err },
			fill: func(t *testing.T, sess *attrcache.Session, p *attrcache.Principal) []write {
				return s.principalFill(ctx, p)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser(t)
			sess := newSession(t, u.UserID, time.Hour)

			// A reader loads the session and principal, then stalls before filling Redis.
			loadedSession, loadedPrincipal, err := testDB.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
			if err != nil {
				t.Fatalf("loading: %v", err)
			}
			if err := tt.delete(sess); err != nil {
				t.Fatalf("deleting: %v", err)
			}
			writes := tt.fill(t, loadedSession, loadedPrincipal)
			s.fill(ctx, writes...)

			if got, _ := rawValue(t, s.rdb, writes[0].key); got != tombstone {
				t.Errorf("after the late fill Redis holds %q, want the tombstone", got)
			}
			if _, _, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("SessionWithPrincipal: err = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestConcurrentMissesShareOneLoad(t *testing.T) {
	ctx := context.Background()
	hook := newFaultHook()
	s, inner := newTestStore(t, newRedis(t, hook))
	u := newUser(t)
	sess := newSession(t, u.UserID, time.Hour)

	const callers = 8
	entered := make(chan struct{})
	release := make(chan struct{})
	var enterOnce sync.Once
	inner.before = func(method string) {
		if method == "SessionWithPrincipal" {
			enterOnce.Do(func() { close(entered) })
			<-release
		}
	}
	hook.reset()

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			got, _, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
			if err == nil && !reflect.DeepEqual(got, sess) {
				err = errors.New("a caller got another session")
			}
			errs <- err
		})
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no caller reached the inner store")
	}
	// Every caller has missed (one MGET each) and the first load re-read (one more); a caller
	// that joins the load after it ends finds Redis filled.
	waitFor(t, "every caller to miss", func() bool { return hook.sent("mget") >= callers+1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("SessionWithPrincipal: %v", err)
		}
	}
	if got := inner.counts()["SessionWithPrincipal"]; got != 1 {
		t.Errorf("inner SessionWithPrincipal calls = %d, want 1", got)
	}
}

func TestCreateWritesThrough(t *testing.T) {
	ctx := context.Background()
	s, inner := newTestStore(t, newRedis(t))
	u := newUser(t)
	if _, err := testDB.DeleteUser(ctx, u.UserID); err != nil {
		t.Fatalf("clearing the user: %v", err)
	}
	created := *u
	if err := s.CreateUser(ctx, &created); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	sess := &attrcache.Session{
		Hash:           attrcache.HashSessionID(attrcache.NewSessionID()),
		UserID:         u.UserID,
		CreationTime:   attrcache.Now(),
		ExpirationTime: attrcache.Now().Add(time.Hour),
		StateChanges:   []attrcache.SessionStateChange{},
	}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}

	inner.reset()
	gotSession, gotPrincipal, err := s.SessionWithPrincipal(ctx, u.UserID, sess.Hash)
	if err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}
	if got := inner.counts(); len(got) != 0 {
		t.Errorf("the first look-up after creating called the inner store: %v, want no call", got)
	}
	if !reflect.DeepEqual(gotSession, sess) {
		t.Errorf("session = %+v, want %+v", gotSession, sess)
	}
	if !reflect.DeepEqual(gotPrincipal, created.Principal()) {
		t.Errorf("principal = %+v, want %+v", gotPrincipal, created.Principal())
	}
}
