package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// keys runs `attrcache keys status|rewrap`: key rotation (CONTRACT.md §10 "Key rotation").
func (c *cli) keys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("keys: no command given; run 'attrcache help' for the list")
	}
	switch name, rest := args[0], args[1:]; name {
	case "status":
		if err := parseNoArgs(newFlagSet("keys status"), rest); err != nil {
			return err
		}
		return c.withBackends(ctx, func(b *backends, keys *attrcache.Keyring) error {
			return c.keysStatus(ctx, b.db, keys)
		})
	case "rewrap":
		fs := newFlagSet("keys rewrap")
		batch := fs.Int("batch", 500, "values re-sealed per transaction")
		rate := fs.Float64("rate", 0, "most values re-sealed per second (0: as fast as the database allows)")
		if err := parseNoArgs(fs, rest); err != nil {
			return err
		}
		if *batch < 1 || *batch > attrcache.MaxAttrItems || *rate < 0 {
			return fmt.Errorf("keys rewrap: --batch must be 1 to %d and --rate at least 0", attrcache.MaxAttrItems)
		}
		return c.withBackends(ctx, func(b *backends, keys *attrcache.Keyring) error {
			rw := &rewrapper{db: b.db, attrs: b.attrs, users: b.cache, keys: keys, batch: *batch, rate: *rate,
				log: newLogger(mustConfig(c.getenv), c.stderr)}
			rw.progress = newProgress(c.stderr)
			start := time.Now()
			done, err := rw.run(ctx)
			rw.progress.finish()
			// It opens every user's sealed values to seal them again: one line for them all.
			recordCommand(ctx, b.audit, "admin.keys.rewrap", "", start, err)
			if err != nil {
				return fmt.Errorf("keys rewrap: %w (%d values re-sealed; run it again to go on)", err, done.resealed)
			}
			_, err = fmt.Fprintf(c.stdout, "re-sealed %d values with key %s (%d were rewritten meanwhile, %d could not be opened; "+
				"%d cached copies sealed with an older key deleted) in %s\n",
				done.resealed, keys.KeyIDs()[0], done.overtaken, done.unopenable, done.cacheDropped, done.elapsed.Round(time.Millisecond))
			return err
		})
	default:
		return fmt.Errorf("keys: unknown command %q; run 'attrcache help' for the list", name)
	}
}

// mustConfig returns the configuration, or the defaults when it cannot be read (withBackends
// has read it already).
func mustConfig(getenv func(string) string) config {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return defaultConfig()
	}
	return cfg
}

// withBackends opens the backends as serve does, with the audit log on the configured sink, and
// calls fn with them and the keyring; withAPI and the keys commands share it.
func (c *cli) withBackends(ctx context.Context, fn func(*backends, *attrcache.Keyring) error) error {
	cfg, err := loadConfig(c.getenv)
	if err != nil {
		return err
	}
	keys, err := secretKeyring(c.getenv)
	if err != nil {
		return err
	}
	audit, closeAudit, err := openCLIAudit(cfg.Audit, c.stderr)
	if err != nil {
		return err
	}
	var auditor sso.Auditor // audit.sink none: nothing is audited
	if audit != nil {
		auditor = audit
	}
	b, err := openBackends(ctx, cfg, keys, newLogger(cfg, c.stderr), nil, auditor)
	if err != nil {
		return errors.Join(err, closeAudit())
	}
	return errors.Join(fn(b, keys), b.close(), closeAudit())
}

// keysStatus prints, per key id, how many stored values of each kind it seals, newest key first,
// then key ids that are not configured. Values sealed with a key id that is not configured make
// it fail (exit code 1) after printing.
func (c *cli) keysStatus(ctx context.Context, db *persist.DB, keys *attrcache.Keyring) error {
	counts, err := db.SealedCounts(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]map[string]int64)
	for _, sc := range counts {
		if byID[sc.KeyID] == nil {
			byID[sc.KeyID] = make(map[string]int64)
		}
		byID[sc.KeyID][sc.Kind] += sc.Count
	}
	ids := keys.KeyIDs()
	var missing []string
	for id := range byID {
		if !keys.Has(id) {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-16s %12s %8s %10s\n", "key id", "state", "attr values", "e-mails", "TOTP keys")
	for i, id := range append(ids, missing...) {
		state := "older"
		switch {
		case i == 0:
			state = "newest (seals)"
		case !keys.Has(id):
			state = "NOT CONFIGURED"
		}
		n := byID[id]
		fmt.Fprintf(&b, "%-12s %-16s %12d %8d %10d\n", id, state, n[persist.SealedAttrValue], n[persist.SealedEmail], n[persist.SealedTOTPKey])
	}
	if _, err := io.WriteString(c.stdout, b.String()); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("keys status: values are sealed with key ids that are not configured: %s; "+
			"they cannot be read until ATTRCACHE_SECRET_KEYS has those keys again", strings.Join(missing, ", "))
	}
	return nil
}

// rewrapper re-seals with the newest key every stored value sealed with an older configured one.
// It works in batches of a transaction each, through the same stores serve writes through, so the
// cache takes each rewritten row's new version; a row rewritten by someone else meanwhile no longer
// holds the ciphertext the re-seal was made from and is left as it is. It keeps no state of its
// own: run again, it finds what is still sealed with older keys.
type rewrapper struct {
	db    *persist.DB
	attrs *cache.AttrStore
	users *cache.Store
	keys  *attrcache.Keyring
	batch int
	rate  float64 // most values per second; 0: no bound
	log   *slog.Logger

	progress *progress
	// afterBatch, when set, is called after each committed batch (tests).
	afterBatch func(resealed int64)
}

// rewrapDone is what a rewrap did.
type rewrapDone struct {
	resealed   int64 // rows rewritten
	overtaken  int64 // rows a concurrent write had changed first
	unopenable int64 // values no configured key opens (left as they are, logged)
	// cacheDropped counts the copies sealed with an older key deleted from Redis at the end.
	cacheDropped int64
	elapsed      time.Duration
}

// run re-seals everything sealed with an older configured key and returns what it did.
func (rw *rewrapper) run(ctx context.Context) (rewrapDone, error) {
	start := time.Now()
	var done rewrapDone
	newest := rw.keys.KeyIDs()[0]
	older := rw.keys.KeyIDs()[1:]
	counts, err := rw.db.SealedCounts(ctx)
	if err != nil {
		return done, err
	}
	var total int64
	for _, sc := range counts {
		if slices.Contains(older, sc.KeyID) {
			total += sc.Count
		}
	}
	for _, sc := range counts {
		if !rw.keys.Has(sc.KeyID) {
			rw.log.Error("rewrap: values are sealed with a key id that is not configured; they are left as they are",
				"key_id", sc.KeyID, "kind", sc.Kind, "count", sc.Count)
		}
	}
	rw.progress.start(total)
	processed := int64(0)
	step := func(n, resealed int) error {
		processed += int64(n)
		done.resealed += int64(resealed)
		done.overtaken += int64(n - resealed)
		rw.progress.update(processed)
		if rw.afterBatch != nil {
			rw.afterBatch(done.resealed)
		}
		return rw.pace(ctx, start, processed)
	}
	for _, id := range older {
		if err := rw.attrValues(ctx, id, &done, step); err != nil {
			return done, err
		}
		for _, field := range []string{attrcache.SealedEmail, attrcache.SealedTOTPKey} {
			if err := rw.userValues(ctx, field, id, &done, step); err != nil {
				return done, err
			}
		}
	}
	// Rows that clients rewrote with the newest key meanwhile left the older keys' ranges unvisited:
	// they are done too.
	rw.progress.update(max(processed, total))
	// A run killed between a commit and its cache update leaves copies sealed with an older key
	// in Redis; this run, or the next, deletes them once every row is re-sealed.
	dropped, err := rw.users.DropSealedCopies(ctx, func(id string) bool { return id != newest })
	done.cacheDropped = int64(dropped)
	if err != nil {
		return done, err
	}
	done.elapsed = time.Since(start)
	rw.log.Info("rewrap done", "newest_key_id", newest, "resealed", done.resealed, "overtaken", done.overtaken,
		"unopenable", done.unopenable, "cache_copies_dropped", done.cacheDropped, "seconds", done.elapsed.Seconds())
	return done, nil
}

// pace waits, when a rate is set, until processed values are due at that rate since start.
func (rw *rewrapper) pace(ctx context.Context, start time.Time, processed int64) error {
	if rw.rate <= 0 {
		return ctx.Err()
	}
	due := start.Add(time.Duration(float64(processed) / rw.rate * float64(time.Second)))
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// attrValues re-seals the attribute values sealed with keyID.
func (rw *rewrapper) attrValues(ctx context.Context, keyID string, done *rewrapDone, step func(n, resealed int) error) error {
	var after attrcache.AttrKey
	for {
		rows, err := rw.db.AttrsSealedWith(ctx, keyID, after, rw.batchSize())
		if err != nil || len(rows) == 0 {
			return err
		}
		reseals := make([]attrcache.AttrReseal, 0, len(rows))
		for _, row := range rows {
			key := attrcache.AttrKey{Scope: row.Scope, Name: row.Name}
			after = key
			resealed, err := rw.resealAttrValue(row)
			if err != nil {
				done.unopenable++
				rw.log.Error("rewrap: an attribute value cannot be opened; left as it is",
					"user_id", row.Scope.UserID, "session_scope", row.Scope.IsSession(), "key_id", keyID, "err", err)
				continue
			}
			reseals = append(reseals, attrcache.AttrReseal{Key: key, Sealed: row.Value, Resealed: resealed})
		}
		stored, err := rw.attrs.ResealAttrs(ctx, reseals)
		if err != nil {
			return err
		}
		if err := step(len(reseals), len(stored)); err != nil {
			return err
		}
	}
}

// resealAttrValue returns the stored value of row (the JSON string of an envelope) sealed again
// with the newest key, for the same scope and name.
func (rw *rewrapper) resealAttrValue(row *attrcache.Attr) (string, error) {
	var envelope string
	if err := json.Unmarshal([]byte(row.Value), &envelope); err != nil {
		return "", fmt.Errorf("the stored value is not a JSON string: %w", err)
	}
	ad := attrcache.AttrAD(row.Scope, row.Name)
	plain, err := rw.keys.Open(attrcache.PurposeAttr, envelope, ad)
	if err != nil {
		return "", err
	}
	resealed, err := json.Marshal(rw.keys.Seal(attrcache.PurposeAttr, plain, ad))
	return string(resealed), err
}

// userValues re-seals the values of a user field (e-mail or TOTP key) sealed with keyID.
func (rw *rewrapper) userValues(ctx context.Context, field, keyID string, done *rewrapDone, step func(n, resealed int) error) error {
	purpose := map[string]string{attrcache.SealedEmail: attrcache.PurposeEmail, attrcache.SealedTOTPKey: attrcache.PurposeTOTP}[field]
	after := ""
	for {
		rows, err := rw.db.UsersSealedWith(ctx, field, keyID, after, rw.batchSize())
		if err != nil || len(rows) == 0 {
			return err
		}
		reseals := make([]attrcache.UserReseal, 0, len(rows))
		for _, row := range rows {
			after = row.UserID
			plain, err := rw.keys.Open(purpose, row.Sealed, []byte(row.UserID))
			if err != nil {
				done.unopenable++
				rw.log.Error("rewrap: a user's value cannot be opened; left as it is", "user_id", row.UserID, "field", field, "key_id", keyID, "err", err)
				continue
			}
			resealed := rw.keys.Seal(purpose, plain, []byte(row.UserID))
			reseals = append(reseals, attrcache.UserReseal{UserID: row.UserID, Field: field, Sealed: row.Sealed, Resealed: resealed})
		}
		stored, err := rw.users.ResealUsers(ctx, reseals)
		if err != nil {
			return err
		}
		if err := step(len(reseals), len(stored)); err != nil {
			return err
		}
	}
}

// batchSize is the batch, no larger than a second's worth at the rate.
func (rw *rewrapper) batchSize() int {
	if rw.rate > 0 && float64(rw.batch) > rw.rate {
		return max(1, int(rw.rate))
	}
	return rw.batch
}
