package persist

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// userColumns are the columns scanUser reads, in its order.
const userColumns = `user_id, username, email,
	display_name, first_name, middle_name, last_name,
	is_active, is_internal, is_super_user, is_locked, locked_time, locked_by, creation_ctx,
	approval_status, approval_status_mod_by, approval_status_mod_time,
	password_hash, password_is_set, password_must_change, password_last_set, password_expiry,
	sign_up_status, sign_up_time, sign_up_confirm_time, sign_up_confirm_token,
	is_totp_enabled, totp_key, totp_label, version`

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateUser inserts u with Version 1 and then sets *u to the row as stored (times in UTC to the
// microsecond). A taken username, user_id or sign-up token gives attrcache.ErrConflict. An empty
// SignUpConfirmToken or TOTPKey is stored as NULL, so users without one never collide.
func (db *DB) CreateUser(ctx context.Context, u *attrcache.User) error {
	const insertStmt = `INSERT INTO sso_user (user_id, username, email,
		display_name, first_name, middle_name, last_name,
		display_name_upper, first_name_upper, middle_name_upper, last_name_upper,
		is_active, is_internal, is_super_user, is_locked, locked_time, locked_by, creation_ctx,
		approval_status, approval_status_mod_by, approval_status_mod_time,
		password_hash, password_is_set, password_must_change, password_last_set, password_expiry,
		sign_up_status, sign_up_time, sign_up_confirm_time, sign_up_confirm_token,
		is_totp_enabled, totp_key, totp_label, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, insertStmt,
			u.UserID, u.Username, db.sealEmail(u.Email, u.UserID),
			u.DisplayName, u.FirstName, u.MiddleName, u.LastName,
			upperName(u.DisplayName), upperName(u.FirstName), upperName(u.MiddleName), upperName(u.LastName),
			u.IsActive, u.IsInternal, u.IsSuperUser, u.IsLocked, u.LockedTime, u.LockedBy, u.CreationCtx,
			u.ApprovalStatus, u.ApprovalStatusModBy, u.ApprovalStatusModTime,
			u.PasswordHash, u.PasswordIsSet, u.PasswordMustChange, u.PasswordLastSet, u.PasswordExpiry,
			u.SignUpStatus, u.SignUpTime, u.SignUpConfirmTime, emptyAsNull(u.SignUpConfirmToken),
			u.IsTOTPEnabled, db.sealTOTPKey(u.TOTPKey, u.UserID), u.TOTPLabel)
		if err != nil {
			return mapError(err)
		}
		stored, err := db.userBy(ctx, tx, "user_id", u.UserID)
		if err != nil {
			return err
		}
		*u = *stored
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist: create user %s: %w", u.UserID, err)
	}
	return nil
}

// UserByID returns the user with that user_id, or attrcache.ErrNotFound.
func (db *DB) UserByID(ctx context.Context, userID string) (*attrcache.User, error) {
	u, err := db.userBy(ctx, db.db, "user_id", userID)
	if err != nil {
		return nil, fmt.Errorf("persist: user %s: %w", userID, err)
	}
	return u, nil
}

// UserByUsername returns the user with that username (compared byte for byte), or
// attrcache.ErrNotFound.
func (db *DB) UserByUsername(ctx context.Context, username string) (*attrcache.User, error) {
	u, err := db.userBy(ctx, db.db, "username", username)
	if err != nil {
		return nil, fmt.Errorf("persist: user by username %q: %w", username, err)
	}
	return u, nil
}

// UserBySignUpToken returns the user whose sign-up confirmation token it is, or
// attrcache.ErrNotFound.
func (db *DB) UserBySignUpToken(ctx context.Context, token string) (*attrcache.User, error) {
	u, err := db.userBy(ctx, db.db, "sign_up_confirm_token", token)
	if err != nil {
		return nil, fmt.Errorf("persist: user by sign-up token: %w", err)
	}
	return u, nil
}

// userBy returns the one user whose column (a unique column named by this package, never by
// input) equals value. Errors are already mapped.
func (db *DB) userBy(ctx context.Context, q querier, column string, value any) (*attrcache.User, error) {
	row := q.QueryRowContext(ctx, "SELECT "+userColumns+" FROM sso_user WHERE "+column+" = ?", value)
	return db.scanUser(row)
}

// UpdateUser writes the set fields of upd (the *_upper columns following their names), bumps
// Version and returns the user as stored by the same transaction. An unknown user gives
// attrcache.ErrNotFound, a taken username attrcache.ErrConflict.
func (db *DB) UpdateUser(ctx context.Context, userID string, upd attrcache.UserUpdate) (*attrcache.User, error) {
	set := db.userAssignments(userID, upd)
	set.add("version = version + 1")
	updateStmt := "UPDATE sso_user SET " + strings.Join(set.columns, ", ") + " WHERE user_id = ?"
	args := append(set.args, userID)

	var updated *attrcache.User
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, updateStmt, args...)
		if err != nil {
			return mapError(err)
		}
		if err := requireOneRow(res); err != nil {
			return err
		}
		if updated, err = db.userBy(ctx, tx, "user_id", userID); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, []attrcache.Change{{Kind: attrcache.ChangePrincipal, Op: attrcache.ChangeSet,
			UserID: userID, Version: updated.Version}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: update user %s: %w", userID, err)
	}
	db.noteLogged(ctx, token)
	return updated, nil
}

// userAssignments returns the SET list of upd.
func (db *DB) userAssignments(userID string, upd attrcache.UserUpdate) *assignments {
	set := &assignments{}
	assign(set, "username", upd.Username)
	if upd.Email.Set {
		set.add("email = ?", db.sealEmail(upd.Email.Value, userID))
	}
	assignName(set, "display_name", upd.DisplayName)
	assignName(set, "first_name", upd.FirstName)
	assignName(set, "middle_name", upd.MiddleName)
	assignName(set, "last_name", upd.LastName)

	assign(set, "is_totp_enabled", upd.IsTOTPEnabled)
	if upd.TOTPKey.Set {
		set.add("totp_key = ?", db.sealTOTPKey(upd.TOTPKey.Value, userID))
	}
	assign(set, "totp_label", upd.TOTPLabel)

	assign(set, "is_locked", upd.IsLocked)
	assign(set, "locked_time", upd.LockedTime)
	assign(set, "locked_by", upd.LockedBy)

	assign(set, "password_hash", upd.PasswordHash)
	assign(set, "password_is_set", upd.PasswordIsSet)
	assign(set, "password_must_change", upd.PasswordMustChange)
	assign(set, "password_last_set", upd.PasswordLastSet)
	assign(set, "password_expiry", upd.PasswordExpiry)

	assign(set, "sign_up_status", upd.SignUpStatus)
	assign(set, "sign_up_confirm_time", upd.SignUpConfirmTime)

	assign(set, "approval_status", upd.ApprovalStatus)
	assign(set, "approval_status_mod_by", upd.ApprovalStatusModBy)
	assign(set, "approval_status_mod_time", upd.ApprovalStatusModTime)
	return set
}

// DeleteUser removes the user; the foreign keys remove their sessions and attributes with them.
// It returns the keys of the attributes removed, and logs the user gone and each attribute with
// them (attrsGone). The user's row is locked first: a write of an attribute checks that its user
// exists (the foreign key), which waits for that lock, so no attribute of theirs can be written
// between the read of their keys and the deletion. Their sessions come next, then their
// attributes: the order in which DeleteSession and the purger lock them.
func (db *DB) DeleteUser(ctx context.Context, userID string) ([]attrcache.AttrKey, error) {
	now := attrcache.Now()
	var removed []attrcache.AttrKey
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		removed = nil
		var id string
		if err := tx.QueryRowContext(ctx, "SELECT user_id FROM sso_user WHERE user_id = ? FOR UPDATE", userID).Scan(&id); err != nil {
			return mapError(err)
		}
		ends, err := lockSessionEnds(ctx, tx, "user_id = ?", userID)
		if err != nil {
			return err
		}
		gone, err := queryEach(ctx, tx, func(rows *sql.Rows) (goneAttr, error) {
			scope := attrcache.AttrScope{UserID: userID}
			var name string
			var version int64
			var expiresAt time.Time
			err := rows.Scan(&scope.Session, &name, &version, &expiresAt)
			return goneAttrOf(scope, name, version, expiresAt, ends[scope.Session]), err
		}, "SELECT ust_hash, name, version, expiration_time FROM sso_attr WHERE user_id = ? FOR UPDATE", userID)
		if err != nil {
			return err
		}
		for _, g := range gone {
			removed = append(removed, attrcache.AttrKey{Scope: g.key.scope, Name: g.key.name})
		}
		var fed map[feedMark]bool
		if len(gone) > 0 {
			if fed, err = takeExpiryMarks(ctx, tx, gone, "user_id = ?", []any{userID}); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM sso_user WHERE user_id = ?", userID)
		if err == nil {
			err = requireOneRow(res)
		}
		if err != nil {
			return mapError(err)
		}
		token, err = logChanges(ctx, tx, userGone(userID, attrsGone(gone, fed, now)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: delete user %s: %w", userID, err)
	}
	db.noteLogged(ctx, token)
	return removed, nil
}

// scanUser reads one row of userColumns and opens its sealed columns. Errors are already mapped;
// a sealed value that cannot be opened is an error.
func (db *DB) scanUser(row rowScanner) (*attrcache.User, error) {
	var (
		u                       attrcache.User
		sealedEmail, sealedTOTP *string
		confirmToken            sql.NullString
	)
	err := row.Scan(&u.UserID, &u.Username, &sealedEmail,
		&u.DisplayName, &u.FirstName, &u.MiddleName, &u.LastName,
		&u.IsActive, &u.IsInternal, &u.IsSuperUser, &u.IsLocked, &u.LockedTime, &u.LockedBy, &u.CreationCtx,
		&u.ApprovalStatus, &u.ApprovalStatusModBy, &u.ApprovalStatusModTime,
		&u.PasswordHash, &u.PasswordIsSet, &u.PasswordMustChange, &u.PasswordLastSet, &u.PasswordExpiry,
		&u.SignUpStatus, &u.SignUpTime, &u.SignUpConfirmTime, &confirmToken,
		&u.IsTOTPEnabled, &sealedTOTP, &u.TOTPLabel, &u.Version)
	if err != nil {
		return nil, mapError(err)
	}
	u.SignUpConfirmToken = confirmToken.String
	if sealedEmail != nil {
		email, err := db.open(attrcache.PurposeEmail, *sealedEmail, u.UserID)
		if err != nil {
			return nil, fmt.Errorf("stored e-mail: %w", err)
		}
		u.Email = &email
	}
	if sealedTOTP != nil {
		if u.TOTPKey, err = db.open(attrcache.PurposeTOTP, *sealedTOTP, u.UserID); err != nil {
			return nil, fmt.Errorf("stored TOTP key: %w", err)
		}
	}
	return &u, nil
}

// sealEmail returns the column value of an e-mail address: NULL for none, else sealed for userID.
func (db *DB) sealEmail(email *string, userID string) *string {
	if email == nil {
		return nil
	}
	sealed := db.keys.Seal(attrcache.PurposeEmail, []byte(*email), []byte(userID))
	return &sealed
}

// sealTOTPKey returns the column value of a TOTP key: NULL for none, else sealed for userID.
func (db *DB) sealTOTPKey(key, userID string) *string {
	if key == "" {
		return nil
	}
	sealed := db.keys.Seal(attrcache.PurposeTOTP, []byte(key), []byte(userID))
	return &sealed
}

// open opens a value sealed for userID with purpose.
func (db *DB) open(purpose, sealed, userID string) (string, error) {
	plain, err := db.keys.Open(purpose, sealed, []byte(userID))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// upperName returns the *_upper column value of a name: NULL for NULL.
func upperName(name *string) *string {
	if name == nil {
		return nil
	}
	upper := strings.ToUpper(*name)
	return &upper
}

// emptyAsNull returns NULL for "" and s otherwise.
func emptyAsNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// assignments is the SET list of an UPDATE: "column = ?" items and their arguments.
type assignments struct {
	columns []string
	args    []any
}

// add appends one item of the SET list with the arguments of its placeholders.
func (a *assignments) add(item string, args ...any) {
	a.columns = append(a.columns, item)
	a.args = append(a.args, args...)
}

// assign adds "column = value" when f is set.
func assign[T any](a *assignments, column string, f attrcache.Field[T]) {
	if f.Set {
		a.add(column+" = ?", f.Value)
	}
}

// assignName adds a name column and its *_upper column when f is set.
func assignName(a *assignments, column string, f attrcache.Field[*string]) {
	if f.Set {
		a.add(column+" = ?", f.Value)
		a.add(column+"_upper = ?", upperName(f.Value))
	}
}

// requireOneRow returns attrcache.ErrNotFound when res changed no row.
func requireOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return attrcache.ErrNotFound
	}
	return nil
}
