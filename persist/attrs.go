package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
)

// SetAttrs creates the items that are absent and updates the others, in one transaction, and
// returns them as stored, in the order of items. Of items repeating a name, the last one wins
// and takes the place of the first. An expired row counts as absent: it is replaced, creation
// time included. A created attribute never expires unless its item gives ExpiresAt; an updated
// one keeps its expiration time unless its item gives one. Value, IsEncrypted and LastModified
// (now) are always written.
//
// A session scope's session must exist and not have ended at now, and a user scope's user must
// exist, else attrcache.ErrNotFound. No items: no attributes and no error. With group commit on
// (WithGroupCommit), a call of one attribute shares a transaction with concurrent calls of
// other attributes and returns once it has committed; what it stores and returns, and its
// errors, are those of a call of its own.
func (db *DB) SetAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	items = attrcache.LastWritePerName(items)
	if len(items) == 0 {
		return nil, nil
	}
	if hasConditions(items) {
		return db.writeConditional(ctx, scope, attrcache.AttrSet, items, now)
	}
	if len(items) == 1 && db.committer != nil {
		stored, err := db.committer.set(ctx, attrRow{scope: scope, item: items[0], now: now, cid: attrcache.CIDOf(ctx)})
		if !errors.Is(err, errCommitterClosed) {
			if err != nil {
				return nil, fmt.Errorf("persist: set attributes of %s: %w", scope.UserID, err)
			}
			return []*attrcache.Attr{stored}, nil
		}
	}
	results, token, err := db.setAttrRows(ctx, rowsOf(scope, items, now))
	if err == nil {
		err = firstRowError(results)
	}
	if err != nil {
		return nil, fmt.Errorf("persist: set attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return storedOf(results), nil
}

// CreateAttrs creates every item in one transaction and returns them as stored, in the order of
// items, each with LastModified equal to CreationTime (now). If an item's name has a row that
// has not expired at now, or repeats another item's, it writes nothing and gives
// attrcache.ErrConflict; expired rows of those names are replaced. A created attribute never
// expires unless its item gives ExpiresAt.
//
// A session scope's session must exist and not have ended at now, and a user scope's user must
// exist, else attrcache.ErrNotFound. No items: no attributes and no error.
func (db *DB) CreateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	if len(items) == 0 {
		return nil, nil
	}
	if len(attrcache.LastWritePerName(items)) != len(items) {
		return nil, fmt.Errorf("persist: create attributes of %s: a name is given twice: %w", scope.UserID, attrcache.ErrConflict)
	}
	if hasConditions(items) {
		return db.writeConditional(ctx, scope, attrcache.AttrCreate, items, now)
	}
	var created []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockQuotaOrNotFound(ctx, tx, scope.UserID); err != nil {
			return err
		}
		if err := lockLiveSession(ctx, tx, scope, now); err != nil {
			return err
		}
		if err := raiseVersionFloorToExpired(ctx, tx, scope, itemNames(items), now); err != nil {
			return err
		}
		keys, keyArgs := keysOf(scope, itemNames(items))
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+keys+" AND expiration_time <= ?",
			append(keyArgs, now)...); err != nil {
			return mapError(err)
		}
		if err := db.checkQuota(ctx, tx, scope, items, now); err != nil {
			return err
		}
		var err error
		if created, err = db.insertAttrItems(ctx, tx, scope, items, now, failOnExisting); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, attrSets(created))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: create attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return created, nil
}

// UpdateAttrs updates, in one transaction, the items whose attributes exist and have not expired
// at now, ignoring the others, and returns those it updated as stored, in the order of items. Of
// items repeating a name, the last one wins and takes the place of the first. Value, IsEncrypted
// and LastModified (now) are always written, the expiration time only when the item gives
// ExpiresAt.
//
// A session scope's session must exist and not have ended at now, else attrcache.ErrNotFound; a
// user that does not exist has no attributes to update.
func (db *DB) UpdateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	items = attrcache.LastWritePerName(items)
	if len(items) == 0 {
		return nil, nil
	}
	if hasConditions(items) {
		return db.writeConditional(ctx, scope, attrcache.AttrUpdate, items, now)
	}
	var updated []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		updated, token = nil, 0 // what an attempt rolled back at its commit had updated
		if found, err := db.lockUserBeforeAttrs(ctx, tx, scope.UserID); err != nil || !found {
			return err // a user that does not exist has no attributes
		}
		if err := lockLiveSession(ctx, tx, scope, now); err != nil {
			return err
		}
		live, err := lockLiveNames(ctx, tx, scope, itemNames(items), now)
		if err != nil {
			return err
		}
		existing := slices.DeleteFunc(slices.Clone(items), func(item attrcache.AttrWrite) bool {
			return !live[item.Name]
		})
		if len(existing) == 0 {
			return nil
		}
		if err := db.checkQuota(ctx, tx, scope, existing, now); err != nil {
			return err
		}
		// Every row is live and locked: the upsert only updates.
		if updated, err = db.insertAttrItems(ctx, tx, scope, existing, now, updateExisting); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, attrSets(updated))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: update attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return updated, nil
}

// Attrs returns the named attributes of scope that are live at now, keyed by name; missing and
// expired ones, and those of a session that has ended, are left out.
func (db *DB) Attrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (map[string]*attrcache.Attr, error) {
	if len(names) == 0 {
		return map[string]*attrcache.Attr{}, nil
	}
	keys, args := keysOf(scope, names)
	live, liveArgs := liveAt(scope, now)
	attrs, err := queryAttrs(ctx, db.db, "SELECT "+attrColumns+" FROM sso_attr WHERE "+keys+" AND "+live,
		append(args, liveArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("persist: attributes of %s: %w", scope.UserID, err)
	}
	return attrs, nil
}

// AttrNames returns the names of the attributes of scope that are live at now, in no particular
// order; none for a session that has ended.
func (db *DB) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	live, liveArgs := liveAt(scope, now)
	query := "SELECT name FROM sso_attr WHERE user_id = ? AND ust_hash = ? AND " + live
	names, err := queryNames(ctx, db.db, query, append([]any{scope.UserID, scope.Session}, liveArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("persist: attribute names of %s: %w", scope.UserID, err)
	}
	return names, nil
}

// DeleteAttrs deletes the named attributes of scope, expired ones too, in one transaction;
// missing ones are ignored. It returns a tombstone version: above the version of every row it
// deleted and every earlier tombstone of the user, at least the version clock, and below the
// version of any attribute of the user created later. No names: tombstone 0 and nothing deleted.
func (db *DB) DeleteAttrs(ctx context.Context, scope attrcache.AttrScope, names []string, _ time.Time) (tombstone int64, err error) {
	if len(names) == 0 {
		return 0, nil
	}
	var token int64
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		tombstone, token, err = deleteAttrsIn(ctx, tx, scope, names)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("persist: delete attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return tombstone, nil
}

// deleteAttrsIn does the work of DeleteAttrs in tx, and returns the tombstone and the token of
// the change log's pending mark.
func deleteAttrsIn(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, names []string) (tombstone, token int64, err error) {
	// The user's row first, then the attributes: the lock order of every write.
	userAttrs, userAttrsArgs := attrsOfLockedUser(scope, names)
	_, err = tx.ExecContext(ctx, `UPDATE sso_user SET attr_version_floor = GREATEST(attr_version_floor + 1, `+
		versionClock+`, COALESCE((SELECT MAX(a.version) + 1 FROM sso_attr a WHERE `+userAttrs+`), 0))
		WHERE user_id = ?`, append(userAttrsArgs, scope.UserID)...)
	if err != nil {
		return 0, 0, mapError(err)
	}
	// A user that does not exist has no rows to delete, and the clock's tombstone.
	err = tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(attr_version_floor), "+versionClock+
		") FROM sso_user WHERE user_id = ?", scope.UserID).Scan(&tombstone)
	if err != nil {
		return 0, 0, mapError(err)
	}
	keys, args := keysOf(scope, names)
	if _, err = tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+keys, args...); err != nil {
		return 0, 0, mapError(err)
	}
	// Every name is logged, whether it had a row or not: the feed gives each acknowledged
	// deletion its event, as it does each write (an attribute deleted once expired has both).
	token, err = logChanges(ctx, tx, attrDeletes(scope, names, tombstone))
	return tombstone, token, err
}

// itemNames returns the names of items, in their order.
func itemNames(items []attrcache.AttrWrite) []string {
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.Name
	}
	return names
}
