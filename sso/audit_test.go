package sso_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// recordedEntries is an Auditor that keeps what it is given.
type recordedEntries struct {
	mu      sync.Mutex
	entries []sso.AuditEntry
}

func (r *recordedEntries) Record(_ context.Context, e sso.AuditEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Attrs = slices.Clone(e.Attrs)
	r.entries = append(r.entries, e)
}

// take returns the entries recorded since the last take.
func (r *recordedEntries) take() []sso.AuditEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	taken := r.entries
	r.entries = nil
	return taken
}

// TestAuditEntries: each call of the Go API records one entry, with the call's cid as the
// entry's cid, the user_id the caller's UST names as the actor (also when the call is refused),
// the user whose data it is as the target, and the outcome.
func TestAuditEntries(t *testing.T) {
	rec := &recordedEntries{}
	e := newEnv(t, func(c *sso.Config) { c.Audit = rec })
	admin, adminUST := e.superUser(t)
	u, ust := e.regularUser(t)
	other := e.createUser(t, false)
	rec.take()
	ctx := context.Background()
	const addr = "198.51.100.7"

	tests := []struct {
		name string
		call func() error
		want sso.AuditEntry // Time is not compared
	}{
		{"user attrs through a UserView keep its cid", func() error {
			view, err := e.api.GetCurrentUser(ctx, "c-view", ust, testApp, addr)
			if err != nil {
				return err
			}
			rec.take() // the GetCurrentUser entry
			return view.Attr.Set(ctx, "k", "v")
		}, sso.AuditEntry{CID: "c-view", Actor: u.UserID, Target: u.UserID, Operation: "attr.set", Attrs: []string{"k"}, RemoteAddr: addr, Outcome: "ok"}},
		{"another user's attribute names by a super-user", func() error {
			attrs := e.api.UserAttrsDeferred("c-names", u.UserID, adminUST, testApp, addr)
			_, err := attrs.Names(ctx)
			return err
		}, sso.AuditEntry{CID: "c-names", Actor: admin.UserID, Target: u.UserID, Operation: "attr.names", RemoteAddr: addr, Outcome: "ok"}},
		{"a refused read names the actor", func() error {
			_, err := e.api.UserAttrsDeferred("c-refused", other.UserID, ust, testApp, addr).Get(ctx, "k")
			return err
		}, sso.AuditEntry{CID: "c-refused", Actor: u.UserID, Target: other.UserID, Operation: "attr.get", Attrs: []string{"k"}, RemoteAddr: addr, Outcome: "E005001"}},
		{"an invalid name is not repeated", func() error {
			_, err := e.api.UserAttrsDeferred("c-bad", "", ust, testApp, addr).Exists(ctx, "bad\x00name")
			return err
		}, sso.AuditEntry{CID: "c-bad", Actor: u.UserID, Target: u.UserID, Operation: "attr.exists", RemoteAddr: addr, Outcome: "E008002"}},
		{"session attributes", func() error {
			return e.api.SessionAttrsDeferred("c-sattr", ust, adminUST, testApp, addr).DeleteMany(ctx, []string{"a", "b"})
		}, sso.AuditEntry{CID: "c-sattr", Actor: admin.UserID, Target: u.UserID, Operation: "session_attr.delete", Attrs: []string{"a", "b"}, RemoteAddr: addr, Outcome: "ok"}},
		{"get session", func() error {
			_, err := e.api.GetSession(ctx, "c-sess", ust, adminUST, testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-sess", Actor: admin.UserID, Target: u.UserID, Operation: "session.get", RemoteAddr: addr, Outcome: "ok"}},
		{"verify session by a regular user", func() error {
			_, err := e.api.VerifySession(ctx, "c-verify", adminUST, ust, testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-verify", Actor: u.UserID, Target: admin.UserID, Operation: "session.verify", RemoteAddr: addr, Outcome: "E005001"}},
		{"renew", func() error {
			_, err := e.api.RenewSession(ctx, "c-renew", ust, testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-renew", Actor: u.UserID, Target: u.UserID, Operation: "session.renew", RemoteAddr: addr, Outcome: "ok"}},
		{"list sessions", func() error {
			_, err := e.api.ListSessions(ctx, "c-list", ust, testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-list", Actor: u.UserID, Target: u.UserID, Operation: "session.list", RemoteAddr: addr, Outcome: "ok"}},
		{"a wrong old password", func() error {
			return e.api.ChangePassword(ctx, "c-pw", sso.ChangePasswordInput{OldPassword: "wrong", NewPassword: "N3w-pass-word"}, ust, testApp, addr)
		}, sso.AuditEntry{CID: "c-pw", Actor: u.UserID, Target: u.UserID, Operation: "password.change", RemoteAddr: addr, Outcome: "E005001"}},
		{"reject", func() error {
			return e.api.RejectUser(ctx, "c-reject", other.UserID, adminUST, testApp, addr)
		}, sso.AuditEntry{CID: "c-reject", Actor: admin.UserID, Target: other.UserID, Operation: "user.reject", RemoteAddr: addr, Outcome: "ok"}},
		{"approve", func() error {
			return e.api.ApproveUser(ctx, "c-approve", other.UserID, adminUST, testApp, addr)
		}, sso.AuditEntry{CID: "c-approve", Actor: admin.UserID, Target: other.UserID, Operation: "user.approve", RemoteAddr: addr, Outcome: "ok"}},
		{"search", func() error {
			_, err := e.api.Search(ctx, "c-search", sso.SearchInput{}, adminUST, testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-search", Actor: admin.UserID, Operation: "user.search", RemoteAddr: addr, Outcome: "ok"}},
		{"a sign-up refused names the username", func() error {
			_, err := e.api.Signup(ctx, "c-signup", sso.SignupInput{Username: "the-admin", Password: testPassword, CurrentApp: signupApp, RemoteAddr: addr})
			return err
		}, sso.AuditEntry{CID: "c-signup", Username: "the-admin", Operation: "signup", RemoteAddr: addr, Outcome: attrcache.CodeUsernameInvalid}},
		{"a UST that does not open has no actor", func() error {
			_, err := e.api.GetCurrentUser(ctx, "c-forged", "not-a-ust", testApp, addr)
			return err
		}, sso.AuditEntry{CID: "c-forged", Operation: "user.get", RemoteAddr: addr, Outcome: "E007001"}},
		{"the CLI", func() error {
			_, err := e.api.AdminSetLocked(ctx, other.Username, true)
			return err
		}, sso.AuditEntry{Target: other.UserID, Operation: "admin.user.lock", RemoteAddr: sso.AdminRemoteAddr, Outcome: "ok"}},
		{"delete", func() error {
			return e.api.DeleteUserByID(ctx, "c-delete", other.UserID, adminUST, testApp, addr)
		}, sso.AuditEntry{CID: "c-delete", Actor: admin.UserID, Target: other.UserID, Operation: "user.delete", RemoteAddr: addr, Outcome: "ok"}},
		{"logout", func() error {
			return e.api.Logout(ctx, "c-logout", ust, testApp, addr)
		}, sso.AuditEntry{CID: "c-logout", Actor: u.UserID, Target: u.UserID, Operation: "logout", RemoteAddr: addr, Outcome: "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.call()
			got := rec.take()
			if len(got) != 1 {
				t.Fatalf("%d entries recorded, want 1: %+v", len(got), got)
			}
			if got[0].Time.IsZero() {
				t.Errorf("the entry has no time")
			}
			got[0].Time = tt.want.Time
			if !entriesEqual(got[0], tt.want) {
				t.Errorf("entry\n%+v\nwant\n%+v", got[0], tt.want)
			}
		})
	}
}

func entriesEqual(a, b sso.AuditEntry) bool {
	return a.Time.Equal(b.Time) && a.CID == b.CID && a.Actor == b.Actor && a.Username == b.Username && a.Target == b.Target &&
		a.Operation == b.Operation && slices.Equal(a.Attrs, b.Attrs) && a.RemoteAddr == b.RemoteAddr && a.Outcome == b.Outcome
}
