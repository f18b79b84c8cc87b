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

// exportPageRows is how many attributes ScanUserAttrs reads per query.
var exportPageRows = 256

// ScanUserAttrs calls fn with each attribute of the user live at now: the user's own attributes
// first (their ust_hash is ""), then those of each session that has not ended at now, in
// primary-key order. It reads them a page at a time, each page a query of its own whose
// connection is released before fn sees its rows, so a slow consumer holds no connection; the
// pages are not one snapshot: a write between two pages shows in the later one only.
func (db *DB) ScanUserAttrs(ctx context.Context, userID string, now time.Time, fn func(*attrcache.Attr) error) error {
	var after attrcache.Attr
	for {
		page, err := queryAttrRows(ctx, db.db, "SELECT "+attrColumns+` FROM sso_attr
			WHERE user_id = CONVERT(? USING ascii)
				AND (ust_hash > CONVERT(? USING ascii) OR (ust_hash = CONVERT(? USING ascii) AND name > CAST(? AS BINARY)))
				AND expiration_time > ?
				AND (ust_hash = '' OR EXISTS (SELECT 1 FROM sso_session s
					WHERE s.ust_hash = sso_attr.ust_hash AND s.user_id = sso_attr.user_id AND s.expiration_time > ?))
			ORDER BY ust_hash, name LIMIT ?`,
			userID, after.Scope.Session, after.Scope.Session, after.Name, now, now, exportPageRows)
		if err != nil {
			return fmt.Errorf("persist: attributes of %s: %w", userID, err)
		}
		for _, a := range page {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(page) < exportPageRows {
			return nil
		}
		after = *page[len(page)-1]
	}
}
