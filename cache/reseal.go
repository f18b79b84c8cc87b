package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

// Key rotation and export pass through the cache as writes and reads do: a re-seal caches the
// rows it rewrote exactly as every write does (store, storePrincipal), so Redis never keeps a
// copy older than MySQL's; an export reads the inner store, the truth, row by row.

var errNotSupported = errors.New("cache: the inner store does not support this")

// ResealAttrs re-seals values in the inner store, which must be an attrcache.AttrResealer, and
// caches the attributes it rewrote as stored.
func (a *AttrStore) ResealAttrs(ctx context.Context, reseals []attrcache.AttrReseal) ([]*attrcache.Attr, error) {
	r, ok := a.inner.(attrcache.AttrResealer)
	if !ok {
		return nil, errNotSupported
	}
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	stored, err := r.ResealAttrs(ctx, reseals)
	if err != nil {
		return nil, err
	}
	byScope := make(map[attrcache.AttrScope][]*attrcache.Attr)
	for _, attr := range stored {
		byScope[attr.Scope] = append(byScope[attr.Scope], attr)
	}
	applied := true
	for scope, attrs := range byScope {
		applied = a.store(ctx, scope, attrs) && applied
	}
	if applied {
		receipt.Applied()
	}
	return stored, nil
}

// AttrKeyIDsOfUser asks the inner store, which must be an attrcache.AttrExporter.
func (a *AttrStore) AttrKeyIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	e, ok := a.inner.(attrcache.AttrExporter)
	if !ok {
		return nil, errNotSupported
	}
	return e.AttrKeyIDsOfUser(ctx, userID)
}

// ScanUserAttrs scans the inner store, which must be an attrcache.AttrExporter.
func (a *AttrStore) ScanUserAttrs(ctx context.Context, userID string, now time.Time, fn func(*attrcache.Attr) error) error {
	e, ok := a.inner.(attrcache.AttrExporter)
	if !ok {
		return errNotSupported
	}
	return e.ScanUserAttrs(ctx, userID, now, fn)
}

// ResealUsers re-seals values in the inner user store, which must be an attrcache.UserResealer,
// and caches the principals of the users it rewrote, with their new versions.
func (s *Store) ResealUsers(ctx context.Context, reseals []attrcache.UserReseal) ([]*attrcache.User, error) {
	r, ok := s.users.(attrcache.UserResealer)
	if !ok {
		return nil, errNotSupported
	}
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	stored, err := r.ResealUsers(ctx, reseals)
	if err != nil {
		return nil, err
	}
	applied := true
	for _, u := range stored {
		applied = s.storePrincipal(ctx, u.Principal()) && applied
	}
	if applied {
		receipt.Applied()
	}
	return stored, nil
}

// deleteIfUnchanged deletes KEYS[1] only while it still holds ARGV[1].
var deleteIfUnchanged = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// dropScanCount is how many keys one SCAN step asks for.
const dropScanCount = 1000

// DropSealedCopies deletes from Redis every cached attribute whose value is sealed with a key id
// for which stale reports true, scanning the attribute keys of every master, and returns how many
// it deleted. A copy is deleted only while it is unchanged, and the next read fills it again from
// the inner store. After a rotation has re-sealed the store, it removes the copies a re-seal
// could not replace (its process killed between the commit and the cache update, Redis
// unreachable then), so that no copy outlives the key that opens it.
func (s *Store) DropSealedCopies(ctx context.Context, stale func(keyID string) bool) (int, error) {
	var dropped atomic.Int64
	drop := func(ctx context.Context, node *redis.Client) error {
		n, err := s.dropSealedCopiesOn(ctx, node, stale)
		dropped.Add(int64(n))
		return err
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, drop)
	case *redis.Client:
		err = drop(ctx, c)
	default:
		err = fmt.Errorf("cache: dropping sealed copies: a %T is not supported", s.rdb)
	}
	return int(dropped.Load()), err
}

// dropSealedCopiesOn is DropSealedCopies on one node.
func (s *Store) dropSealedCopiesOn(ctx context.Context, node *redis.Client, stale func(keyID string) bool) (int, error) {
	dropped := 0
	match := globEscape(s.keys.prefix) + "{*"
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, dropScanCount).Result()
		if err != nil {
			return dropped, fmt.Errorf("cache: scanning for sealed copies: %w", err)
		}
		keys = slices.DeleteFunc(keys, func(k string) bool {
			return !strings.Contains(k, "}"+userAttrInfix) && !strings.Contains(k, "}"+sessionAttrInfix)
		})
		if len(keys) > 0 {
			n, err := s.dropStaleOf(ctx, node, keys, stale)
			dropped += n
			if err != nil {
				return dropped, err
			}
		}
		if cursor = next; cursor == 0 {
			return dropped, nil
		}
	}
}

// dropStaleOf reads keys (attribute keys of node) and deletes those holding a value sealed with
// a stale key id, each while unchanged.
func (s *Store) dropStaleOf(ctx context.Context, node *redis.Client, keys []string, stale func(string) bool) (int, error) {
	pipe := node.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("cache: reading attribute copies: %w", err)
	}
	pipe = node.Pipeline()
	var dels []*redis.Cmd
	for i, get := range gets {
		raw, err := get.Result()
		if err != nil {
			continue // gone meanwhile
		}
		e, err := parseEntry(raw)
		if err != nil || e.state != entryLive {
			continue
		}
		attr, err := decodeAttr(attrcache.AttrScope{}, "", e)
		if err != nil || !attr.IsEncrypted {
			continue
		}
		var envelope string
		if json.Unmarshal([]byte(attr.Value), &envelope) != nil {
			continue
		}
		if id, ok := attrcache.EnvelopeKeyID(envelope); ok && stale(id) {
			dels = append(dels, deleteIfUnchanged.Eval(ctx, pipe, []string{keys[i]}, raw))
		}
	}
	if len(dels) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("cache: deleting attribute copies: %w", err)
	}
	n := 0
	for _, d := range dels {
		if v, _ := d.Int(); v > 0 {
			n++
		}
	}
	return n, nil
}

// globEscape escapes the characters a SCAN MATCH pattern gives a meaning to.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
