package cache

import (
	"context"
	"errors"
	"time"

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
	stored, err := r.ResealAttrs(ctx, reseals)
	if err != nil {
		return nil, err
	}
	byScope := make(map[attrcache.AttrScope][]*attrcache.Attr)
	for _, attr := range stored {
		byScope[attr.Scope] = append(byScope[attr.Scope], attr)
	}
	for scope, attrs := range byScope {
		a.store(ctx, scope, attrs)
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
	stored, err := r.ResealUsers(ctx, reseals)
	if err != nil {
		return nil, err
	}
	for _, u := range stored {
		s.storePrincipal(ctx, u.Principal())
	}
	return stored, nil
}
