// Package testenv gives each test package its own fresh MariaDB database and Redis key prefix on
// the real servers, so that packages run in parallel without seeing each other's data. Variables:
// ATTRCACHE_TEST_MYSQL (a DSN without a database, default root@tcp(127.0.0.1:3306)/),
// ATTRCACHE_TEST_REDIS_URL (default redis://127.0.0.1:6379/0), ATTRCACHE_TEST_NAMESPACE (a-z, 0-9,
// _, at most 16: in every database name and prefix, so two checkouts can test at once),
// ATTRCACHE_TEST_REDIS_ADDRS (a Redis Cluster's nodes, used instead of the URL) and
// ATTRCACHE_TEST_GALERA_ADDRS (a Galera cluster's nodes, for the tests that spread instances).
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
)

// MySQLServerDSN is the DSN of the test MariaDB server, without a database.
func MySQLServerDSN() string {
	if v := os.Getenv("ATTRCACHE_TEST_MYSQL"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// RedisURL is the URL of the test Redis server.
func RedisURL() string {
	if v := os.Getenv("ATTRCACHE_TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/0"
}

// RedisClusterAddrs returns the node addresses of the test Redis Cluster, or nil when the tests
// use the single server of RedisURL.
func RedisClusterAddrs() []string { return addrList(os.Getenv("ATTRCACHE_TEST_REDIS_ADDRS")) }

// GaleraAddrs returns the node addresses of the test Galera cluster, or nil when the tests use
// the single server of MySQLServerDSN.
func GaleraAddrs() []string { return addrList(os.Getenv("ATTRCACHE_TEST_GALERA_ADDRS")) }

// addrList splits a comma list of addresses, dropping empty entries.
func addrList(list string) []string {
	var addrs []string
	for addr := range strings.SplitSeq(list, ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// RedisClient returns a client of the test Redis: a *redis.ClusterClient of the nodes of
// RedisClusterAddrs when there are any, else a *redis.Client of RedisURL. The caller closes it.
func RedisClient() (redis.UniversalClient, error) {
	if addrs := RedisClusterAddrs(); len(addrs) > 0 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}), nil
	}
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		return nil, fmt.Errorf("testenv: ATTRCACHE_TEST_REDIS_URL: %w", err)
	}
	return redis.NewClient(opts), nil
}

var (
	nameRe      = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)
	namespaceRe = regexp.MustCompile(`^[a-z0-9_]{0,16}$`)
)

// namespace returns ATTRCACHE_TEST_NAMESPACE followed by "_", or "" when it is unset. A value
// outside namespaceRe panics: tests cannot go on without knowing where their data goes.
func namespace() string {
	ns := os.Getenv("ATTRCACHE_TEST_NAMESPACE")
	if !namespaceRe.MatchString(ns) {
		panic(fmt.Sprintf("testenv: ATTRCACHE_TEST_NAMESPACE %q: use at most 16 of a-z, 0-9 and _", ns))
	}
	if ns == "" {
		return ""
	}
	return ns + "_"
}

// DatabaseName returns the name of the test database of name: attrcache_test_<namespace_><name>.
func DatabaseName(name string) string { return "attrcache_test_" + namespace() + name }

// FreshDatabase drops and re-creates the database DatabaseName(name) and returns a DSN for
// it (parseTime on). name is the test package's own, e.g. "persist".
func FreshDatabase(name string) (string, error) {
	if !nameRe.MatchString(name) {
		return "", fmt.Errorf("testenv: database name %q: use a-z, 0-9 and _", name)
	}
	cfg, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		return "", fmt.Errorf("testenv: ATTRCACHE_TEST_MYSQL: %w", err)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbName := DatabaseName(name)
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + dbName,
		"CREATE DATABASE " + dbName + " CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("testenv: %s: %w (is MariaDB running? `make services` starts it)", stmt, err)
		}
	}
	cfg.DBName = dbName
	cfg.ParseTime = true
	return cfg.FormatDSN(), nil
}

// DSNAt returns dsn with its server's address replaced by addr (another node of a cluster).
func DSNAt(dsn, addr string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	cfg.Addr = addr
	return cfg.FormatDSN(), nil
}

// RedisPrefix returns the key prefix of the test package name, after deleting every key that
// an earlier run left under it (on every master of a cluster).
func RedisPrefix(name string) (string, error) {
	prefix := "attrcache_test:" + namespace() + name + ":"
	rdb, err := RedisClient()
	if err != nil {
		return "", err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := DeleteKeys(ctx, rdb, prefix); err != nil {
		return "", fmt.Errorf("testenv: clearing %s*: %w (is Redis running? `make services` starts it, `make cluster` the cluster)", prefix, err)
	}
	return prefix, nil
}

// DeleteKeys deletes every key that starts with prefix, on every master of a cluster too.
func DeleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	pattern := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(prefix) + "*"
	clear := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, clear)
	}
	if c, ok := rdb.(*redis.Client); ok {
		return clear(ctx, c)
	}
	return fmt.Errorf("testenv: unsupported Redis client %T", rdb)
}

// WithFrozenDBClock returns dsn with its session's timestamp set to at on every connection: the
// database clock of those connections (NOW(), UTC_TIMESTAMP(), and the version clock of the
// store's SQL) reads at, to the microsecond, and stands still there. A test puts one store's
// clock behind or ahead of another's on the same database, as after a failover to a node whose
// clock is off, or a clock step.
func WithFrozenDBClock(dsn string, at time.Time) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("testenv: freezing the clock of a DSN: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = make(map[string]string)
	}
	cfg.Params["timestamp"] = fmt.Sprintf("%d.%06d", at.Unix(), at.Nanosecond()/1000)
	return cfg.FormatDSN(), nil
}
