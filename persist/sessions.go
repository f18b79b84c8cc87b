package persist

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// sessionColumns are the columns scanSession reads, in its order, of sso_session aliased "s".
const sessionColumns = `s.ust_hash, s.user_id, s.creation_time, s.expiration_time,
	s.remote_addr, s.user_agent, s.auth_type, s.auth_principal, s.ext_session_id,
	s.state_changes, s.version`

// principalColumns are the columns of an attrcache.Principal, of sso_user aliased "u".
const principalColumns = `u.user_id, u.username, u.is_active, u.is_super_user, u.is_locked,
	u.approval_status, u.sign_up_status, u.password_expiry, u.version`

// CreateSession inserts s with Version 1 and then sets *s to the row as stored (times in UTC to
// the microsecond). A hash already stored gives attrcache.ErrConflict, an unknown owner
// attrcache.ErrNotFound.
func (db *DB) CreateSession(ctx context.Context, s *attrcache.Session) error {
	const insertStmt = `INSERT INTO sso_session (ust_hash, user_id, creation_time, expiration_time,
		remote_addr, user_agent, auth_type, auth_principal, ext_session_id, state_changes, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`
	changes, err := encodeStateChanges(s.StateChanges)
	if err != nil {
		return fmt.Errorf("persist: create session of %s: %w", s.UserID, err)
	}
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, insertStmt, s.Hash, s.UserID, s.CreationTime, s.ExpirationTime,
			s.RemoteAddr, s.UserAgent, s.AuthType, s.AuthPrincipal, s.ExtSessionID, changes)
		if err != nil {
			return mapError(err)
		}
		stored, err := sessionBy(ctx, tx, s.UserID, s.Hash)
		if err != nil {
			return err
		}
		*s = *stored
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist: create session of %s: %w", s.UserID, err)
	}
	return nil
}

// Session returns the session of userID with that hash, expired or not, or attrcache.ErrNotFound.
func (db *DB) Session(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, error) {
	s, err := sessionBy(ctx, db.db, userID, hash)
	if err != nil {
		return nil, fmt.Errorf("persist: session of %s: %w", userID, err)
	}
	return s, nil
}

// SessionWithPrincipal returns the session of userID with that hash (expired or not) and its
// owner, in one query; either missing gives attrcache.ErrNotFound.
func (db *DB) SessionWithPrincipal(ctx context.Context, userID string, hash attrcache.SessionHash) (*attrcache.Session, *attrcache.Principal, error) {
	const query = "SELECT " + sessionColumns + ", " + principalColumns + `
		FROM sso_session s JOIN sso_user u ON u.user_id = s.user_id
		WHERE s.ust_hash = ? AND s.user_id = ?`
	var p attrcache.Principal
	s, err := scanSession(db.db.QueryRowContext(ctx, query, hash, userID),
		&p.UserID, &p.Username, &p.IsActive, &p.IsSuperUser, &p.IsLocked,
		&p.ApprovalStatus, &p.SignUpStatus, &p.PasswordExpiry, &p.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("persist: session and principal of %s: %w", userID, err)
	}
	return s, &p, nil
}

// RenewSession sets the session's expiration time to expiresAt, appends change to its history
// (numbering it one past the newest entry and keeping the newest
// attrcache.MaxSessionStateChanges), bumps Version and returns the session as stored by the same
// transaction; an unknown session gives attrcache.ErrNotFound.
func (db *DB) RenewSession(ctx context.Context, userID string, hash attrcache.SessionHash, expiresAt time.Time, change attrcache.SessionStateChange) (*attrcache.Session, error) {
	var renewed *attrcache.Session
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		var stored string
		err := tx.QueryRowContext(ctx,
			"SELECT state_changes FROM sso_session WHERE ust_hash = ? AND user_id = ? FOR UPDATE",
			hash, userID).Scan(&stored)
		if err != nil {
			return mapError(err)
		}
		var history []attrcache.SessionStateChange
		if err := json.Unmarshal([]byte(stored), &history); err != nil {
			return fmt.Errorf("state changes: %w", err)
		}
		changes, err := encodeStateChanges(appendStateChange(history, change))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sso_session
			SET expiration_time = ?, state_changes = ?, version = version + 1
			WHERE ust_hash = ?`, expiresAt, changes, hash)
		if err != nil {
			return mapError(err)
		}
		if renewed, err = sessionBy(ctx, tx, userID, hash); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, []attrcache.Change{{Kind: attrcache.ChangeSession, Op: attrcache.ChangeSet,
			UserID: userID, Session: hash, Version: renewed.Version, ExpiresAt: renewed.ExpirationTime}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: renew session of %s: %w", userID, err)
	}
	db.noteLogged(ctx, token)
	return renewed, nil
}

// appendStateChange returns history with change appended, numbered one past the last entry, and
// trimmed to the newest attrcache.MaxSessionStateChanges entries.
func appendStateChange(history []attrcache.SessionStateChange, change attrcache.SessionStateChange) []attrcache.SessionStateChange {
	change.Idx = 1
	if n := len(history); n > 0 {
		change.Idx = history[n-1].Idx + 1
	}
	history = append(history, change)
	if excess := len(history) - attrcache.MaxSessionStateChanges; excess > 0 {
		history = history[excess:]
	}
	return history
}

// DeleteSession removes the session of userID with that hash and its session attributes, in one
// transaction, and logs the session gone and each attribute with it (attrsGone). An unknown
// session is not an error.
//
// The session row is locked first: writers of session attributes hold a shared lock on it while
// they write, so taking the session before its attributes keeps the two in one lock order (no
// deadlock) and lets no attribute be added to a session once it is gone. A session without
// attributes costs the two statements that delete it and them.
func (db *DB) DeleteSession(ctx context.Context, userID string, hash attrcache.SessionHash) error {
	now := attrcache.Now()
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		scope := attrcache.AttrScope{UserID: userID, Session: hash}
		// The session's row is a constant of the join, read and locked before its attributes.
		gone, err := queryEach(ctx, tx, func(rows *sql.Rows) (goneAttr, error) {
			var name string
			var version int64
			var expiresAt time.Time
			var sessionEnd sql.NullTime
			err := rows.Scan(&name, &version, &expiresAt, &sessionEnd)
			return goneAttrOf(scope, name, version, expiresAt, sessionEnd), err
		}, `SELECT a.name, a.version, a.expiration_time, s.expiration_time
			FROM sso_session s JOIN sso_attr a ON a.user_id = s.user_id AND a.ust_hash = s.ust_hash
			WHERE s.user_id = ? AND s.ust_hash = ? FOR UPDATE`, userID, hash)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_session WHERE user_id = ? AND ust_hash = ?", userID, hash); err != nil {
			return mapError(err)
		}
		changes := []attrcache.Change{{Kind: attrcache.ChangeSession, Op: attrcache.ChangeGone, UserID: userID, Session: hash}}
		if len(gone) > 0 {
			fed, err := takeExpiryMarks(ctx, tx, gone, "user_id = ? AND ust_hash = ?", []any{userID, hash})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE user_id = ? AND ust_hash = ?", userID, hash); err != nil {
				return mapError(err)
			}
			changes = append(changes, attrsGone(gone, fed, now)...)
		}
		token, err = logChanges(ctx, tx, changes)
		return err
	})
	if err != nil {
		return fmt.Errorf("persist: delete session of %s: %w", userID, err)
	}
	db.noteLogged(ctx, token)
	return nil
}

// UserSessions returns the sessions of userID that have not expired at now, oldest first.
func (db *DB) UserSessions(ctx context.Context, userID string, now time.Time) ([]*attrcache.Session, error) {
	const query = "SELECT " + sessionColumns + ` FROM sso_session s
		WHERE s.user_id = ? AND s.expiration_time > ?
		ORDER BY s.creation_time, s.ust_hash`
	sessions, err := querySessions(ctx, db.db, query, userID, now)
	if err != nil {
		return nil, fmt.Errorf("persist: sessions of %s: %w", userID, err)
	}
	return sessions, nil
}

// sessionBy returns the session of userID with that hash. Errors are already mapped.
func sessionBy(ctx context.Context, q querier, userID string, hash attrcache.SessionHash) (*attrcache.Session, error) {
	const query = "SELECT " + sessionColumns + " FROM sso_session s WHERE s.ust_hash = ? AND s.user_id = ?"
	return scanSession(q.QueryRowContext(ctx, query, hash, userID))
}

// querySessions runs a query of sessionColumns and returns its sessions. Errors are already
// mapped.
func querySessions(ctx context.Context, q querier, query string, args ...any) ([]*attrcache.Session, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var sessions []*attrcache.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		sessions = append(sessions, s)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return sessions, nil
}

// scanSession reads one row of sessionColumns followed by the columns of extra, scanned into
// extra. Errors are already mapped.
func scanSession(row rowScanner, extra ...any) (*attrcache.Session, error) {
	var (
		s       attrcache.Session
		changes string
	)
	dest := append([]any{&s.Hash, &s.UserID, &s.CreationTime, &s.ExpirationTime,
		&s.RemoteAddr, &s.UserAgent, &s.AuthType, &s.AuthPrincipal, &s.ExtSessionID,
		&changes, &s.Version}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, mapError(err)
	}
	if err := json.Unmarshal([]byte(changes), &s.StateChanges); err != nil {
		return nil, fmt.Errorf("state changes: %w", err)
	}
	return &s, nil
}

// encodeStateChanges returns the state_changes column of a history: a JSON list, never null.
func encodeStateChanges(history []attrcache.SessionStateChange) (string, error) {
	if history == nil {
		history = []attrcache.SessionStateChange{}
	}
	b, err := json.Marshal(history)
	if err != nil {
		return "", fmt.Errorf("state changes: %w", err)
	}
	return string(b), nil
}
