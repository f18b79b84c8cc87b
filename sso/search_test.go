package sso_test

import (
	"context"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	_, regularUST := e.regularUser(t)
	family := uniqueName(t) // a last name only this test's users have
	var usernames []string
	for range 3 {
		u := e.createUser(t, false, func(in *sso.CreateUserInput) { in.LastName = ptr(family) })
		usernames = append(usernames, u.Username)
	}

	tests := []struct {
		name                     string
		curPage, pageSize        int
		wantUsers, wantNumPages  int
		wantCurPage, wantPageSz  int
		wantPrevPage, wantNextPg *int
	}{
		{"first page", 1, 2, 2, 2, 1, 2, nil, ptr(2)},
		{"last page", 2, 2, 1, 2, 2, 2, ptr(1), nil},
		{"defaults", 0, 0, 3, 1, 1, 50, nil, nil},
		{"page size capped", 1, 1000, 3, 1, 1, 100, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sso.SearchInput{UserQuery: attrcache.UserQuery{LastName: family}, Paginate: true, CurPage: tt.curPage, PageSize: tt.pageSize}
			res, err := e.api.Search(ctx, "cid", in, superUST, testApp, testAddr)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Users) != tt.wantUsers || res.Total != 3 || res.NumPages != tt.wantNumPages ||
				res.CurPage != tt.wantCurPage || res.PageSize != tt.wantPageSz {
				t.Errorf("got %d users, total %d, %d pages, page %d of size %d; want %d, 3, %d, %d, %d",
					len(res.Users), res.Total, res.NumPages, res.CurPage, res.PageSize,
					tt.wantUsers, tt.wantNumPages, tt.wantCurPage, tt.wantPageSz)
			}
			if deref(res.PrevPage) != deref(tt.wantPrevPage) || deref(res.NextPage) != deref(tt.wantNextPg) ||
				res.HasPrevPage != (tt.wantPrevPage != nil) || res.HasNextPage != (tt.wantNextPg != nil) {
				t.Errorf("prev %v (%v), next %v (%v); want %v, %v", res.PrevPage, res.HasPrevPage, res.NextPage, res.HasNextPage, tt.wantPrevPage, tt.wantNextPg)
			}
			for _, u := range res.Users {
				if u.PasswordHash != "" || u.TOTPKey != "" || u.SignUpConfirmToken != "" {
					t.Errorf("user %s holds secrets", u.Username)
				}
			}
		})
	}
	t.Run("by username", func(t *testing.T) {
		res, err := e.api.Search(ctx, "cid", sso.SearchInput{UserQuery: attrcache.UserQuery{Username: usernames[1]}}, superUST, testApp, testAddr)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Users) != 1 || res.Users[0].Username != usernames[1] {
			t.Errorf("got %d users, want only %s", len(res.Users), usernames[1])
		}
	})
	for _, tt := range []struct {
		name, ust, app string
		query          attrcache.UserQuery
		wantKind       attrcache.Kind
		wantCode       string
	}{
		{"unknown app", superUST, "nope", attrcache.UserQuery{}, attrcache.KindAppInvalid, attrcache.CodeAppInvalid},
		{"bad UST is generic", "garbage", testApp, attrcache.UserQuery{}, attrcache.KindDenied, attrcache.CodeNotAllowed},
		{"regular caller", regularUST, testApp, attrcache.UserQuery{}, attrcache.KindDenied, attrcache.CodeNotAllowed},
		{"by e-mail is generic", superUST, testApp, attrcache.UserQuery{Email: "a@example.com"}, attrcache.KindDenied, attrcache.CodeNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.Search(ctx, "cid", sso.SearchInput{UserQuery: tt.query}, tt.ust, tt.app, testAddr)
			wantKind(t, err, tt.wantKind, tt.wantCode)
		})
	}
}
