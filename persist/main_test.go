package persist

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
)

// testDB is the migrated store of this package's own database, at testDSN; testKeys its
// keyring. testGroupDB is a second store of the same database with group commit on.
var (
	testDSN     string
	testDB      *DB
	testGroupDB *DB
	testKeys    *attrcache.Keyring
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "persist tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	var err error
	if testDSN, err = testenv.FreshDatabase("persist"); err != nil {
		return 0, err
	}
	testKeys, err = newKeyring()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testDB, err = Open(ctx, testDSN, testKeys)
	if err != nil {
		return 0, err
	}
	defer testDB.Close()
	if _, err := testDB.Migrate(ctx); err != nil {
		return 0, err
	}
	testGroupDB, err = Open(ctx, testDSN, testKeys, WithGroupCommit(GroupCommit{MaxRows: 64, MaxWait: time.Millisecond, Workers: 4}))
	if err != nil {
		return 0, err
	}
	defer testGroupDB.Close()
	return m.Run(), nil
}

func newKeyring() (*attrcache.Keyring, error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	testKeyB64 = base64.StdEncoding.EncodeToString(key)
	return attrcache.NewKeyring(key)
}

// testKeyB64 is the base64 of the key of testKeys, whose id is attrcache.DefaultKeyID.
var testKeyB64 string

// freshDSN returns the DSN of a new, empty database of its own, dropped when the test ends.
func freshDSN(t *testing.T, name string) string {
	t.Helper()
	dsn, err := testenv.FreshDatabase(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := testDB.SQL().ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+quoteIdentifier(cfg.DBName)); err != nil {
			t.Errorf("dropping %s: %v", cfg.DBName, err)
		}
	})
	return dsn
}

// openDB opens dsn with testKeys and closes it when the test ends.
func openDB(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn, testKeys)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// freshStore returns a migrated store over a new database of its own, for tests that need to
// see every row of a table.
func freshStore(t *testing.T, name string) *DB {
	t.Helper()
	db := openDB(t, freshDSN(t, name))
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func ptr[T any](v T) *T { return &v }

// newUser returns a valid user, not stored, with a username of its own.
func newUser() *attrcache.User {
	now := attrcache.Now()
	userID := attrcache.NewUserID()
	return &attrcache.User{
		UserID:                userID,
		Username:              "user-" + userID[len(attrcache.UserIDPrefix):],
		IsActive:              true,
		CreationCtx:           "null",
		ApprovalStatus:        attrcache.ApprovalApproved,
		ApprovalStatusModBy:   attrcache.ModByAuto,
		ApprovalStatusModTime: now,
		PasswordHash:          "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		PasswordIsSet:         true,
		PasswordLastSet:       now,
		PasswordExpiry:        now.Add(730 * 24 * time.Hour),
		SignUpStatus:          attrcache.SignUpFinal,
		SignUpTime:            now,
	}
}

// createUser stores u in db, failing the test if it cannot.
func createUser(t *testing.T, db *DB, u *attrcache.User) *attrcache.User {
	t.Helper()
	if err := db.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

// newSession returns a valid session of userID, not stored, expiring at expiresAt.
func newSession(userID string, expiresAt time.Time) *attrcache.Session {
	return &attrcache.Session{
		Hash:           attrcache.HashSessionID(attrcache.NewSessionID()),
		UserID:         userID,
		CreationTime:   attrcache.Now(),
		ExpirationTime: expiresAt,
		RemoteAddr:     "192.0.2.1",
		UserAgent:      "test-agent/1.0",
		AuthType:       "default",
		AuthPrincipal:  "principal",
		StateChanges: []attrcache.SessionStateChange{{
			RemoteAddr: "192.0.2.1", UserAgent: "test-agent/1.0",
			TimestampUTC: attrcache.FormatTime(attrcache.Now()), CtxSource: "login", Idx: 1,
		}},
	}
}

// createSession stores s in db, failing the test if it cannot.
func createSession(t *testing.T, db *DB, s *attrcache.Session) *attrcache.Session {
	t.Helper()
	if err := db.CreateSession(t.Context(), s); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

// insertAttr stores a never-expiring attribute row directly, bypassing the attribute store;
// hash is "" for a user attribute.
func insertAttr(t *testing.T, db *DB, userID string, hash attrcache.SessionHash, name string) {
	t.Helper()
	now := attrcache.Now()
	_, err := db.SQL().ExecContext(t.Context(), `INSERT INTO sso_attr
		(user_id, ust_hash, name, value, is_encrypted, creation_time, last_modified, expiration_time, version)
		VALUES (?, ?, ?, '"v"', FALSE, ?, ?, ?, 1)`, userID, hash, name, now, now, attrcache.NeverExpires)
	if err != nil {
		t.Fatalf("inserting attribute %s: %v", name, err)
	}
}

// attrNames returns the names of the attributes of userID in the scope hash.
func attrNames(t *testing.T, db *DB, userID string, hash attrcache.SessionHash) []string {
	t.Helper()
	rows, err := db.SQL().QueryContext(t.Context(),
		"SELECT name FROM sso_attr WHERE user_id = ? AND ust_hash = ? ORDER BY name", userID, hash)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// onGalera reports whether the test server is a node of a Galera cluster.
func onGalera(t *testing.T) bool {
	t.Helper()
	var on sql.NullBool
	if err := testDB.SQL().QueryRowContext(t.Context(), "SELECT @@wsrep_on").Scan(&on); err != nil {
		return false // a server without Galera's variables
	}
	return on.Bool
}
