package sso_test

import (
	"context"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// TestAccessRuleOnBothPaths runs every case of the attribute access rule through the facts the
// stores give and through the facts the cache gives in one round trip, and requires the same
// answer from both. Cases whose facts a cache holds (the caller's live session, an owner it has
// cached) must be decided from the cache too, so the cached path's decision is really tested.
func TestAccessRuleOnBothPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	owner, ownerUST := e.regularUser(t)
	_, strangerUST := e.regularUser(t)
	locked, lockedUST := e.regularUser(t)
	expired, expiredUST := e.regularUser(t)
	_, loggedOutUST := e.regularUser(t)
	lockedOwner, lockedOwnerUST := e.regularUser(t)
	// Each scope's attribute "a" is read by its owner first, so that the cache holds its absence
	// for the cached path of the calls that are then refused.
	for _, ust := range []string{ownerUST, lockedUST, expiredUST, lockedOwnerUST} {
		_, err := e.api.UserAttrsDeferred("cid", "", ust, testApp, testAddr).Get(ctx, "a")
		must(t, err)
		_, err = e.api.SessionAttrsDeferred("cid", ust, ust, testApp, testAddr).Get(ctx, "a")
		must(t, err)
	}
	must(t, e.api.LockUser(ctx, "cid", locked.UserID, superUST, testApp, testAddr))
	must(t, e.api.LockUser(ctx, "cid", lockedOwner.UserID, superUST, testApp, testAddr))
	must(t, e.api.UpdateUserByID(ctx, "cid", expired.UserID, map[string]any{"password_expiry": time.Now().Add(-time.Hour)}, superUST, testApp, testAddr))
	must(t, e.api.Logout(ctx, "cid", loggedOutUST, testApp, testAddr))
	unknownID := attrcache.NewUserID()

	userAttrs := func(ownerID, ust string) *sso.AttrAPI {
		return e.api.UserAttrsDeferred("cid", ownerID, ust, testApp, testAddr)
	}
	sessionAttrs := func(target, ust string) *sso.AttrAPI {
		return e.api.SessionAttrsDeferred("cid", target, ust, testApp, testAddr)
	}
	tests := []struct {
		name      string
		attrs     *sso.AttrAPI
		want      string
		fromCache bool // the cache holds every fact, so the cached path must decide
	}{
		{"own attributes", userAttrs("", ownerUST), "", true},
		{"own attributes by id", userAttrs(owner.UserID, ownerUST), "", true},
		{"another user's, regular caller", userAttrs(owner.UserID, strangerUST), attrcache.CodeNotAllowed, true},
		{"another user's, super-user", userAttrs(owner.UserID, superUST), "", true},
		{"unknown user, super-user", userAttrs(unknownID, superUST), attrcache.CodeNotAllowed, false},
		{"padded user_id, super-user", userAttrs(owner.UserID+" ", superUST), attrcache.CodeNotAllowed, false},
		{"locked caller", userAttrs("", lockedUST), attrcache.CodeLocked, true},
		{"password expired", userAttrs("", expiredUST), attrcache.CodePasswordExpired, true},
		{"logged out", userAttrs("", loggedOutUST), attrcache.CodeNoSuchSession, false},
		{"garbage UST", userAttrs("", "garbage"), attrcache.CodeNoSuchSession, false},
		{"unknown app", e.api.UserAttrsDeferred("cid", "", ownerUST, "no-such-app", testAddr), attrcache.CodeAppInvalid, false},
		{"own session", sessionAttrs(ownerUST, ownerUST), "", true},
		{"another's session, regular caller", sessionAttrs(ownerUST, strangerUST), attrcache.CodeNotAllowed, true},
		{"another's session, super-user", sessionAttrs(ownerUST, superUST), "", true},
		{"session of a locked owner, super-user", sessionAttrs(lockedOwnerUST, superUST), attrcache.CodeLocked, true},
		{"ended session, super-user", sessionAttrs(loggedOutUST, superUST), attrcache.CodeNoSuchSession, false},
		{"garbage target", sessionAttrs("garbage", superUST), attrcache.CodeNoSuchSession, false},
		{"locked caller, own session", sessionAttrs(lockedUST, lockedUST), attrcache.CodeLocked, true},
	}
	names := []string{"a"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The store path first: its look-ups go through the cache and fill it.
			wantCode(t, sso.DecideFromStores(ctx, tt.attrs), tt.want)
			err, gathered := sso.DecideFromCache(ctx, tt.attrs, names)
			if !gathered {
				if tt.fromCache {
					t.Fatal("the cache did not hold the facts of this call")
				}
				return
			}
			wantCode(t, err, tt.want)
		})
	}
}
