package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// serve runs `attrcache serve [--dev]`: it sets the Go runtime's memory limit (memory.limit,
// until it returns), migrates, then answers HTTP until ctx is cancelled, and then shuts down
// gracefully: /readyz answers 503 at once while requests are still accepted and served for
// http.drain_delay, then it stops accepting connections, lets the requests in flight finish
// within http.shutdown_timeout, and only then closes the data stores (the cache, MySQL, Redis).
// With debug.pprof_addr set, it also serves the runtime profiles there, from before the
// migrations until the very end. It returns nil when every request in flight finished in time.
func (c *cli) serve(ctx context.Context, args []string) error {
	fs := newFlagSet("serve")
	dev := fs.Bool("dev", false, "generate a throwaway secret key when none is set")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(c.getenv)
	if err != nil {
		return err
	}
	logOut := newBufferedLog(c.stderr)
	defer logOut.Close()
	logger := newLogger(cfg, logOut)
	if cfg.Memory.Limit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(cfg.Memory.Limit))
	}
	keys, err := c.serveKeyring(*dev)
	if err != nil {
		return err
	}
	logger.Info("starting", "version", versionString(), "mysql", redactDSN(cfg.MySQL.DSN),
		"redis", redactURL(cfg.Redis.URL), "redis_addrs", cfg.Redis.Addrs, "redis_master", cfg.Redis.Master)
	stopPprof, err := startPprof(cfg.Debug.PprofAddr, logger)
	if err != nil {
		return err
	}
	defer stopPprof()

	registry := prometheus.NewRegistry()
	buildVer, buildRev := buildVersion()
	metrics.RegisterRuntime(registry, buildVer, buildRev)
	m := metrics.New(registry)

	audit, closeAudit, err := openAuditLog(cfg.Audit, logOut)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeAudit(); err != nil {
			logger.Error("closing the audit sink", "err", err)
		}
	}()
	var auditor sso.Auditor // audit.sink none: nothing is audited
	if audit != nil {
		auditor = audit
		registry.MustRegister(metrics.NewAuditCollector(func() metrics.AuditStats {
			return metrics.AuditStats{Written: audit.Written(), Dropped: audit.Dropped()}
		}))
	}

	b, err := openBackends(ctx, cfg, keys, logger, m, auditor)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.close(); err != nil {
			logger.Error("closing backends", "err", err)
		}
	}()

	// After a Redis failover, the relay replays the recent change log into the new masters.
	b.cache.WatchFailovers(cache.FailoverOptions{
		CheckInterval: cfg.Cache.FailoverCheckInterval,
		ReplayWindow:  cfg.Cache.FailoverReplayWindow,
		Replayer:      b.relay,
	})

	stopPurger := startPurger(ctx, b.db, cfg.Purge, logger, m)
	defer stopPurger()
	// Applies to Redis the committed changes whose writers did not (changes.* settings).
	stopRelay := b.relay.Start(ctx)
	defer stopRelay()
	if cfg.Changes.Feed {
		stopFeed := startFeedSequencer(ctx, b.db, cfg.Changes, logger)
		defer stopFeed()
	}
	checkSealedKeys(ctx, b.db, keys, logger)
	stopSealedCounter := startSealedCounter(ctx, b.db, keys, logger, m)
	defer stopSealedCounter()

	trustedProxies, err := cfg.trustedProxies() // checked by loadConfig
	if err != nil {
		return err
	}
	registry.MustRegister(metrics.NewMySQLCollector(b.db.SQL().Stats), metrics.NewRedisPoolCollector(b.redis.PoolStats))
	var drain drainState
	handler := httpapi.NewServer(b.api, httpapi.Options{
		Logger:         logger,
		Metrics:        m,
		Ready:          drain.ready(b.ready),
		MetricsHandler: promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}),
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes,

		MaxInflightBodyBytes: cfg.Memory.MaxInflightBodyBytes,
		MaxAttrValueBytes:    cfg.Attributes.MaxValueBytes,
		TrustedProxies:       trustedProxies,
		StreamsEnd:           ctx.Done(), // shutdown begins: event streams end, their clients resume elsewhere
	})
	if testHookWrapHandler != nil {
		handler = testHookWrapHandler(handler)
	}
	return listenAndServe(ctx, cfg.HTTP, handler, &drain, logger)
}

// errDraining is what /readyz reports once the server has begun to shut down.
var errDraining = errors.New("shutting down: draining connections")

// drainState says whether the server has begun to shut down. The zero value is not draining.
type drainState struct{ draining atomic.Bool }

// ready returns the readiness check that fails with errDraining once drain has begun, and is
// backends otherwise.
func (d *drainState) ready(backends func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if d.draining.Load() {
			return errDraining
		}
		return backends(ctx)
	}
}

// begin marks the server as draining.
func (d *drainState) begin() { d.draining.Store(true) }

// testHookWrapHandler, set by tests only, wraps the HTTP handler that serve builds, so that a
// test can watch or hold requests as the server receives them.
var testHookWrapHandler func(http.Handler) http.Handler

// startFeedSequencer numbers the change log's new events and the expiries for the change feed in
// the background (persist.RunFeedSequencer), and purges what is older than changes.retention;
// the returned stop waits for it to finish. Every instance runs one; they take turns. Failures
// are logged at most every 10 s.
func startFeedSequencer(ctx context.Context, db *persist.DB, cfg changesConfig, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var lastLogged time.Time
		db.RunFeedSequencer(ctx, cfg.FeedInterval, cfg.Retention, func(err error) {
			if time.Since(lastLogged) >= 10*time.Second { // a database outage fails every run
				lastLogged = time.Now()
				logger.Warn("sequencing the change feed", "err", err)
			}
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

// startPurger deletes expired attributes and ended sessions in the background, now and then
// every purge.interval, logging what it deleted and reporting it, and the number of sessions
// still live after it, to m. The returned stop waits for it to finish.
func startPurger(ctx context.Context, db *persist.DB, cfg purgeConfig, logger *slog.Logger, m *metrics.Metrics) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.RunPurger(ctx, cfg.Interval, cfg.Batch, func(attrs, sessions int, err error) {
			m.ObservePurge(attrs, sessions)
			if err != nil {
				logger.Warn("purging expired rows", "err", err, "attrs", attrs, "sessions", sessions)
			} else if attrs+sessions > 0 {
				logger.Info("purged expired rows", "attrs", attrs, "sessions", sessions)
			}
			countLiveSessions(ctx, db, logger, m)
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

// countLiveSessions reports to m how many sessions have not expired now. A failure is logged,
// unless ctx has ended, and leaves the last count in place.
func countLiveSessions(ctx context.Context, db *persist.DB, logger *slog.Logger, m *metrics.Metrics) {
	live, err := db.CountLiveSessions(ctx, attrcache.Now())
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("counting live sessions", "err", err)
		}
		return
	}
	m.SetActiveSessions(live)
}

// serveKeyring returns the configured secret keys; with dev and none configured, a fresh key
// that it prints, with a warning, so that the same data can be read again by passing it back.
func (c *cli) serveKeyring(dev bool) (*attrcache.Keyring, error) {
	keys, err := secretKeyring(c.getenv)
	if !dev || !errors.Is(err, errNoSecretKey) {
		return keys, err
	}
	key := attrcache.GenerateKey()
	fmt.Fprintf(c.stderr, "WARNING: --dev and no secret key set: using a throwaway key. Data encrypted with it\n"+
		"cannot be read after a restart unless it is passed back: %s=%s\n", envSecretKey, key)
	return attrcache.ParseSecretKey(key)
}

// listenAndServe serves handler on the configured address until ctx is cancelled. Then it
// shuts down in lame-duck fashion: it marks drain as begun (so /readyz answers 503), keeps
// accepting and serving for the drain delay, with keep-alives off so that clients open their
// next connections elsewhere, then stops accepting connections and waits, at most the shutdown
// timeout, for requests in flight. When they do not finish in time, it closes their connections
// and returns an error.
func listenAndServe(ctx context.Context, cfg httpConfig, handler http.Handler, drain *drainState, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	drain.begin()
	if cfg.DrainDelay > 0 {
		logger.Info("draining: not ready, still serving", "delay", cfg.DrainDelay)
		srv.SetKeepAlivesEnabled(false)
		delay := time.NewTimer(cfg.DrainDelay)
		select {
		case err := <-served:
			delay.Stop()
			return fmt.Errorf("serving HTTP: %w", err)
		case <-delay.C:
		}
	}
	logger.Info("shutting down", "deadline", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return errors.Join(fmt.Errorf("graceful shutdown: %w", err), srv.Close())
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// redactURL returns u with its password, if any, masked, for logs. A URL that does not parse
// is not shown at all.
func redactURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return parsed.Redacted()
}
