package attrcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// SessionHash is the SHA-256 of a raw session id ("zust…"), hex-encoded: the only form in which
// a session's token is stored.
type SessionHash string

// HashSessionID returns the stored form of a raw session id.
func HashSessionID(rawID string) SessionHash {
	sum := sha256.Sum256([]byte(rawID))
	return SessionHash(hex.EncodeToString(sum[:]))
}

// HashSignUpToken returns the stored form of a sign-up confirmation token: its SHA-256,
// hex-encoded, so that a database dump holds no token that still confirms a sign-up.
func HashSignUpToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SessionStateChange is one entry of a session's history (Zato's session_state_change_list).
type SessionStateChange struct {
	RemoteAddr   string `json:"remote_addr"`
	UserAgent    string `json:"user_agent"`
	TimestampUTC string `json:"timestamp_utc"`
	CtxSource    string `json:"ctx_source"`
	Idx          int    `json:"idx"`
}

// MaxSessionStateChanges bounds a session's history, as Zato does.
const MaxSessionStateChanges = 100

// Session is one login of a user.
type Session struct {
	Hash           SessionHash
	UserID         string
	CreationTime   time.Time
	ExpirationTime time.Time
	RemoteAddr     string
	UserAgent      string
	AuthType       string
	AuthPrincipal  string
	ExtSessionID   string
	StateChanges   []SessionStateChange
	// Version grows by one with every change of the row.
	Version int64
}

// Expired reports whether the session has ended at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpirationTime) }

// SessionStore keeps sessions. Every method is keyed by the owner's user_id as well as the hash,
// so that a cache can keep one user's keys together.
type SessionStore interface {
	// CreateSession inserts s.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session (even an expired one) or ErrNotFound.
	Session(ctx context.Context, userID string, hash SessionHash) (*Session, error)
	// SessionWithPrincipal returns the session and its owner in one look-up: the path every
	// UST call takes. Either missing gives ErrNotFound.
	SessionWithPrincipal(ctx context.Context, userID string, hash SessionHash) (*Session, *Principal, error)
	// RenewSession sets the session's expiration time, appends change to its history (keeping
	// the newest MaxSessionStateChanges) and returns it as it now is; unknown gives ErrNotFound.
	RenewSession(ctx context.Context, userID string, hash SessionHash, expiresAt time.Time, change SessionStateChange) (*Session, error)
	// DeleteSession removes the session and its attributes; unknown is not an error.
	DeleteSession(ctx context.Context, userID string, hash SessionHash) error
	// UserSessions returns the user's sessions that have not expired at now, oldest first.
	UserSessions(ctx context.Context, userID string, now time.Time) ([]*Session, error)
}
