package persist

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestCreateSessionAndLookUp(t *testing.T) {
	u := createUser(t, testDB, fullUser())
	s := newSession(u.UserID, attrcache.Now().Add(time.Hour))
	want := *s
	want.Version = 1
	createSession(t, testDB, s)
	if !reflect.DeepEqual(*s, want) {
		t.Errorf("after CreateSession:\n got %+v\nwant %+v", *s, want)
	}

	got, err := testDB.Session(t.Context(), u.UserID, s.Hash)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Session:\n got %+v\nwant %+v", *got, want)
	}

	gotSession, gotPrincipal, err := testDB.SessionWithPrincipal(t.Context(), u.UserID, s.Hash)
	if err != nil {
		t.Fatalf("SessionWithPrincipal: %v", err)
	}
	if !reflect.DeepEqual(*gotSession, want) {
		t.Errorf("SessionWithPrincipal session:\n got %+v\nwant %+v", *gotSession, want)
	}
	if wantPrincipal := u.Principal(); !reflect.DeepEqual(gotPrincipal, wantPrincipal) {
		t.Errorf("SessionWithPrincipal principal:\n got %+v\nwant %+v", gotPrincipal, wantPrincipal)
	}

	t.Run("an expired session is still returned", func(t *testing.T) {
		expired := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(-time.Minute)))
		if _, err := testDB.Session(t.Context(), u.UserID, expired.Hash); err != nil {
			t.Errorf("Session: %v", err)
		}
	})
	t.Run("no history is stored as an empty list", func(t *testing.T) {
		s := newSession(u.UserID, attrcache.Now().Add(time.Hour))
		s.StateChanges = nil
		createSession(t, testDB, s)
		var raw string
		if err := testDB.SQL().QueryRowContext(t.Context(), "SELECT state_changes FROM sso_session WHERE ust_hash = ?", s.Hash).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if raw != "[]" {
			t.Errorf("state_changes = %q, want []", raw)
		}
	})
}

func TestCreateSessionErrors(t *testing.T) {
	u := createUser(t, testDB, newUser())
	taken := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	tests := []struct {
		name    string
		session *attrcache.Session
		want    error
	}{
		{"hash already stored", &attrcache.Session{
			Hash: taken.Hash, UserID: u.UserID, CreationTime: attrcache.Now(), ExpirationTime: attrcache.Now(),
		}, attrcache.ErrConflict},
		{"unknown user", newSession(attrcache.NewUserID(), attrcache.Now().Add(time.Hour)), attrcache.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testDB.CreateSession(t.Context(), tt.session); !errors.Is(err, tt.want) {
				t.Errorf("CreateSession error = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("zero expiration time", func(t *testing.T) {
		s := newSession(u.UserID, time.Time{})
		if err := testDB.CreateSession(t.Context(), s); err == nil {
			t.Error("got nil error, want one for a zero date")
		}
	})
}

func TestSessionNotFound(t *testing.T) {
	u := createUser(t, testDB, newUser())
	other := createUser(t, testDB, newUser())
	s := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	tests := []struct {
		name   string
		userID string
		hash   attrcache.SessionHash
	}{
		{"unknown hash", u.UserID, attrcache.HashSessionID(attrcache.NewSessionID())},
		{"another user's session", other.UserID, s.Hash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := testDB.Session(t.Context(), tt.userID, tt.hash); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("Session error = %v, want ErrNotFound", err)
			}
			if _, _, err := testDB.SessionWithPrincipal(t.Context(), tt.userID, tt.hash); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("SessionWithPrincipal error = %v, want ErrNotFound", err)
			}
			_, err := testDB.RenewSession(t.Context(), tt.userID, tt.hash, attrcache.Now().Add(time.Hour), attrcache.SessionStateChange{})
			if !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("RenewSession error = %v, want ErrNotFound", err)
			}
		})
	}
}

// stateChanges returns n history entries numbered from 1.
func stateChanges(n int) []attrcache.SessionStateChange {
	changes := make([]attrcache.SessionStateChange, n)
	for i := range changes {
		changes[i] = attrcache.SessionStateChange{RemoteAddr: "192.0.2.1", CtxSource: "login", Idx: i + 1}
	}
	return changes
}

func TestRenewSession(t *testing.T) {
	u := createUser(t, testDB, newUser())
	tests := []struct {
		name     string
		history  int
		wantLen  int
		wantIdxs [2]int // first and last Idx after the renewal
	}{
		{"empty history", 0, 1, [2]int{1, 1}},
		{"appended", 3, 4, [2]int{1, 4}},
		{"oldest dropped at the bound", attrcache.MaxSessionStateChanges, attrcache.MaxSessionStateChanges, [2]int{2, attrcache.MaxSessionStateChanges + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(u.UserID, attrcache.Now().Add(time.Minute))
			s.StateChanges = stateChanges(tt.history)
			createSession(t, testDB, s)

			expiresAt := attrcache.Now().Add(2 * time.Hour)
			change := attrcache.SessionStateChange{RemoteAddr: "198.51.100.7", UserAgent: "renewer", TimestampUTC: "2030-01-01T00:00:00", CtxSource: "renew"}
			got, err := testDB.RenewSession(t.Context(), u.UserID, s.Hash, expiresAt, change)
			if err != nil {
				t.Fatalf("RenewSession: %v", err)
			}
			if !got.ExpirationTime.Equal(expiresAt) {
				t.Errorf("ExpirationTime = %v, want %v", got.ExpirationTime, expiresAt)
			}
			if got.Version != s.Version+1 {
				t.Errorf("Version = %d, want %d", got.Version, s.Version+1)
			}
			if len(got.StateChanges) != tt.wantLen {
				t.Fatalf("history has %d entries, want %d", len(got.StateChanges), tt.wantLen)
			}
			first, last := got.StateChanges[0], got.StateChanges[len(got.StateChanges)-1]
			if first.Idx != tt.wantIdxs[0] || last.Idx != tt.wantIdxs[1] {
				t.Errorf("history runs from Idx %d to %d, want %d to %d", first.Idx, last.Idx, tt.wantIdxs[0], tt.wantIdxs[1])
			}
			change.Idx = tt.wantIdxs[1]
			if last != change {
				t.Errorf("newest entry = %+v, want %+v", last, change)
			}

			stored, err := testDB.Session(t.Context(), u.UserID, s.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, got) {
				t.Errorf("RenewSession returned\n%+v\nbut the stored session is\n%+v", got, stored)
			}
		})
	}
}

func TestDeleteSession(t *testing.T) {
	u := createUser(t, testDB, newUser())
	s := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	kept := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	insertAttr(t, testDB, u.UserID, s.Hash, "gone")
	insertAttr(t, testDB, u.UserID, kept.Hash, "kept-session-attr")
	insertAttr(t, testDB, u.UserID, "", "kept-user-attr")

	if err := testDB.DeleteSession(t.Context(), u.UserID, s.Hash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := testDB.Session(t.Context(), u.UserID, s.Hash); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("Session after delete: error = %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		hash attrcache.SessionHash
		want []string
	}{
		{s.Hash, nil},
		{kept.Hash, []string{"kept-session-attr"}},
		{"", []string{"kept-user-attr"}},
	} {
		if got := attrNames(t, testDB, u.UserID, tc.hash); !slices.Equal(got, tc.want) {
			t.Errorf("attributes of scope %q = %v, want %v", tc.hash, got, tc.want)
		}
	}
	if _, err := testDB.Session(t.Context(), u.UserID, kept.Hash); err != nil {
		t.Errorf("the other session: %v", err)
	}

	t.Run("unknown session is not an error", func(t *testing.T) {
		if err := testDB.DeleteSession(t.Context(), u.UserID, s.Hash); err != nil {
			t.Errorf("DeleteSession: %v", err)
		}
	})
}

func TestUserSessions(t *testing.T) {
	now := attrcache.Now()
	u := createUser(t, testDB, newUser())
	other := createUser(t, testDB, newUser())
	createSession(t, testDB, newSession(other.UserID, now.Add(time.Hour)))

	var want []attrcache.SessionHash
	for i, expiresAt := range []time.Time{
		now.Add(time.Hour),    // live
		now,                   // ends exactly now: expired
		now.Add(-time.Minute), // expired
		now.Add(time.Second),  // live
	} {
		s := newSession(u.UserID, expiresAt)
		s.CreationTime = now.Add(time.Duration(i-10) * time.Minute) // oldest first
		createSession(t, testDB, s)
		if expiresAt.After(now) {
			want = append(want, s.Hash)
		}
	}

	got, err := testDB.UserSessions(t.Context(), u.UserID, now)
	if err != nil {
		t.Fatalf("UserSessions: %v", err)
	}
	var gotHashes []attrcache.SessionHash
	for _, s := range got {
		gotHashes = append(gotHashes, s.Hash)
	}
	if !slices.Equal(gotHashes, want) {
		t.Errorf("UserSessions = %v, want %v", gotHashes, want)
	}

	t.Run("a user without sessions", func(t *testing.T) {
		nobody := createUser(t, testDB, newUser())
		got, err := testDB.UserSessions(t.Context(), nobody.UserID, now)
		if err != nil || len(got) != 0 {
			t.Errorf("UserSessions = %v, %v; want none", got, err)
		}
	})
}
