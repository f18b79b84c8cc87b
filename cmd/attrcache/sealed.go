package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/persist"
)

// sealedCountInterval is how often serve counts the stored values per key id for
// attrcache_sealed_values: the count reads the key id indexes whole.
const sealedCountInterval = 5 * time.Minute

// checkSealedKeys logs, as an error naming each key id and count, the stored values sealed with
// a key id the keyring does not have: they cannot be read until the key is configured again. It
// costs a loose scan of the key id indexes (persist.UnconfiguredSealedCounts); a failure to
// count is logged as a warning and does not stop the start.
func checkSealedKeys(ctx context.Context, db *persist.DB, keys *attrcache.Keyring, logger *slog.Logger) {
	missing, err := db.UnconfiguredSealedCounts(ctx)
	if err != nil {
		logger.Warn("checking the key ids of sealed values", "err", err)
		return
	}
	for _, sc := range missing {
		logger.Error("stored values are sealed with a key id that is not configured; reading them fails until "+
			"ATTRCACHE_SECRET_KEYS has that key again", "key_id", sc.KeyID, "kind", sc.Kind, "count", sc.Count,
			"configured_key_ids", keys.KeyIDs())
	}
}

// startSealedCounter sets attrcache_sealed_values now and then every sealedCountInterval, in the
// background; stop ends it and waits for it.
func startSealedCounter(ctx context.Context, db *persist.DB, keys *attrcache.Keyring, logger *slog.Logger, m *metrics.Metrics) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(sealedCountInterval)
		defer ticker.Stop()
		for {
			countSealed(ctx, db, keys, logger, m)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// countSealed sets attrcache_sealed_values from persist.SealedCounts; a failure is logged,
// unless ctx has ended, and leaves the last counts in place.
func countSealed(ctx context.Context, db *persist.DB, keys *attrcache.Keyring, logger *slog.Logger, m *metrics.Metrics) {
	counts, err := db.SealedCounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("counting sealed values", "err", err)
		}
		return
	}
	gauge := make([]metrics.SealedCount, len(counts))
	for i, c := range counts {
		gauge[i] = metrics.SealedCount{KeyID: c.KeyID, Kind: c.Kind, Configured: keys.Has(c.KeyID), Count: c.Count}
	}
	m.SetSealedValues(gauge)
}
