package persist

import (
	"context"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

var _ attrcache.AttrExporter = (*DB)(nil)

// AttrKeyIDsOfUser returns the ids of the keys that seal the user's stored attribute values, each
// once. It reads the user's rows of the primary key, not their values.
func (db *DB) AttrKeyIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	ids, err := queryNames(ctx, db.db, "SELECT DISTINCT value_key_id FROM sso_attr WHERE user_id = ? AND value_key_id IS NOT NULL", userID)
	if err != nil {
		return nil, fmt.Errorf("persist: key ids of the attributes of %s: %w", userID, err)
	}
	return ids, nil
}

// ScanUserAttrs calls fn with each attribute of the user live at now, from one query whose rows
// are read as they arrive: the user's own attributes first (their ust_hash is ""), then those of
// each session that has not ended at now, in primary-key order. The query holds a connection
// until the scan ends.
func (db *DB) ScanUserAttrs(ctx context.Context, userID string, now time.Time, fn func(*attrcache.Attr) error) error {
	rows, err := db.db.QueryContext(ctx, "SELECT "+attrColumns+` FROM sso_attr
		WHERE user_id = ? AND expiration_time > ? AND (ust_hash = '' OR EXISTS (SELECT 1 FROM sso_session s
			WHERE s.ust_hash = sso_attr.ust_hash AND s.user_id = sso_attr.user_id AND s.expiration_time > ?))
		ORDER BY user_id, ust_hash, name`, userID, now, now)
	if err != nil {
		return fmt.Errorf("persist: attributes of %s: %w", userID, mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var a attrcache.Attr
		err := rows.Scan(&a.Scope.UserID, &a.Scope.Session, &a.Name, &a.Value, &a.IsEncrypted,
			&a.CreationTime, &a.LastModified, &a.ExpirationTime, &a.Version)
		if err != nil {
			return fmt.Errorf("persist: attributes of %s: %w", userID, mapError(err))
		}
		if err := fn(&a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("persist: attributes of %s: %w", userID, mapError(err))
	}
	return nil
}
