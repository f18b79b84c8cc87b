package sso

import (
	"context"
	"math"

	"github.com/attrcache/attrcache"
)

// SearchInput is a user search; super-user only. Every search is paged, so that none returns an
// unbounded list: Paginate is accepted for Zato's clients, which send it, and changes nothing.
type SearchInput struct {
	attrcache.UserQuery
	Paginate bool
	CurPage  int
	PageSize int
}

// SearchResult is one page of a search.
type SearchResult struct {
	Users       []*attrcache.User
	Total       int
	NumPages    int
	PageSize    int
	CurPage     int
	HasNextPage bool
	HasPrevPage bool
	NextPage    *int
	PrevPage    *int
}

// Search finds users (zato-sso-reference.md §2.4); the Offset and Limit of in.UserQuery are
// ignored. It returns page CurPage (from 1; <= 0 is 1) of PageSize users (<= 0: the default page
// size; at most the maximum page size). The users hold no secrets. A UserID not of the exact form
// of a user_id matches nobody.
//
// Search is a plain service in Zato: an unknown app gives E004001, an unavailable backend its
// error, a bug an internal error, and every other failure (a bad UST, a regular user, a search
// by e-mail) the generic E005001.
func (a *API) Search(ctx context.Context, cid string, in SearchInput, ust, app, remoteAddr string) (_ *SearchResult, err error) {
	rec := a.auditUST("user.search", cid, ust, remoteAddr)
	defer func() { rec.done(ctx, err) }()
	if err := a.checkApp(app); err != nil {
		return nil, err
	}
	res, err := a.search(ctx, in, ust)
	if err != nil && isDenied(err) {
		return nil, attrcache.NotAllowed()
	}
	return res, err
}

func (a *API) search(ctx context.Context, in SearchInput, ust string) (*SearchResult, error) {
	c, err := a.checkSession(ctx, ust, a.now())
	if err != nil {
		return nil, err
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return nil, err
	}
	pageSize := in.PageSize
	if pageSize <= 0 {
		pageSize = a.cfg.SearchDefaultPageSize
	}
	pageSize = min(pageSize, a.cfg.SearchMaxPageSize)
	curPage := min(max(in.CurPage, 1), math.MaxInt32) // keeps the offset from overflowing
	q := in.UserQuery
	q.Offset, q.Limit = (curPage-1)*pageSize, pageSize
	var users []*attrcache.User
	var total int
	if q.UserID == "" || attrcache.ValidUserID(q.UserID) {
		if users, total, err = a.users.SearchUsers(ctx, q); err != nil {
			return nil, storeError(err, "search users", nil)
		}
	}
	res := &SearchResult{
		Users:    make([]*attrcache.User, len(users)),
		Total:    total,
		NumPages: (total + pageSize - 1) / pageSize,
		PageSize: pageSize,
		CurPage:  curPage,
	}
	for i, u := range users {
		res.Users[i] = withoutSecrets(u)
	}
	res.HasPrevPage = curPage > 1
	res.HasNextPage = curPage < res.NumPages
	if res.HasPrevPage {
		prev := curPage - 1
		res.PrevPage = &prev
	}
	if res.HasNextPage {
		next := curPage + 1
		res.NextPage = &next
	}
	return res, nil
}
