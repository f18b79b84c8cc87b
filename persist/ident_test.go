package persist

import (
	"errors"
	"slices"
	"testing"

	"github.com/attrcache/attrcache"
)

// TestIdentifiersCompareByteForByte checks that a user_id, a username or an attribute name
// differing from another in trailing spaces is another value: a padded look-up finds nothing, a
// padded write changes nothing, and "a" and "a " are two attributes.
func TestIdentifiersCompareByteForByte(t *testing.T) {
	ctx, now := t.Context(), attrcache.Now()
	u := createUser(t, testDB, newUser())
	scope := attrcache.AttrScope{UserID: u.UserID}
	setAttrs(t, testDB, scope, now, attrcache.AttrWrite{Name: "a", Value: `"original"`})

	for _, padded := range []string{u.UserID + " ", u.UserID + "  "} {
		paddedScope := attrcache.AttrScope{UserID: padded}
		tests := []struct {
			name string
			call func() error
		}{
			{"UserByID", func() error { _, err := testDB.UserByID(ctx, padded); return err }},
			{"UpdateUser", func() error {
				_, err := testDB.UpdateUser(ctx, padded, attrcache.UserUpdate{DisplayName: attrcache.SetTo(ptr("Overwritten"))})
				return err
			}},
			{"DeleteUser", func() error { _, err := testDB.DeleteUser(ctx, padded); return err }},
			{"SetAttrs", func() error {
				_, err := testDB.SetAttrs(ctx, paddedScope, []attrcache.AttrWrite{{Name: "a", Value: `"overwritten"`}}, now)
				return err
			}},
			{"CreateAttrs", func() error {
				_, err := testDB.CreateAttrs(ctx, paddedScope, []attrcache.AttrWrite{{Name: "b", Value: `"created"`}}, now)
				return err
			}},
		}
		for _, tt := range tests {
			if err := tt.call(); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("%s(%q): error %v, want ErrNotFound", tt.name, padded, err)
			}
		}
		if _, err := testDB.DeleteAttrs(ctx, paddedScope, []string{"a"}, now); err != nil && !errors.Is(err, attrcache.ErrNotFound) {
			t.Errorf("DeleteAttrs(%q): %v", padded, err)
		}
		if found, err := testDB.Attrs(ctx, paddedScope, []string{"a"}, now); err != nil || len(found) != 0 {
			t.Errorf("Attrs(%q) = %v, %v; want nothing", padded, found, err)
		}
		if users, total, err := testDB.SearchUsers(ctx, attrcache.UserQuery{UserID: padded}); err != nil || total != 0 || len(users) != 0 {
			t.Errorf("SearchUsers by user_id %q: %d users, total %d, %v; want none", padded, len(users), total, err)
		}
	}
	got, err := testDB.UserByID(ctx, u.UserID)
	if err != nil || got.Version != u.Version || got.DisplayName != nil {
		t.Errorf("the user after the padded writes: %+v, %v; want version %d and no display name", got, err, u.Version)
	}
	if a := storedAttrs(t, testDB, scope)["a"]; a == nil || a.Value != `"original"` {
		t.Errorf("attribute a after the padded writes = %+v, want the value \"original\"", a)
	}

	t.Run("usernames", func(t *testing.T) {
		for _, padded := range []string{u.Username + " ", u.Username + "  "} {
			if found, err := testDB.UserByUsername(ctx, padded); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("UserByUsername(%q) = %v, %v; want ErrNotFound", padded, found, err)
			}
			if users, total, err := testDB.SearchUsers(ctx, attrcache.UserQuery{Username: padded}); err != nil || total != 0 {
				t.Errorf("SearchUsers by username %q: %d users, total %d, %v; want none", padded, len(users), total, err)
			}
		}
		other := newUser()
		other.Username = u.Username + " "
		createUser(t, testDB, other) // a username of its own, not a duplicate of u's
		for _, want := range []*attrcache.User{u, other} {
			if found, err := testDB.UserByUsername(ctx, want.Username); err != nil || found.UserID != want.UserID {
				t.Errorf("UserByUsername(%q) = %v, %v; want user %s", want.Username, found, err, want.UserID)
			}
		}
	})

	t.Run("attribute names", func(t *testing.T) {
		setAttrs(t, testDB, scope, now, attrcache.AttrWrite{Name: "a ", Value: `"padded"`})
		var rows int
		if err := testDB.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_attr WHERE user_id = ? AND ust_hash = ''", u.UserID).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		stored := storedAttrs(t, testDB, scope)
		if rows != 2 || stored["a"] == nil || stored["a"].Value != `"original"` || stored["a "] == nil || stored["a "].Value != `"padded"` {
			t.Errorf("after setting a and \"a \": %d rows, a = %+v, \"a \" = %+v; want two rows with their own values", rows, stored["a"], stored["a "])
		}
	})
}

// TestMigrationToNoPad checks 0004 over data written under the PAD SPACE collations of 0001-0003:
// an attribute written for a padded user_id becomes its user's, a username with trailing spaces
// loses them (with a new version), the foreign keys are back, every CHAR and VARCHAR column is
// NO PAD, and running the migration again changes nothing.
func TestMigrationToNoPad(t *testing.T) {
	db := openDB(t, freshDSN(t, "persist_nopad"))
	ctx := t.Context()
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(migrations, func(m migration) bool { return m.version == "0004_nopad_identifiers" })
	if i < 0 {
		t.Fatal("no migration 0004_nopad_identifiers")
	}
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := appliedVersions(ctx, conn); err != nil { // creates schema_migrations
		t.Fatal(err)
	}
	for _, m := range migrations[:i] {
		if err := applyMigration(ctx, conn, m); err != nil {
			t.Fatal(err)
		}
	}

	padded := newUser()
	padded.Username += "  "
	createUser(t, db, padded)
	plain := createUser(t, db, newUser())
	insertAttr(t, db, padded.UserID+" ", "", "written-padded")
	insertAttr(t, db, padded.UserID, "", "written-plain")

	applied, err := db.Migrate(ctx)
	if err != nil || len(applied) == 0 || applied[0] != "0004_nopad_identifiers" {
		t.Fatalf("Migrate applied %v, %v; want 0004_nopad_identifiers first", applied, err)
	}
	checkMigrated := func(t *testing.T) {
		t.Helper()
		if names := attrNames(t, db, padded.UserID, ""); !slices.Equal(names, []string{"written-padded", "written-plain"}) {
			t.Errorf("attributes of %s = %v, want both, the padded one moved to its user", padded.UserID, names)
		}
		var paddedRows int
		if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_attr WHERE user_id LIKE '% '").Scan(&paddedRows); err != nil || paddedRows != 0 {
			t.Errorf("%d attributes with a padded user_id (%v), want 0", paddedRows, err)
		}
		trimmed, err := db.UserByID(ctx, padded.UserID)
		if want := padded.Username[:len(padded.Username)-2]; err != nil || trimmed.Username != want || trimmed.Version != padded.Version+1 {
			t.Errorf("the padded user after 0004: %+v, %v; want username %q, version %d", trimmed, err, want, padded.Version+1)
		}
		if found, err := db.UserByUsername(ctx, plain.Username); err != nil || found.Version != plain.Version {
			t.Errorf("the plain user after 0004: %+v, %v; want it unchanged", found, err)
		}
		var fks int
		if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS
			WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = 'sso_user' AND DELETE_RULE = 'CASCADE'`).Scan(&fks); err != nil || fks != 2 {
			t.Errorf("%d cascading foreign keys to sso_user (%v), want 2", fks, err)
		}
		if _, err := db.SetAttrs(ctx, attrcache.AttrScope{UserID: padded.UserID + " "}, []attrcache.AttrWrite{{Name: "x", Value: "1"}}, attrcache.Now()); !errors.Is(err, attrcache.ErrNotFound) {
			t.Errorf("SetAttrs for a padded user_id after 0004: %v, want ErrNotFound", err)
		}
		checkNoPadColumns(t, db)
	}
	checkMigrated(t)
	t.Run("again", func(t *testing.T) {
		if err := applyMigration(ctx, conn, migration{version: "0004_again", statements: migrations[i].statements}); err != nil {
			t.Fatalf("0004 a second time: %v", err)
		}
		checkMigrated(t)
	})
}

// checkNoPadColumns fails the test for every CHAR or VARCHAR column, and every table default,
// of db's schema whose collation pads with spaces.
func checkNoPadColumns(t *testing.T, db *DB) {
	t.Helper()
	rows, err := db.SQL().QueryContext(t.Context(), `SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('char', 'varchar')
		AND COLLATION_NAME NOT IN ('ascii_nopad_bin', 'utf8mb4_nopad_bin')
		UNION ALL SELECT TABLE_NAME, '(default)', TABLE_COLLATION
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_COLLATION <> 'utf8mb4_nopad_bin'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, column, collation string
		if err := rows.Scan(&table, &column, &collation); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s.%s has the collation %s, want a NO PAD binary one", table, column, collation)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
