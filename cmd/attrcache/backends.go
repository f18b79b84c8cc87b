package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// backends are what every command that touches data works with: MySQL, Redis, the cache over
// them and the Go API over the cache.
type backends struct {
	db    *persist.DB
	redis redis.UniversalClient
	cache *cache.Store
	// relay applies the change log to Redis; serve runs it.
	relay *cache.Relay
	attrs *cache.AttrStore
	api   *sso.API
	// audit records the calls of api, and what a command does to users' data besides; nil: nothing.
	audit sso.Auditor
}

// openBackends creates the database if it is missing, applies pending migrations, connects to
// Redis and builds the Go API, whose cache and database report to m (nil: nowhere) and whose
// calls audit records (nil: none). Redis being down is logged, not an error: the cache works
// without it. The caller closes what it returns.
func openBackends(ctx context.Context, cfg config, keys *attrcache.Keyring, logger *slog.Logger, m *metrics.Metrics, audit sso.Auditor) (*backends, error) {
	db, err := openMigrated(ctx, cfg, keys, logger, persist.WithMetrics(m))
	if err != nil {
		return nil, err
	}
	redisOpts, err := cfg.redisOptions()
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	redis.SetLogger(redisLogger{logger}) // go-redis logs through one process-wide logger
	rdb := redis.NewUniversalClient(redisOpts)
	store := cache.New(rdb, cache.Options{
		Prefix:       cfg.Redis.Prefix,
		PrincipalTTL: cfg.Cache.PrincipalTTL,
		AbsentTTL:    cfg.Cache.AbsentTTL,
		AbsentMax:    cfg.Cache.AbsentMax,
		MaxTTL:       cfg.Cache.MaxTTL,
		Metrics:      m,
		Logger:       logger,
	}, db, db)
	b := &backends{db: db, redis: rdb, cache: store, audit: audit, relay: cache.NewRelay(store, db, cache.RelayOptions{
		Grace:     cfg.Changes.RelayGrace,
		Interval:  cfg.Changes.RelayInterval,
		Retention: cfg.Changes.Retention,
	})}
	if err := store.Ping(ctx); err != nil {
		logger.Warn("redis is unreachable; using MySQL alone until it answers", "err", err)
	}
	attrs := cache.NewAttrStore(store, db)
	b.attrs = attrs
	ssoCfg := cfg.ssoConfig()
	ssoCfg.Throttle.Counter = cache.NewFailureCounter(rdb, cfg.Redis.Prefix, logger) // shared by every instance
	ssoCfg.Audit = audit
	if cfg.Changes.Feed { // off, the feed answers 503
		ssoCfg.Feed, ssoCfg.FeedPollInterval = db, cfg.Changes.FeedInterval
	}
	if b.api, err = sso.New(ssoCfg, keys, store, store, attrs); err != nil {
		return nil, errors.Join(fmt.Errorf("sso: %w", err), b.close())
	}
	return b, nil
}

// openMigrated creates the database named in the DSN if it is missing, opens it with the pool
// sizes and group commit of the MySQL settings and with opts, and applies pending migrations,
// logging each one applied.
func openMigrated(ctx context.Context, cfg config, keys *attrcache.Keyring, logger *slog.Logger, opts ...persist.Option) (*persist.DB, error) {
	if err := persist.EnsureDatabase(ctx, cfg.MySQL.DSN); err != nil {
		return nil, fmt.Errorf("mysql: creating the database: %w", err)
	}
	db, err := persist.Open(ctx, cfg.MySQL.DSN, keys, append(cfg.persistOptions(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mysql: migrating: %w", err), db.Close())
	}
	for _, name := range applied {
		logger.Info("migration applied", "migration", name)
	}
	return db, nil
}

// ready reports whether MySQL and Redis both answer, naming each that does not.
func (b *backends) ready(ctx context.Context) error {
	var errs []error
	if err := b.db.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("mysql: %w", err))
	}
	if err := b.cache.Ping(ctx); err != nil {
		errs = append(errs, fmt.Errorf("redis: %w", err))
	}
	return errors.Join(errs...)
}

// close releases the cache, the database and the Redis client, in that order: closing the
// database may still commit pending writes, whose cache updates need Redis.
func (b *backends) close() error {
	return errors.Join(closeWith("cache", b.cache), closeWith("mysql", b.db), closeWith("redis", b.redis))
}

func closeWith(what string, c io.Closer) error {
	if err := c.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", what, err)
	}
	return nil
}

// newLogger returns the logger that log.format and log.level describe, writing to w.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redisLogger sends go-redis's own messages (failed dials, pool events) to the service's log
// instead of its default of standard error in a format of its own.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, args ...any) {
	l.logger.WarnContext(ctx, fmt.Sprintf(format, args...), "component", "redis")
}
