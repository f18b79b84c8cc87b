package persist

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// loggedFor returns the log's rows that name userID, in ID order.
func loggedFor(t *testing.T, db *DB, userID string) []attrcache.ChangeBatch {
	t.Helper()
	batches, err := db.queryChanges(t.Context(), `SELECT change_id, change_time, entries FROM sso_change
		WHERE entries LIKE CONCAT('%', ?, '%') ORDER BY change_id`, userID)
	if err != nil {
		t.Fatalf("reading the log: %v", err)
	}
	return batches
}

// pendingOf returns which of the batches still have a pending mark.
func pendingOf(t *testing.T, db *DB, batches []attrcache.ChangeBatch) []int64 {
	t.Helper()
	if len(batches) == 0 {
		return nil
	}
	args := make([]any, len(batches))
	for i, b := range batches {
		args[i] = b.ID
	}
	rows, err := db.SQL().QueryContext(t.Context(), "SELECT change_id FROM sso_change_pending WHERE "+
		inList("change_id", len(args))+" ORDER BY change_id", args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// changesOf returns every change of batches, in order.
func changesOf(batches []attrcache.ChangeBatch) []attrcache.Change {
	var changes []attrcache.Change
	for _, b := range batches {
		changes = append(changes, b.Changes...)
	}
	return changes
}

// setChange is the ChangeSet entry of a as stored.
func setChange(a *attrcache.Attr) attrcache.Change {
	return attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeSet, UserID: a.Scope.UserID,
		Session: a.Scope.Session, Name: a.Name, Version: a.Version, ExpiresAt: a.ExpirationTime}
}

func TestChangeLogOfEveryWrite(t *testing.T) {
	ctx := context.Background()
	now := attrcache.Now()
	later := now.Add(time.Hour)
	gc, _ := openGroupDB(t, GroupCommit{MaxRows: 16, MaxWait: time.Millisecond, Workers: 1})
	tests := []struct {
		name string
		// write makes the write on a fresh user (with session hash) and returns the changes it
		// must log.
		write func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change
	}{
		{"set user attributes (one round trip)", func(t *testing.T, u *attrcache.User, _ attrcache.SessionHash) []attrcache.Change {
			stored := setAttrs(t, testDB, attrcache.AttrScope{UserID: u.UserID}, now,
				attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b\tc", Value: `2`, ExpiresAt: &later})
			return []attrcache.Change{setChange(stored[0]), setChange(stored[1])}
		}},
		{"set a user attribute (group commit)", func(t *testing.T, u *attrcache.User, _ attrcache.SessionHash) []attrcache.Change {
			stored := setAttrs(t, gc, attrcache.AttrScope{UserID: u.UserID}, now, attrcache.AttrWrite{Name: "a", Value: `1`})
			return []attrcache.Change{setChange(stored[0])}
		}},
		{"set a session attribute (group commit)", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			stored := setAttrs(t, gc, attrcache.AttrScope{UserID: u.UserID, Session: hash}, now, attrcache.AttrWrite{Name: "a", Value: `1`})
			return []attrcache.Change{setChange(stored[0])}
		}},
		{"set session attributes", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			stored := setAttrs(t, testDB, attrcache.AttrScope{UserID: u.UserID, Session: hash}, now,
				attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b", Value: `2`})
			return []attrcache.Change{setChange(stored[0]), setChange(stored[1])}
		}},
		{"create attributes", func(t *testing.T, u *attrcache.User, _ attrcache.SessionHash) []attrcache.Change {
			created, err := testDB.CreateAttrs(ctx, attrcache.AttrScope{UserID: u.UserID}, []attrcache.AttrWrite{{Name: "a", Value: `1`}}, now)
			if err != nil {
				t.Fatalf("CreateAttrs: %v", err)
			}
			return []attrcache.Change{setChange(created[0])}
		}},
		{"update attributes", func(t *testing.T, u *attrcache.User, _ attrcache.SessionHash) []attrcache.Change {
			scope := attrcache.AttrScope{UserID: u.UserID}
			first := setAttrs(t, testDB, scope, now, attrcache.AttrWrite{Name: "a", Value: `1`})
			updated, err := testDB.UpdateAttrs(ctx, scope, []attrcache.AttrWrite{{Name: "a", Value: `2`}, {Name: "missing", Value: `3`}}, now)
			if err != nil {
				t.Fatalf("UpdateAttrs: %v", err)
			}
			return []attrcache.Change{setChange(first[0]), setChange(updated[0])}
		}},
		{"delete attributes", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			scope := attrcache.AttrScope{UserID: u.UserID, Session: hash}
			first := setAttrs(t, testDB, scope, now, attrcache.AttrWrite{Name: "a", Value: `1`})
			tombstone, err := testDB.DeleteAttrs(ctx, scope, []string{"a", "b"}, now)
			if err != nil {
				t.Fatalf("DeleteAttrs: %v", err)
			}
			del := attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeDelete, UserID: u.UserID, Session: hash, Version: tombstone}
			delA, delB := del, del
			delA.Name, delB.Name = "a", "b"
			return []attrcache.Change{setChange(first[0]), delA, delB}
		}},
		{"update the user", func(t *testing.T, u *attrcache.User, _ attrcache.SessionHash) []attrcache.Change {
			updated, err := testDB.UpdateUser(ctx, u.UserID, attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)})
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			return []attrcache.Change{{Kind: attrcache.ChangePrincipal, Op: attrcache.ChangeSet, UserID: u.UserID, Version: updated.Version}}
		}},
		{"delete the user", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			first := setAttrs(t, testDB, attrcache.AttrScope{UserID: u.UserID, Session: hash}, now, attrcache.AttrWrite{Name: "s", Value: `1`})
			if _, err := testDB.DeleteUser(ctx, u.UserID); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			return []attrcache.Change{setChange(first[0]),
				{Kind: attrcache.ChangePrincipal, Op: attrcache.ChangeGone, UserID: u.UserID},
				{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash, Name: "s", Version: first[0].Version}}
		}},
		{"renew the session", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			renewed, err := testDB.RenewSession(ctx, u.UserID, hash, later, attrcache.SessionStateChange{})
			if err != nil {
				t.Fatalf("RenewSession: %v", err)
			}
			return []attrcache.Change{{Kind: attrcache.ChangeSession, Op: attrcache.ChangeSet, UserID: u.UserID, Session: hash,
				Version: renewed.Version, ExpiresAt: later}}
		}},
		{"delete the session", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			if err := testDB.DeleteSession(ctx, u.UserID, hash); err != nil {
				t.Fatalf("DeleteSession: %v", err)
			}
			return []attrcache.Change{{Kind: attrcache.ChangeSession, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash}}
		}},
		{"delete the session with its attributes", func(t *testing.T, u *attrcache.User, hash attrcache.SessionHash) []attrcache.Change {
			stored := setAttrs(t, testDB, attrcache.AttrScope{UserID: u.UserID, Session: hash}, now,
				attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b", Value: `2`, ExpiresAt: &now})
			if err := testDB.DeleteSession(ctx, u.UserID, hash); err != nil {
				t.Fatalf("DeleteSession: %v", err)
			}
			// b had expired: its entry says when.
			return []attrcache.Change{setChange(stored[0]), setChange(stored[1]),
				{Kind: attrcache.ChangeSession, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash},
				{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash, Name: "a", Version: stored[0].Version},
				{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash, Name: "b", Version: stored[1].Version,
					ExpiresAt: stored[1].ExpirationTime}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := createUser(t, testDB, newUser())
			sess := createSession(t, testDB, newSession(u.UserID, now.Add(time.Hour)))
			want := tt.write(t, u, sess.Hash)
			batches := loggedFor(t, testDB, u.UserID)
			if got := changesOf(batches); !reflect.DeepEqual(got, want) {
				t.Errorf("logged %+v, want %+v", got, want)
			}
			ids := make([]int64, len(batches))
			for i, b := range batches {
				ids[i] = b.ID
			}
			// No cache applied them: every row stays pending, for the relay.
			if got := pendingOf(t, testDB, batches); !slices.Equal(got, ids) {
				t.Errorf("pending rows %v, want all of %v", got, ids)
			}
		})
	}
}

func TestChangeLogForgetsWhatTheCacheApplied(t *testing.T) {
	scope := userScope(t)
	ctx, receipt := attrcache.WithChangeReceipt(t.Context())
	if _, err := testDB.SetAttrs(ctx, scope, []attrcache.AttrWrite{{Name: "a", Value: `1`}}, attrcache.Now()); err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	batches := loggedFor(t, testDB, scope.UserID)
	if got := pendingOf(t, testDB, batches); len(got) != 1 {
		t.Fatalf("pending rows %v before Applied, want the write's", got)
	}
	receipt.Applied()
	testDB.forgetter.flush()
	if got := pendingOf(t, testDB, batches); len(got) != 0 {
		t.Errorf("pending rows %v after Applied, want none", got)
	}
}

func TestChangeLogBatchForgottenOnceEveryCallerApplied(t *testing.T) {
	db, _ := openGroupDB(t, GroupCommit{MaxRows: 16, MaxWait: 0, Workers: 1})
	release := blockWorker(t, db)
	scopes := []attrcache.AttrScope{userScope(t), userScope(t)}
	receipts := make([]*attrcache.ChangeReceipt, len(scopes))
	errs := make(chan error, len(scopes))
	for i, scope := range scopes {
		var ctx context.Context
		ctx, receipts[i] = attrcache.WithChangeReceipt(t.Context())
		go func() {
			_, err := db.SetAttrs(ctx, scope, []attrcache.AttrWrite{{Name: "a", Value: `1`}}, attrcache.Now())
			errs <- err
		}()
	}
	waitFor(t, "both writes to queue behind the blocked worker", func() bool { return queued(db) == len(scopes) })
	if err := release(); err != nil {
		t.Fatalf("the blocking write: %v", err)
	}
	for range scopes {
		if err := <-errs; err != nil {
			t.Fatalf("SetAttrs: %v", err)
		}
	}
	first, second := loggedFor(t, testDB, scopes[0].UserID), loggedFor(t, testDB, scopes[1].UserID)
	if len(first) != 1 || !reflect.DeepEqual(first, second) {
		t.Fatalf("logged %v and %v, want one row of the batch for both", first, second)
	}
	receipts[0].Applied()
	db.forgetter.flush()
	if got := pendingOf(t, testDB, first); len(got) != 1 {
		t.Errorf("pending rows %v after one of two callers applied, want the batch's", got)
	}
	receipts[1].Applied()
	db.forgetter.flush()
	if got := pendingOf(t, testDB, first); len(got) != 0 {
		t.Errorf("pending rows %v after both callers applied, want none", got)
	}
}

func TestChangeLogReadersAndPurge(t *testing.T) {
	db := freshStore(t, "changelog_read")
	ctx := t.Context()
	u := createUser(t, db, newUser())
	scope := attrcache.AttrScope{UserID: u.UserID}
	setAttrs(t, db, scope, attrcache.Now(), attrcache.AttrWrite{Name: "a", Value: `1`})
	setAttrs(t, db, scope, attrcache.Now(), attrcache.AttrWrite{Name: "b", Value: `2`})

	pending, err := db.PendingChanges(ctx, 0, 10)
	if err != nil || len(pending) != 2 {
		t.Fatalf("PendingChanges(grace 0) = %v, %v; want both writes", pending, err)
	}
	if late, err := db.PendingChanges(ctx, time.Hour, 10); err != nil || len(late) != 0 {
		t.Errorf("PendingChanges(grace 1h) = %v, %v; want none yet", late, err)
	}
	if err := db.ForgetPending(ctx, []int64{pending[0].ID}); err != nil {
		t.Fatalf("ForgetPending: %v", err)
	}
	if left, err := db.PendingChanges(ctx, 0, 10); err != nil || len(left) != 1 || left[0].ID != pending[1].ID {
		t.Errorf("PendingChanges after forgetting the first = %v, %v; want the second", left, err)
	}

	all, err := db.ChangesSince(ctx, time.Time{}, 0, 10)
	if err != nil || len(all) != 2 || all[0].Changes[0].Name != "a" || all[1].Changes[0].Name != "b" {
		t.Fatalf("ChangesSince(0) = %v, %v; want a's then b's", all, err)
	}
	if after, err := db.ChangesSince(ctx, time.Time{}, all[0].ID, 10); err != nil || len(after) != 1 || after[0].ID != all[1].ID {
		t.Errorf("ChangesSince after the first = %v, %v; want the second", after, err)
	}
	if none, err := db.ChangesSince(ctx, time.Now().Add(time.Hour), 0, 10); err != nil || len(none) != 0 {
		t.Errorf("ChangesSince(in an hour) = %v, %v; want none", none, err)
	}

	if n, err := db.PurgeChanges(ctx, time.Now().Add(-time.Hour), 10); err != nil || n != 0 {
		t.Errorf("PurgeChanges(an hour ago) = %d, %v; want 0", n, err)
	}
	if n, err := db.PurgeChanges(ctx, time.Now().Add(time.Hour), 10); err != nil || n != 2 {
		t.Errorf("PurgeChanges(in an hour) = %d, %v; want 2", n, err)
	}
	if left, err := db.PendingChanges(ctx, 0, 10); err != nil || len(left) != 0 {
		t.Errorf("PendingChanges after the purge = %v, %v; want none", left, err)
	}
}

func TestChangeLogSplitsLongLists(t *testing.T) {
	u := createUser(t, testDB, newUser())
	hash := attrcache.SessionHash(strings.Repeat("0", 64))
	// Enough attributes gone with the user to need more than one row of the log.
	removed := make([]attrcache.Change, changeRowBytes/(changeEntryBytes+64+len(u.UserID)+40)+10)
	for i := range removed {
		removed[i] = attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeGone, UserID: u.UserID, Session: hash,
			Name: fmt.Sprintf("attribute-%032d", i), Version: 1_700_000_000_000_000 + int64(i)}
	}
	want := userGone(u.UserID, removed)
	tx, err := testDB.SQL().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := logChanges(t.Context(), tx, want)
	if err != nil {
		_ = tx.Rollback()
		t.Fatalf("logChanges: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	batches := loggedFor(t, testDB, u.UserID)
	if len(batches) < 2 {
		t.Errorf("logged %d rows, want the list split", len(batches))
	}
	if got := changesOf(batches); !reflect.DeepEqual(got, want) {
		t.Errorf("logged %d changes, want the %d given in order", len(got), len(want))
	}
	if err := testDB.deletePending(t.Context(), "token", []int64{token}); err != nil {
		t.Fatal(err)
	}
	if got := pendingOf(t, testDB, batches); len(got) != 0 {
		t.Errorf("pending rows %v after the token was forgotten, want none", got)
	}
}

// TestChangeLogCIDs checks that a write logs the cid of each row: as the log row's when the rows
// share one, else each entry's own, on both ways of writing (one trip, and statement by
// statement).
func TestChangeLogCIDs(t *testing.T) {
	now := attrcache.Now()
	for name, write := range map[string]func([]attrRow) error{
		"one trip": func(rows []attrRow) error {
			_, _, fits, err := testDB.setUserAttrsInOneTrip(t.Context(), rows)
			if !fits {
				t.Fatal("two rows do not fit in one trip")
			}
			return err
		},
		"statements": func(rows []attrRow) error {
			_, _, err := testDB.setAttrsByStatements(t.Context(), rows)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			for _, cids := range [][2]string{{"same", "same"}, {"first", "second\tline"}} {
				a, b := userScope(t), userScope(t)
				err := write([]attrRow{
					{scope: a, item: attrcache.AttrWrite{Name: "x", Value: `1`}, now: now, cid: cids[0]},
					{scope: b, item: attrcache.AttrWrite{Name: "y", Value: `2`}, now: now, cid: cids[1]},
				})
				if err != nil {
					t.Fatal(err)
				}
				var rowCID string
				var entries []byte
				if err := testDB.SQL().QueryRowContext(t.Context(), "SELECT cid, entries FROM sso_change WHERE entries LIKE ? ORDER BY change_id DESC LIMIT 1",
					"%"+a.UserID+"%").Scan(&rowCID, &entries); err != nil {
					t.Fatal(err)
				}
				changes, err := decodeChanges(entries)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, c := range changes {
					got[c.UserID] = cmp.Or(c.CID, rowCID)
				}
				want := map[string]string{a.UserID: cids[0], b.UserID: strings.ReplaceAll(cids[1], "\t", "")}
				if !maps.Equal(got, want) {
					t.Errorf("cids %v: logged %v (row cid %q), want %v", cids, got, rowCID, want)
				}
			}
		})
	}
}
