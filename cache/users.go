package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// Users are read from the inner store: the whole row carries secrets (password hash, TOTP key)
// that Redis must not hold, and only the Principal, which session look-ups need, is cached.

// CreateUser creates u in the inner store and caches its principal.
func (s *Store) CreateUser(ctx context.Context, u *attrcache.User) error {
	if err := s.users.CreateUser(ctx, u); err != nil {
		return err
	}
	s.storePrincipal(ctx, u.Principal())
	return nil
}

// UserByID returns the user from the inner store.
func (s *Store) UserByID(ctx context.Context, userID string) (*attrcache.User, error) {
	return s.users.UserByID(ctx, userID)
}

// UserByUsername returns the user from the inner store.
func (s *Store) UserByUsername(ctx context.Context, username string) (*attrcache.User, error) {
	return s.users.UserByUsername(ctx, username)
}

// UserBySignUpToken returns the user from the inner store.
func (s *Store) UserBySignUpToken(ctx context.Context, token string) (*attrcache.User, error) {
	return s.users.UserBySignUpToken(ctx, token)
}

// SearchUsers searches the inner store.
func (s *Store) SearchUsers(ctx context.Context, q attrcache.UserQuery) ([]*attrcache.User, int, error) {
	return s.users.SearchUsers(ctx, q)
}

// UpdateUser updates the user in the inner store and caches the new principal, so that the next
// session look-up sees the change (a lock, say) at once.
func (s *Store) UpdateUser(ctx context.Context, userID string, upd attrcache.UserUpdate) (*attrcache.User, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	u, err := s.users.UpdateUser(ctx, userID, upd)
	if err != nil {
		return nil, err
	}
	if s.storePrincipal(ctx, u.Principal()) {
		receipt.Applied()
	}
	return u, nil
}

// DeleteUser deletes the user from the inner store and leaves a tombstone in place of the
// principal and of each attribute the inner store removed with them, which expire after
// tombstoneTTL: an attribute that never expires would otherwise stay in Redis for good, and the
// tombstones refuse any copy still on its way. The user's cached sessions stay in Redis until
// they expire but are no longer served: a session is served only with a live principal.
func (s *Store) DeleteUser(ctx context.Context, userID string) ([]attrcache.AttrKey, error) {
	ctx, receipt := attrcache.WithChangeReceipt(ctx)
	removed, err := s.users.DeleteUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	expireAt := time.Now().Add(tombstoneTTL)
	writes := make([]write, 0, 1+len(removed))
	writes = append(writes, tombstoneWrite(s.keys.principal(userID), expireAt))
	for _, key := range removed {
		writes = append(writes, tombstoneWrite(s.keys.attr(key), expireAt))
	}
	if s.update(ctx, writes...) {
		receipt.Applied()
	}
	return removed, nil
}

// storePrincipal caches p after a write committed it, and reports whether Redis has it (see
// update).
func (s *Store) storePrincipal(ctx context.Context, p *attrcache.Principal) bool {
	w, err := s.principalWrite(p)
	if err != nil {
		s.invalidate(ctx, err, s.keys.principal(p.UserID))
		return false
	}
	return s.update(ctx, w)
}

// principalWrite returns the write that caches p for the principal TTL.
func (s *Store) principalWrite(p *attrcache.Principal) (write, error) {
	value, err := encodePrincipal(p)
	if err != nil {
		return write{}, fmt.Errorf("encoding the principal: %w", err)
	}
	return write{key: s.keys.principal(p.UserID), value: value, version: p.Version, expireAt: time.Now().Add(s.principalTTL)}, nil
}
