package persist

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestCountLiveSessions(t *testing.T) {
	db := freshStore(t, "persist_count")
	t0 := attrcache.Now()
	for _, u := range []*attrcache.User{createUser(t, db, newUser()), createUser(t, db, newUser())} {
		createSession(t, db, newSession(u.UserID, t0.Add(-time.Minute))) // already ended
		createSession(t, db, newSession(u.UserID, t0.Add(time.Hour)))
		createSession(t, db, newSession(u.UserID, t0.Add(2*time.Hour)))
	}
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		{"every session of every user that has not ended", t0, 4},
		{"a session ends at its expiration time", t0.Add(time.Hour), 2},
		{"all ended", t0.Add(3 * time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.CountLiveSessions(t.Context(), tt.now)
			if err != nil {
				t.Fatalf("CountLiveSessions: %v", err)
			}
			if got != tt.want {
				t.Errorf("CountLiveSessions(t0%+v) = %d, want %d", tt.now.Sub(t0), got, tt.want)
			}
		})
	}
}
