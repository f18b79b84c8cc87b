package persist

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/attrcache/attrcache"
)

// Key rotation's queries. Migration 0008 keeps the key id of every sealed value in an indexed
// generated column, so counting and finding the values a key seals read an index: a secondary
// index of InnoDB also holds the primary key, so "key id = ? AND primary key > ?" is one range.
//
// A re-seal writes only where the row still holds the very ciphertext it was made from
// (compare-and-set), so a write that came in between wins, and bumps the version as every write
// does, so that caches replace their copies. The change log of issue #12 must record these
// writes like the others (ResealAttrs, ResealUsers).

// Kinds of sealed values, as SealedCount reports them.
const (
	SealedAttrValue = "attr_value"
	SealedEmail     = attrcache.SealedEmail
	SealedTOTPKey   = attrcache.SealedTOTPKey
)

// SealedKinds lists every kind of sealed value.
var SealedKinds = []string{SealedAttrValue, SealedEmail, SealedTOTPKey}

// sealedColumns says where each kind of sealed value lives: its table, its key id column and
// its value column.
var sealedColumns = map[string]struct{ table, keyID, value string }{
	SealedAttrValue: {"sso_attr", "value_key_id", "value"},
	SealedEmail:     {"sso_user", "email_key_id", "email"},
	SealedTOTPKey:   {"sso_user", "totp_key_key_id", "totp_key"},
}

// SealedCount is how many stored values of one kind one key id seals.
type SealedCount struct {
	Kind  string
	KeyID string
	Count int64
}

// SealedCounts counts the stored values of every kind by the key id that seals them, expired
// attributes not yet purged included. It reads the key id indexes alone, one entry per sealed
// value.
func (db *DB) SealedCounts(ctx context.Context) ([]SealedCount, error) {
	var counts []SealedCount
	for _, kind := range SealedKinds {
		c := sealedColumns[kind]
		rows, err := db.db.QueryContext(ctx, "SELECT "+c.keyID+", COUNT(*) FROM "+c.table+
			" WHERE "+c.keyID+" IS NOT NULL GROUP BY "+c.keyID)
		if err != nil {
			return nil, fmt.Errorf("persist: counting sealed values: %w", mapError(err))
		}
		for rows.Next() {
			sc := SealedCount{Kind: kind}
			if err := rows.Scan(&sc.KeyID, &sc.Count); err != nil {
				rows.Close()
				return nil, fmt.Errorf("persist: counting sealed values: %w", mapError(err))
			}
			counts = append(counts, sc)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("persist: counting sealed values: %w", mapError(err))
		}
	}
	return counts, nil
}

// UnconfiguredSealedCounts counts the stored values sealed with a key id the keyring does not
// have. It costs one step of the key id indexes per distinct key id (a loose index scan) plus the
// entries of the missing key ids alone, so it is cheap when nothing is missing.
func (db *DB) UnconfiguredSealedCounts(ctx context.Context) ([]SealedCount, error) {
	var counts []SealedCount
	for _, kind := range SealedKinds {
		c := sealedColumns[kind]
		ids, err := queryNames(ctx, db.db, "SELECT DISTINCT "+c.keyID+" FROM "+c.table+" WHERE "+c.keyID+" IS NOT NULL")
		if err != nil {
			return nil, fmt.Errorf("persist: key ids of sealed values: %w", err)
		}
		for _, id := range ids {
			if db.keys.Has(id) {
				continue
			}
			sc := SealedCount{Kind: kind, KeyID: id}
			err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+c.table+" WHERE "+c.keyID+" = ?", id).Scan(&sc.Count)
			if err != nil {
				return nil, fmt.Errorf("persist: counting sealed values: %w", mapError(err))
			}
			counts = append(counts, sc)
		}
	}
	return counts, nil
}

// AttrsSealedWith returns up to limit attributes whose value is sealed with keyID and whose key
// comes after after (the zero AttrKey: from the first), in primary-key order, expired ones
// included. Only their scope, name and value are filled in.
func (db *DB) AttrsSealedWith(ctx context.Context, keyID string, after attrcache.AttrKey, limit int) ([]*attrcache.Attr, error) {
	// The key id is compared in the column's own collation and the order is the primary key's:
	// so the optimizer reads the index range in order and stops at the limit, where a
	// parameter of the connection's collation made it sort every remaining row first.
	rows, err := db.db.QueryContext(ctx, `SELECT user_id, ust_hash, name, value FROM sso_attr
		FORCE INDEX (sso_attr_value_key_id_idx)
		WHERE value_key_id = CONVERT(? USING utf8mb4) COLLATE utf8mb4_nopad_bin
			AND (user_id > ? OR (user_id = ? AND (ust_hash > ? OR (ust_hash = ? AND name > ?))))
		ORDER BY user_id, ust_hash, name LIMIT ?`,
		keyID, after.Scope.UserID, after.Scope.UserID, after.Scope.Session, after.Scope.Session, after.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("persist: attributes sealed with %s: %w", keyID, mapError(err))
	}
	defer rows.Close()
	var attrs []*attrcache.Attr
	for rows.Next() {
		a := &attrcache.Attr{IsEncrypted: true}
		if err := rows.Scan(&a.Scope.UserID, &a.Scope.Session, &a.Name, &a.Value); err != nil {
			return nil, fmt.Errorf("persist: attributes sealed with %s: %w", keyID, mapError(err))
		}
		attrs = append(attrs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persist: attributes sealed with %s: %w", keyID, mapError(err))
	}
	return attrs, nil
}

// ResealAttrs applies, in one transaction, each reseal whose attribute still holds its Sealed
// value: the value becomes Resealed and the version grows as on every write; creation time, last
// modification and expiry stay. It returns the attributes it rewrote as stored.
func (db *DB) ResealAttrs(ctx context.Context, reseals []attrcache.AttrReseal) ([]*attrcache.Attr, error) {
	if len(reseals) == 0 {
		return nil, nil
	}
	// In primary-key order, as every write locks its rows, so that they wait instead of deadlocking.
	sorted := slices.SortedFunc(slices.Values(reseals), func(a, b attrcache.AttrReseal) int {
		return cmp.Or(strings.Compare(a.Key.Scope.UserID, b.Key.Scope.UserID),
			strings.Compare(string(a.Key.Scope.Session), string(b.Key.Scope.Session)),
			strings.Compare(a.Key.Name, b.Key.Name))
	})
	var stored []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		for _, part := range splitBySize(sorted, db.maxPacket-attrStmtOverheadBytes, resealBytes) {
			stmt, args := resealAttrsStmt(part)
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				return mapError(err)
			}
		}
		keys := make([]attrKey, len(sorted))
		for i, r := range sorted {
			keys[i] = attrKey{scope: r.Key.Scope, name: r.Key.Name}
		}
		where, args := keysOfMany(keys)
		attrs, err := queryAttrRows(ctx, tx, readBackStmt(where), args...)
		if err != nil {
			return err
		}
		// A re-sealed value is new ciphertext (a fresh nonce): a row holds it only if this
		// transaction wrote it.
		resealed := make(map[attrKey]string, len(sorted))
		for _, r := range sorted {
			resealed[attrKey{scope: r.Key.Scope, name: r.Key.Name}] = r.Resealed
		}
		stored = stored[:0]
		for _, a := range attrs {
			if resealed[attrKey{scope: a.Scope, name: a.Name}] == a.Value {
				stored = append(stored, a)
			}
		}
		token, err = logChanges(ctx, tx, attrSets(stored))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: re-sealing attributes: %w", err)
	}
	db.noteLogged(ctx, token)
	return stored, nil
}

// resealAttrsStmt returns the one statement that applies reseals (sorted in primary-key order),
// each where its row still holds its Sealed value, and its arguments: an UPDATE joined with the
// list of reseals.
func resealAttrsStmt(reseals []attrcache.AttrReseal) (string, []any) {
	var b strings.Builder
	b.WriteString("UPDATE sso_attr a JOIN (")
	args := make([]any, 0, 5*len(reseals))
	for i, r := range reseals {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ? AS user_id, ? AS ust_hash, ? AS name, ? AS sealed, ? AS resealed")
		args = append(args, r.Key.Scope.UserID, r.Key.Scope.Session, r.Key.Name, r.Sealed, r.Resealed)
	}
	b.WriteString(`) r ON a.user_id = r.user_id AND a.ust_hash = r.ust_hash AND a.name = r.name
		AND a.is_encrypted AND a.value = r.sealed
		SET a.value = r.resealed, a.version = GREATEST(a.version + 1, ` + versionClock + ")")
	return b.String(), args
}

// resealBytes bounds what a reseal adds to resealAttrsStmt.
func resealBytes(r attrcache.AttrReseal) int {
	return attrRowOverheadBytes + 2*(len(r.Sealed)+len(r.Resealed)) +
		2*(len(r.Key.Scope.UserID)+len(r.Key.Scope.Session)+len(r.Key.Name))
}

// UserSealed is one sealed field of a user's row: Field is SealedEmail or SealedTOTPKey.
type UserSealed struct {
	UserID string
	Field  string
	Sealed string
}

// UsersSealedWith returns up to limit sealed values of field (SealedEmail or SealedTOTPKey)
// sealed with keyID, of users whose user_id comes after afterUserID, in user_id order.
func (db *DB) UsersSealedWith(ctx context.Context, field, keyID, afterUserID string, limit int) ([]UserSealed, error) {
	c, ok := sealedColumns[field]
	if !ok || c.table != "sso_user" {
		return nil, fmt.Errorf("persist: no sealed user field %q", field)
	}
	// As AttrsSealedWith: the key id in the column's collation, the order the primary key's.
	rows, err := db.db.QueryContext(ctx, "SELECT user_id, "+c.value+" FROM sso_user WHERE "+c.keyID+
		" = CONVERT(? USING utf8mb4) COLLATE utf8mb4_nopad_bin AND user_id > ? ORDER BY user_id LIMIT ?", keyID, afterUserID, limit)
	if err != nil {
		return nil, fmt.Errorf("persist: users sealed with %s: %w", keyID, mapError(err))
	}
	defer rows.Close()
	var found []UserSealed
	for rows.Next() {
		u := UserSealed{Field: field}
		if err := rows.Scan(&u.UserID, &u.Sealed); err != nil {
			return nil, fmt.Errorf("persist: users sealed with %s: %w", keyID, mapError(err))
		}
		found = append(found, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("persist: users sealed with %s: %w", keyID, mapError(err))
	}
	return found, nil
}

// ResealUsers applies, in one transaction, each reseal whose user still holds its Sealed value,
// bumping the user's version, and returns the users it rewrote as stored.
func (db *DB) ResealUsers(ctx context.Context, reseals []attrcache.UserReseal) ([]*attrcache.User, error) {
	if len(reseals) == 0 {
		return nil, nil
	}
	sorted := slices.SortedFunc(slices.Values(reseals), func(a, b attrcache.UserReseal) int {
		return strings.Compare(a.UserID, b.UserID)
	})
	var stored []*attrcache.User
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		stored, token = nil, 0
		var changed []string
		for _, r := range sorted {
			c, ok := sealedColumns[r.Field]
			if !ok || c.table != "sso_user" {
				return fmt.Errorf("no sealed user field %q", r.Field)
			}
			res, err := tx.ExecContext(ctx, "UPDATE sso_user SET "+c.value+" = ?, version = version + 1 WHERE user_id = ? AND "+c.value+" = ?",
				r.Resealed, r.UserID, r.Sealed)
			if err != nil {
				return mapError(err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return mapError(err)
			} else if n > 0 && !slices.Contains(changed, r.UserID) {
				changed = append(changed, r.UserID)
			}
		}
		for _, userID := range changed {
			u, err := db.userBy(ctx, tx, "user_id", userID)
			if err != nil {
				return err
			}
			stored = append(stored, u)
		}
		changes := make([]attrcache.Change, len(stored))
		for i, u := range stored {
			changes[i] = attrcache.Change{Kind: attrcache.ChangePrincipal, Op: attrcache.ChangeSet, UserID: u.UserID, Version: u.Version}
		}
		var err error
		token, err = logChanges(ctx, tx, changes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: re-sealing users: %w", err)
	}
	db.noteLogged(ctx, token)
	return stored, nil
}
