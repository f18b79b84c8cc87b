package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
	_ "time/tzdata" // the zone of the DSN in TestOpenOverridesTimeSettingsOfTheDSN

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
)

func TestEnsureDatabase(t *testing.T) {
	name := testenv.DatabaseName("persist_ensure")
	drop := func() {
		if _, err := testDB.SQL().ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Fatalf("dropping %s: %v", name, err)
		}
	}
	drop()
	t.Cleanup(drop)

	cfg, err := mysql.ParseDSN(testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = name
	dsn := cfg.FormatDSN()

	for i := range 2 { // the second call finds the database and leaves it alone
		if err := EnsureDatabase(t.Context(), dsn); err != nil {
			t.Fatalf("EnsureDatabase, call %d: %v", i+1, err)
		}
	}
	var charset, collation string
	err = testDB.SQL().QueryRowContext(t.Context(),
		"SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
		name).Scan(&charset, &collation)
	if err != nil {
		t.Fatalf("the database was not created: %v", err)
	}
	if charset != "utf8mb4" || collation != "utf8mb4_nopad_bin" {
		t.Errorf("charset, collation = %s, %s; want utf8mb4, utf8mb4_nopad_bin", charset, collation)
	}
	db := openDB(t, dsn)
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping of the new database: %v", err)
	}
}

func TestDSNWithoutDatabase(t *testing.T) {
	dsn := testenv.MySQLServerDSN()
	if err := EnsureDatabase(t.Context(), dsn); err == nil {
		t.Error("EnsureDatabase: got nil error, want one for a DSN without a database")
	}
	if db, err := Open(t.Context(), dsn, testKeys); err == nil {
		db.Close()
		t.Error("Open: got nil error, want one for a DSN without a database")
	}
}

func TestOpenWithoutKeyring(t *testing.T) {
	if db, err := Open(t.Context(), "root@tcp(127.0.0.1:3306)/x", nil); err == nil {
		db.Close()
		t.Error("Open: got nil error, want one without a keyring")
	}
}

func TestUnavailable(t *testing.T) {
	unknownDatabase, err := mysql.ParseDSN(testenv.MySQLServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	unknownDatabase.DBName = testenv.DatabaseName("persist_missing")

	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Open on a closed port", func(ctx context.Context) error {
			_, err := Open(ctx, "root@tcp(127.0.0.1:1)/attrcache", testKeys)
			return err
		}},
		{"EnsureDatabase on a closed port", func(ctx context.Context) error {
			return EnsureDatabase(ctx, "root@tcp(127.0.0.1:1)/attrcache")
		}},
		{"Open of a missing database", func(ctx context.Context) error {
			_, err := Open(ctx, unknownDatabase.FormatDSN(), testKeys)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			if err == nil {
				t.Fatal("got nil error, want an unavailable one")
			}
			if got := attrcache.AsError(err).Kind; got != attrcache.KindUnavailable {
				t.Errorf("kind = %v, want %v (error: %v)", got, attrcache.KindUnavailable, err)
			}
		})
	}
}

func TestMapError(t *testing.T) {
	other := errors.New("something else")
	tests := []struct {
		name        string
		in          error
		want        error // matched with errors.Is; nil when wantKind decides
		unavailable bool
	}{
		{"no rows", fmt.Errorf("scan: %w", sql.ErrNoRows), attrcache.ErrNotFound, false},
		{"duplicate key", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'secret' for key 'x'"}, attrcache.ErrConflict, false},
		{"missing parent row", &mysql.MySQLError{Number: 1452}, attrcache.ErrNotFound, false},
		{"bad connection", driver.ErrBadConn, nil, true},
		{"invalid connection", mysql.ErrInvalidConn, nil, true},
		{"connection done", sql.ErrConnDone, nil, true},
		{"deadline", context.DeadlineExceeded, nil, true},
		{"network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, nil, true},
		{"access denied", &mysql.MySQLError{Number: 1045}, nil, true},
		{"too many connections", &mysql.MySQLError{Number: 1040}, nil, true},
		{"other server error", &mysql.MySQLError{Number: 1064}, &mysql.MySQLError{Number: 1064}, false},
		{"other error", other, other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.in)
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("mapError(%v) = %v, want %v", tt.in, got, tt.want)
			}
			var domainErr *attrcache.Error
			isUnavailable := errors.As(got, &domainErr) && domainErr.Kind == attrcache.KindUnavailable
			if isUnavailable != tt.unavailable {
				t.Errorf("mapError(%v) = %v: unavailable = %v, want %v", tt.in, got, isUnavailable, tt.unavailable)
			}
		})
	}
	if got := mapError(nil); got != nil {
		t.Errorf("mapError(nil) = %v, want nil", got)
	}
	conflict := mapError(&mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'secret' for key 'x'"})
	if got := conflict.Error(); got != attrcache.ErrConflict.Error() {
		t.Errorf("conflict message = %q, want %q (the duplicate value must not leak)", got, attrcache.ErrConflict.Error())
	}
}

func TestOpenOverridesTimeSettingsOfTheDSN(t *testing.T) {
	cfg, err := mysql.ParseDSN(freshDSN(t, "persist_dsn"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = false
	if cfg.Loc, err = time.LoadLocation("Asia/Tokyo"); err != nil {
		t.Fatal(err)
	}
	db := openDB(t, cfg.FormatDSN())
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	u := newUser()
	want := u.PasswordExpiry
	createUser(t, db, u)
	got, err := db.UserByID(t.Context(), u.UserID)
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	if got.PasswordExpiry != want {
		t.Errorf("PasswordExpiry = %v, want %v", got.PasswordExpiry, want)
	}
	var stored string
	err = db.SQL().QueryRowContext(t.Context(),
		"SELECT DATE_FORMAT(password_expiry, '%Y-%m-%dT%H:%i:%s.%f') FROM sso_user WHERE user_id = ?", u.UserID).Scan(&stored)
	if err != nil {
		t.Fatal(err)
	}
	if wantStored := want.Format("2006-01-02T15:04:05.000000"); stored != wantStored {
		t.Errorf("stored password_expiry = %s, want %s (UTC)", stored, wantStored)
	}
}
