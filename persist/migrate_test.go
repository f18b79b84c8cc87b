package persist

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/attrcache/attrcache"
)

// allVersions returns the versions of the embedded migrations, in order.
func allVersions(t *testing.T) []string {
	t.Helper()
	migrations, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	var versions []string
	for _, m := range migrations {
		versions = append(versions, m.version)
	}
	return versions
}

// recordedVersions returns the versions schema_migrations holds, in order.
func recordedVersions(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.SQL().QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}

func TestMigrateAppliesOnceInOrder(t *testing.T) {
	db := openDB(t, freshDSN(t, "persist_migrate"))
	want := allVersions(t)
	if len(want) == 0 || want[0] != "0001_init" {
		t.Fatalf("embedded versions = %v, want 0001_init first", want)
	}

	applied, err := db.Migrate(t.Context())
	if err != nil {
		t.Fatalf("first Migrate: %v", err)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("first Migrate applied %v, want %v", applied, want)
	}
	applied, err = db.Migrate(t.Context())
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", applied)
	}
	if got := recordedVersions(t, db); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	dsn := freshDSN(t, "persist_migrate_concurrent")
	const processes = 4
	dbs := make([]*DB, processes)
	for i := range dbs {
		dbs[i] = openDB(t, dsn)
	}

	applied := make([][]string, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { applied[i], errs[i] = db.Migrate(t.Context()) })
	}
	wg.Wait()

	var all []string
	for i := range dbs {
		if errs[i] != nil {
			t.Errorf("Migrate %d: %v", i, errs[i])
		}
		all = append(all, applied[i]...)
	}
	slices.Sort(all)
	want := allVersions(t)
	if !slices.Equal(all, want) {
		t.Errorf("versions applied by all processes together = %v, want each of %v once", all, want)
	}
	if got := recordedVersions(t, dbs[0]); !slices.Equal(got, want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

// The migration lock is a lease: a holder that died (its lease ended) does not keep the next
// process from migrating, and a live holder does until it releases the lock.
func TestMigrationLockLease(t *testing.T) {
	db := openDB(t, freshDSN(t, "persist_migrate_lease"))
	if _, err := db.Migrate(t.Context()); err != nil { // creates schema_migrations_lock
		t.Fatalf("Migrate: %v", err)
	}
	hold := func(t *testing.T, expiresIn string) {
		t.Helper()
		_, err := db.SQL().ExecContext(t.Context(), `INSERT INTO schema_migrations_lock (id, owner, expires_at)
			VALUES (1, 'another-process', UTC_TIMESTAMP(6) + INTERVAL `+expiresIn+`)`)
		if err != nil {
			t.Fatal(err)
		}
	}
	lockRows := func(t *testing.T) int {
		t.Helper()
		var n int
		if err := db.SQL().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM schema_migrations_lock").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("a dead holder's ended lease is taken over", func(t *testing.T) {
		hold(t, "-1 SECOND")
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v, want the ended lease taken over", err)
		}
		if n := lockRows(t); n != 0 {
			t.Errorf("%d lock rows after Migrate, want it released", n)
		}
	})
	t.Run("a live holder is waited for", func(t *testing.T) {
		hold(t, "1 HOUR")
		done := make(chan error, 1)
		go func() { _, err := db.Migrate(t.Context()); done <- err }()
		select {
		case err := <-done:
			t.Fatalf("Migrate returned %v while another process held the lock, want it to wait", err)
		case <-time.After(500 * time.Millisecond): // a bound on how long it must be seen waiting
		}
		if _, err := db.SQL().ExecContext(t.Context(), "DELETE FROM schema_migrations_lock"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Migrate after the release: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Migrate still waits 20 s after the holder released the lock")
		}
	})
}

func TestSchemaConventions(t *testing.T) {
	t.Run("every date is DATETIME(6)", func(t *testing.T) {
		rows, err := testDB.SQL().QueryContext(t.Context(), `SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE
			FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('datetime', 'timestamp', 'date')
			AND COLUMN_TYPE <> 'datetime(6)'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var table, column, typ string
			if err := rows.Scan(&table, &column, &typ); err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s.%s is %s, want datetime(6)", table, column, typ)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every text column compares byte for byte", func(t *testing.T) { checkNoPadColumns(t, testDB) })
	t.Run("every table is InnoDB utf8mb4_nopad_bin", func(t *testing.T) {
		rows, err := testDB.SQL().QueryContext(t.Context(), `SELECT TABLE_NAME, ENGINE, TABLE_COLLATION
			FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var tables []string
		for rows.Next() {
			var table, engine, collation string
			if err := rows.Scan(&table, &engine, &collation); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, table)
			if engine != "InnoDB" || collation != "utf8mb4_nopad_bin" {
				t.Errorf("%s: engine %s, collation %s; want InnoDB, utf8mb4_nopad_bin", table, engine, collation)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{"schema_migrations", "schema_migrations_lock", "sso_attr", "sso_change", "sso_change_pending", "sso_feed_expired", "sso_feed_page", "sso_feed_state", "sso_feed_user", "sso_session", "sso_user"}
		if !slices.Equal(tables, want) {
			t.Errorf("tables = %v, want %v", tables, want)
		}
	})
}

func TestLoadMigrations(t *testing.T) {
	file := func(text string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(text)} }
	tests := []struct {
		name     string
		fsys     fstest.MapFS
		want     []string // versions; nil when an error is wanted
		errorHas string
	}{
		{
			name: "ordered by number",
			fsys: fstest.MapFS{
				"migrations/0002_b.sql": file("SELECT 2;"),
				"migrations/0001_a.sql": file("SELECT 1;"),
				"migrations/0010_c.sql": file("SELECT 10;"),
			},
			want: []string{"0001_a", "0002_b", "0010_c"},
		},
		{
			name:     "malformed name",
			fsys:     fstest.MapFS{"migrations/1_init.sql": file("SELECT 1;")},
			errorHas: "NNNN_what.sql",
		},
		{
			name: "number used twice",
			fsys: fstest.MapFS{
				"migrations/0001_a.sql": file("SELECT 1;"),
				"migrations/0001_b.sql": file("SELECT 1;"),
			},
			errorHas: "same number",
		},
		{
			name:     "no statement",
			fsys:     fstest.MapFS{"migrations/0001_a.sql": file("-- nothing\n")},
			errorHas: "no statement",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			migrations, err := loadMigrations(tt.fsys)
			if tt.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errorHas) {
					t.Fatalf("error = %v, want one containing %q", err, tt.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range migrations {
				got = append(got, m.version)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("versions = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"one", "SELECT 1;\n", []string{"SELECT 1"}},
		{
			"comments and blank lines dropped",
			"-- header; with a semicolon\n\nCREATE TABLE t (\n    -- a column\n    a INT\n);\n\nSELECT 2;",
			[]string{"CREATE TABLE t (\n    a INT\n)", "SELECT 2"},
		},
		{"last without semicolon", "SELECT 1;\nSELECT 2\n", []string{"SELECT 1", "SELECT 2"}},
		{"only comments", "-- nothing\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("splitStatements = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMigrationHashesSignUpTokens checks 0003: a raw sign-up token written before it is replaced
// by its SHA-256, and running it again changes nothing.
func TestMigrationHashesSignUpTokens(t *testing.T) {
	stmt, err := migrationFiles.ReadFile("migrations/0003_hash_sign_up_tokens.sql")
	if err != nil {
		t.Fatal(err)
	}
	u := newUser()
	// Unique per run: an earlier run's user holds the hash of its own token.
	token := ("raw-" + u.UserID + strings.Repeat("_", 32))[:32]
	u.SignUpConfirmToken = token
	createUser(t, testDB, u)
	for run := 1; run <= 2; run++ {
		if _, err := testDB.SQL().ExecContext(t.Context(), string(stmt)); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		got, err := testDB.UserBySignUpToken(t.Context(), attrcache.HashSignUpToken(token))
		if err != nil || got.UserID != u.UserID {
			t.Fatalf("run %d: look-up by the hash = %v, %v; want user %s", run, got, err, u.UserID)
		}
	}
}
