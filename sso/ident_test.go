package sso_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// idSpy passes every call to the test stores and records the user_ids the calls name.
type idSpy struct {
	attrcache.UserStore
	attrs attrcache.AttrStore
	mu    sync.Mutex
	ids   []string
}

func (s *idSpy) saw(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, userID)
}

// malformed returns the user_ids the stores were handed that are not of NewUserID's form.
func (s *idSpy) malformed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for _, id := range s.ids {
		if id != "" && !attrcache.ValidUserID(id) {
			bad = append(bad, id)
		}
	}
	return bad
}

func (s *idSpy) UserByID(ctx context.Context, userID string) (*attrcache.User, error) {
	s.saw(userID)
	return s.UserStore.UserByID(ctx, userID)
}

func (s *idSpy) UpdateUser(ctx context.Context, userID string, upd attrcache.UserUpdate) (*attrcache.User, error) {
	s.saw(userID)
	return s.UserStore.UpdateUser(ctx, userID, upd)
}

func (s *idSpy) DeleteUser(ctx context.Context, userID string) ([]attrcache.AttrKey, error) {
	s.saw(userID)
	return s.UserStore.DeleteUser(ctx, userID)
}

func (s *idSpy) SearchUsers(ctx context.Context, q attrcache.UserQuery) ([]*attrcache.User, int, error) {
	s.saw(q.UserID)
	return s.UserStore.SearchUsers(ctx, q)
}

func (s *idSpy) SetAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	s.saw(scope.UserID)
	return s.attrs.SetAttrs(ctx, scope, items, now)
}

func (s *idSpy) CreateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	s.saw(scope.UserID)
	return s.attrs.CreateAttrs(ctx, scope, items, now)
}

func (s *idSpy) UpdateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	s.saw(scope.UserID)
	return s.attrs.UpdateAttrs(ctx, scope, items, now)
}

func (s *idSpy) Attrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (map[string]*attrcache.Attr, error) {
	s.saw(scope.UserID)
	return s.attrs.Attrs(ctx, scope, names, now)
}

func (s *idSpy) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	s.saw(scope.UserID)
	return s.attrs.AttrNames(ctx, scope, now)
}

func (s *idSpy) DeleteAttrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (int64, error) {
	s.saw(scope.UserID)
	return s.attrs.DeleteAttrs(ctx, scope, names, now)
}

func (s *idSpy) WriteAttrsChecked(ctx context.Context, scope attrcache.AttrScope, op attrcache.AttrWriteOp, items []attrcache.AttrWrite, atomic bool, now time.Time) ([]attrcache.AttrOutcome, error) {
	s.saw(scope.UserID)
	return s.attrs.WriteAttrsChecked(ctx, scope, op, items, atomic, now)
}

func (s *idSpy) CachedAttrs(ctx context.Context, q attrcache.CachedAttrQuery) (attrcache.CachedAttrAnswer, bool) {
	s.saw(q.Scope.UserID)
	return s.attrs.(attrcache.CachedAttrReader).CachedAttrs(ctx, q)
}

// TestMalformedUserIDsReachNoStore names a user by spellings of their user_id that differ from
// it in every Go API call that takes one: each names no user (E005001 for a super-user, what
// naming another user gives for a regular one), no store is handed such an id, and the user's
// data is as it was.
func TestMalformedUserIDsReachNoStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	spy := &idSpy{UserStore: testStore, attrs: testAttrs}
	c := &clock{now: attrcache.Now()}
	api, err := sso.New(testConfig(c.Now), testKeys, spy, testStore, spy)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{api: api, clock: c}
	_, adminUST := e.superUser(t)
	owner, ownerUST := e.regularUser(t)
	ownAttrs, err := api.UserAttrs(ctx, "cid", "", ownerUST, testApp, testAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := ownAttrs.Set(ctx, "a", "original"); err != nil {
		t.Fatal(err)
	}
	before := e.getUser(t, owner.UserID)

	id := owner.UserID
	for _, bad := range []string{id + " ", id + "  ", " " + id, id + "\t", strings.ToUpper(id), id + "x", id[:len(id)-1], id[:4]} {
		attrsAs := func(ust string) *sso.AttrAPI { return api.UserAttrsDeferred("cid", bad, ust, testApp, testAddr) }
		for _, tt := range []struct {
			name string
			call func() error
			want string
		}{
			{"UserAttrs", func() error { _, err := api.UserAttrs(ctx, "cid", bad, adminUST, testApp, testAddr); return err }, attrcache.CodeNotAllowed},
			{"Set", func() error { return attrsAs(adminUST).Set(ctx, "a", "overwritten") }, attrcache.CodeNotAllowed},
			{"SetMany", func() error {
				return attrsAs(adminUST).SetMany(ctx, []sso.AttrItem{{Name: "a", Value: "overwritten"}})
			}, attrcache.CodeNotAllowed},
			{"Create", func() error { return attrsAs(adminUST).Create(ctx, "b", "created") }, attrcache.CodeNotAllowed},
			{"Update", func() error { return attrsAs(adminUST).Update(ctx, "a", "updated") }, attrcache.CodeNotAllowed},
			{"Delete", func() error { return attrsAs(adminUST).Delete(ctx, "a") }, attrcache.CodeNotAllowed},
			{"Get", func() error { _, err := attrsAs(adminUST).Get(ctx, "a"); return err }, attrcache.CodeNotAllowed},
			{"Exists", func() error { _, err := attrsAs(adminUST).Exists(ctx, "a"); return err }, attrcache.CodeNotAllowed},
			{"Names", func() error { _, err := attrsAs(adminUST).Names(ctx); return err }, attrcache.CodeNotAllowed},
			{"GetUserByID", func() error { _, err := api.GetUserByID(ctx, "cid", bad, adminUST, testApp, testAddr); return err }, attrcache.CodeNotAllowed},
			{"UpdateUserByID", func() error {
				return api.UpdateUserByID(ctx, "cid", bad, map[string]any{"display_name": "Overwritten", "username": "taken-" + bad}, adminUST, testApp, testAddr)
			}, attrcache.CodeNotAllowed},
			{"DeleteUserByID", func() error { return api.DeleteUserByID(ctx, "cid", bad, adminUST, testApp, testAddr) }, attrcache.CodeNotAllowed},
			{"ApproveUser", func() error { return api.ApproveUser(ctx, "cid", bad, adminUST, testApp, testAddr) }, attrcache.CodeNotAllowed},
			{"RejectUser", func() error { return api.RejectUser(ctx, "cid", bad, adminUST, testApp, testAddr) }, attrcache.CodeNotAllowed},
			{"LockUser", func() error { return api.LockUser(ctx, "cid", bad, adminUST, testApp, testAddr) }, attrcache.CodeNotAllowed},
			{"UnlockUser", func() error { return api.UnlockUser(ctx, "cid", bad, adminUST, testApp, testAddr) }, attrcache.CodeNotAllowed},
			{"ChangePassword", func() error {
				return api.ChangePassword(ctx, "cid", sso.ChangePasswordInput{UserID: bad, NewPassword: "Ov3rwritten-pass"}, adminUST, testApp, testAddr)
			}, attrcache.CodeNotAllowed},
			{"ResetTOTPKey", func() error {
				_, err := api.ResetTOTPKey(ctx, "cid", bad, "", "overwritten", adminUST, testApp, testAddr)
				return err
			}, attrcache.CodeNotAllowed},
			{"UserAttrs by the owner", func() error { _, err := api.UserAttrs(ctx, "cid", bad, ownerUST, testApp, testAddr); return err }, attrcache.CodeNotAllowed},
			{"Set by the owner", func() error { return attrsAs(ownerUST).Set(ctx, "a", "overwritten") }, attrcache.CodeNotAllowed},
			{"Get by the owner", func() error { _, err := attrsAs(ownerUST).Get(ctx, "a"); return err }, attrcache.CodeNotAllowed},
			{"UpdateUserByID by the owner", func() error {
				return api.UpdateUserByID(ctx, "cid", bad, map[string]any{"display_name": "Overwritten"}, ownerUST, testApp, testAddr)
			}, attrcache.CodeInvalidInput},
			{"ChangePassword by the owner", func() error {
				return api.ChangePassword(ctx, "cid", sso.ChangePasswordInput{UserID: bad, OldPassword: owner.password, NewPassword: "Ov3rwritten-pass"}, ownerUST, testApp, testAddr)
			}, attrcache.CodeInvalidInput},
			{"ResetTOTPKey by the owner", func() error {
				_, err := api.ResetTOTPKey(ctx, "cid", bad, "", "overwritten", ownerUST, testApp, testAddr)
				return err
			}, attrcache.CodeInvalidInput},
		} {
			if got := attrcache.CodeOf(tt.call()); got != tt.want {
				t.Errorf("%s(%q): code %q, want %q", tt.name, bad, got, tt.want)
			}
		}
		res, err := api.Search(ctx, "cid", sso.SearchInput{UserQuery: attrcache.UserQuery{UserID: bad}}, adminUST, testApp, testAddr)
		if err != nil || res.Total != 0 || len(res.Users) != 0 {
			t.Errorf("Search for user_id %q: %+v, %v; want no match", bad, res, err)
		}
	}

	if bad := spy.malformed(); len(bad) != 0 {
		t.Errorf("the stores were handed the user_ids %q", bad)
	}
	after := e.getUser(t, owner.UserID)
	if after.Version != before.Version || after.DisplayName != nil || after.IsLocked || after.ApprovalStatus != attrcache.ApprovalApproved {
		t.Errorf("the owner after the calls: version %d, display name %v, locked %v, %s; want version %d, unchanged",
			after.Version, after.DisplayName, after.IsLocked, after.ApprovalStatus, before.Version)
	}
	if v, err := ownAttrs.Get(ctx, "a"); err != nil || v == nil || string(v.Value) != `"original"` {
		t.Errorf("the owner reads a = %+v, %v; want \"original\"", v, err)
	}
}

// TestUsernamesAreChecked gives usernames that attrcache.CheckUsername refuses to every call
// that creates or renames a user: each is refused with the rule's code and nothing is stored.
func TestUsernamesAreChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, adminUST := e.superUser(t)
	owner, ownerUST := e.regularUser(t)
	for _, tt := range []struct {
		suffix, prefix string
		want           string
		wantSignup     string // sign-up refuses white space anywhere with its own check
	}{
		{" ", "", attrcache.CodeUsernameWhitespace, attrcache.CodeUsernameWhitespace},
		{"  ", "", attrcache.CodeUsernameWhitespace, attrcache.CodeUsernameWhitespace},
		{"", " ", attrcache.CodeUsernameWhitespace, attrcache.CodeUsernameWhitespace},
		{"\u00a0", "", attrcache.CodeUsernameWhitespace, attrcache.CodeUsernameWhitespace},
		{"\u200b", "", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"", "\u200c", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"\u200dx", "", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"\u2060x", "", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"", "\ufeff", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"\x00x", "", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameInvalid},
		{"\u0085x", "", attrcache.CodeUsernameInvalid, attrcache.CodeUsernameWhitespace},
		{strings.Repeat("x", attrcache.MaxUsernameChars), "", attrcache.CodeUsernameTooLong, attrcache.CodeUsernameTooLong},
	} {
		username := tt.prefix + uniqueName(t) + tt.suffix
		password := testPassword
		in := sso.CreateUserInput{Username: username, Password: &password}
		for _, call := range []struct {
			name string
			err  error
			want string
		}{
			{"AdminCreateUser", second(e.api.AdminCreateUser(ctx, in, false)), tt.want},
			{"AdminCreateUser of a super-user", second(e.api.AdminCreateUser(ctx, in, true)), tt.want},
			{"CreateUser", second(e.api.CreateUser(ctx, "cid", in, adminUST, testApp, testAddr)), tt.want},
			{"Signup", second(e.api.Signup(ctx, "cid", sso.SignupInput{Username: username, Password: testPassword, AppList: []string{signupApp}, CurrentApp: signupApp})), tt.wantSignup},
			{"UpdateCurrentUser", e.api.UpdateCurrentUser(ctx, "cid", map[string]any{"username": username}, ownerUST, testApp, testAddr), tt.want},
			{"UpdateUserByID", e.api.UpdateUserByID(ctx, "cid", owner.UserID, map[string]any{"username": username}, adminUST, testApp, testAddr), tt.want},
		} {
			if got := attrcache.CodeOf(call.err); got != call.want {
				t.Errorf("%s(%q): %v, want code %s", call.name, username, call.err, call.want)
			}
		}
		if u, err := testStore.UserByUsername(ctx, username); err == nil {
			t.Errorf("a user named %q was stored: %s", username, u.UserID)
		}
	}
	if got := e.getUser(t, owner.UserID); got.Username != owner.Username {
		t.Errorf("the owner's username is %q after the refused renames, want %q", got.Username, owner.Username)
	}
}

// second returns the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }
