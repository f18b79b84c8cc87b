// Command rawmysql measures what MariaDB itself sustains for attribute upserts, with no service
// in between, as the yardstick of `make bench`: (a) one row per commit from many connections,
// and (b) sorted multi-row batches, both `INSERT … ON DUPLICATE KEY UPDATE` over rows shaped like
// attrcache's sso_attr and already present (so that, as in the service's benchmark, every upsert
// updates). It prints the rows and commits per second of each as JSON.
//
// Usage:
//
//	go run ./bench/rawmysql [--dsn 'root@tcp(127.0.0.1:3306)/'] [--database attrcache_rawbench]
//	    [--connections 64] [--duration 10s] [--batch 100] [--users 16] [--attrs 100] [--value-size 100]
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawmysql:", err)
		os.Exit(1)
	}
}

// settings are the command-line flags.
type settings struct {
	dsn, database         string
	connections, batch    int
	users, attrs, valueSz int
	duration              time.Duration
}

// result is what one mode measured.
type result struct {
	Commits          int64   `json:"commits"`
	Rows             int64   `json:"rows"`
	Errors           int64   `json:"errors"`
	Seconds          float64 `json:"seconds"`
	CommitsPerSecond float64 `json:"commits_per_second"`
	RowsPerSecond    float64 `json:"rows_per_second"`
}

// report is the JSON the command prints.
type report struct {
	Connections int    `json:"connections"`
	BatchRows   int    `json:"batch_rows"`
	ValueSize   int    `json:"value_size"`
	Keys        int    `json:"keys"`
	SingleRow   result `json:"single_row"`
	Batch       result `json:"batch"`
}

var databaseName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func run(ctx context.Context) error {
	var s settings
	flag.StringVar(&s.dsn, "dsn", "root@tcp(127.0.0.1:3306)/", "go-sql-driver DSN of the server (its database name is ignored)")
	flag.StringVar(&s.database, "database", "attrcache_rawbench", "database to create afresh, fill and drop at the end")
	flag.IntVar(&s.connections, "connections", 64, "concurrent connections")
	flag.DurationVar(&s.duration, "duration", 10*time.Second, "how long each mode runs")
	flag.IntVar(&s.batch, "batch", 100, "rows of each batch upsert")
	flag.IntVar(&s.users, "users", 16, "users whose rows are upserted")
	flag.IntVar(&s.attrs, "attrs", 100, "rows of each user")
	flag.IntVar(&s.valueSz, "value-size", 100, "characters of each value")
	flag.Parse()
	switch {
	case !databaseName.MatchString(s.database):
		return fmt.Errorf("database name %q: want letters, digits and underscores", s.database)
	case s.connections < 1 || s.users < 1 || s.duration <= 0:
		return errors.New("connections, users and duration must be positive")
	case s.batch < 1 || s.batch > s.attrs:
		return fmt.Errorf("batch %d: want from 1 to --attrs (%d)", s.batch, s.attrs)
	}

	db, err := openDatabase(ctx, s)
	if err != nil {
		return err
	}
	defer db.Close()
	b := &bench{db: db, s: s, value: strings.Repeat("v", s.valueSz)}
	if err := b.fill(ctx); err != nil {
		return err
	}

	rep := report{Connections: s.connections, BatchRows: s.batch, ValueSize: s.valueSz, Keys: s.users * s.attrs}
	if rep.SingleRow, err = b.measure(ctx, 1); err != nil {
		return err
	}
	if rep.Batch, err = b.measure(ctx, s.batch); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DROP DATABASE "+s.database); err != nil {
		return fmt.Errorf("dropping the database: %w", err)
	}
	return nil
}

// openDatabase creates the database afresh and returns a pool of s.connections connections to
// it, with interpolateParams=true (one round trip per statement, as attrcache configures).
func openDatabase(ctx context.Context, s settings) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(s.dsn)
	if err != nil {
		return nil, errors.New("--dsn is not a valid go-sql-driver DSN") // the DSN may hold a password
	}
	cfg.DBName, cfg.InterpolateParams = "", true
	server, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	defer server.Close()
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + s.database, "CREATE DATABASE " + s.database} {
		if _, err := server.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}

	cfg.DBName = s.database
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(s.connections)
	db.SetMaxIdleConns(s.connections)
	if _, err := db.ExecContext(ctx, createTable); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating the table: %w", err)
	}
	return db, nil
}

// createTable has the columns and key of attrcache's sso_attr, without the foreign key.
const createTable = `CREATE TABLE attr (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    ust_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    name VARBINARY(191) NOT NULL,
    value MEDIUMTEXT NOT NULL,
    is_encrypted BOOL NOT NULL DEFAULT FALSE,
    creation_time DATETIME(6) NOT NULL,
    last_modified DATETIME(6) NOT NULL,
    expiration_time DATETIME(6) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, ust_hash, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_nopad_bin`

const (
	upsertHead   = "INSERT INTO attr (user_id, ust_hash, name, value, creation_time, last_modified, expiration_time, version) VALUES "
	upsertRow    = "(?, '', ?, ?, ?, ?, '9999-12-31', 1)"
	upsertUpdate = " ON DUPLICATE KEY UPDATE value = VALUES(value), last_modified = VALUES(last_modified), version = version + 1"
)

// bench holds the database and the data of the runs.
type bench struct {
	db    *sql.DB
	s     settings
	value string
	users []string       // user ids
	names []string       // attribute names, in key order
	stmts map[int]string // upsert statements by number of rows
}

// fill writes every row once, so that the measured upserts all update.
func (b *bench) fill(ctx context.Context) error {
	for range b.s.users {
		b.users = append(b.users, "zusr"+strings.ToLower(rand.Text()))
	}
	for i := range b.s.attrs {
		b.names = append(b.names, fmt.Sprintf("attr-%05d", i))
	}
	b.stmts = map[int]string{1: upsertStatement(1), b.s.batch: upsertStatement(b.s.batch)}
	for i := range b.users {
		for first := 0; first+b.s.batch <= b.s.attrs; first += b.s.batch {
			if err := b.upsert(ctx, i, first, b.s.batch); err != nil {
				return fmt.Errorf("filling the table: %w", err)
			}
		}
		for first := b.s.attrs - b.s.attrs%b.s.batch; first < b.s.attrs; first++ {
			if err := b.upsert(ctx, i, first, 1); err != nil {
				return fmt.Errorf("filling the table: %w", err)
			}
		}
	}
	return nil
}

func upsertStatement(rows int) string {
	return upsertHead + strings.TrimSuffix(strings.Repeat(upsertRow+", ", rows), ", ") + upsertUpdate
}

// upsert writes n rows of user u in one autocommitted statement: the attributes from first on,
// wrapping around, in key order.
func (b *bench) upsert(ctx context.Context, u, first, n int) error {
	indexes := make([]int, n)
	for j := range n {
		indexes[j] = (first + j) % len(b.names)
	}
	slices.Sort(indexes)
	now := time.Now().UTC()
	args := make([]any, 0, 5*n)
	for _, i := range indexes {
		args = append(args, b.users[u], b.names[i], b.value, now, now)
	}
	_, err := b.db.ExecContext(ctx, b.stmts[n], args...)
	return err
}

// measure runs s.connections workers, each upserting rows rows per commit at random, back to
// back for s.duration.
func (b *bench) measure(ctx context.Context, rows int) (result, error) {
	runCtx, cancel := context.WithTimeout(ctx, b.s.duration)
	defer cancel()
	var commits, failures atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range b.s.connections {
		rng := mathrand.New(mathrand.NewPCG(uint64(start.UnixNano()), uint64(w)))
		wg.Go(func() {
			for runCtx.Err() == nil {
				err := b.upsert(runCtx, rng.IntN(len(b.users)), rng.IntN(b.s.attrs), rows)
				switch {
				case err == nil:
					commits.Add(1)
				case runCtx.Err() == nil:
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	seconds := time.Since(start).Seconds()
	r := result{Commits: commits.Load(), Errors: failures.Load(), Seconds: seconds}
	r.Rows = r.Commits * int64(rows)
	r.CommitsPerSecond = float64(r.Commits) / seconds
	r.RowsPerSecond = float64(r.Rows) / seconds
	if r.Commits == 0 {
		return r, fmt.Errorf("no upsert of %d rows succeeded (%d failed)", rows, r.Errors)
	}
	return r, nil
}
