package client_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache/client"
)

// scope names one family of attribute calls for a test user.
type scope struct {
	name  string
	attrs func(u testUser) *client.Attrs
}

var scopes = []scope{
	{"user", func(u testUser) *client.Attrs { return u.session.UserAttrs("") }},
	{"user by a super-user", func(u testUser) *client.Attrs { return admin.UserAttrs(u.id) }},
	{"session", func(u testUser) *client.Attrs { return u.session.SessionAttrs(u.session.UST) }},
	{"session by a super-user", func(u testUser) *client.Attrs { return admin.SessionAttrs(u.session.UST) }},
}

func TestAttrCalls(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, a *client.Attrs)
	}{
		{"Set then Get returns the JSON value", func(t *testing.T, a *client.Attrs) {
			must(t, a.Set(t.Context(), "color", map[string]any{"fg": "red", "n": 2}))
			got := get(t, a, "color")
			var v map[string]any
			if err := got.Decode(&v); err != nil || v["fg"] != "red" || v["n"] != 2.0 {
				t.Errorf("value %s (%v), want {fg: red, n: 2}", got.Value, err)
			}
			if !got.ExpirationTime.IsNever() || got.IsEncrypted || !got.LastModified.Equal(got.CreationTime.Time) {
				t.Errorf("attribute %+v: want never expiring, clear, last_modified = creation_time", got)
			}
		}},
		{"Get of a missing attribute is nil", func(t *testing.T, a *client.Attrs) {
			if got, err := a.Get(t.Context(), "missing"); err != nil || got != nil {
				t.Errorf("Get(missing) = %+v, %v; want nil, nil", got, err)
			}
		}},
		{"ExpiresIn sets the expiration time", func(t *testing.T, a *client.Attrs) {
			before := time.Now()
			must(t, a.Set(t.Context(), "short", "v", client.ExpiresIn(time.Hour)))
			exp := get(t, a, "short").ExpirationTime
			if exp.Before(before.Add(time.Hour).Add(-time.Second)) || exp.After(time.Now().Add(time.Hour)) {
				t.Errorf("expiration_time %v, want about an hour after %v", exp, before)
			}
		}},
		{"a fractional ExpiresIn is refused before sending", func(t *testing.T, a *client.Attrs) {
			err := a.Set(t.Context(), "frac", "v", client.ExpiresIn(1500*time.Millisecond))
			if err == nil || !strings.Contains(err.Error(), "whole seconds") {
				t.Errorf("Set with 1.5s: %v, want a whole-seconds error", err)
			}
		}},
		{"Encrypt stores ciphertext that Decrypt(false) shows", func(t *testing.T, a *client.Attrs) {
			must(t, a.Set(t.Context(), "secret", "s3cr3t", client.Encrypt(true)))
			if got := get(t, a, "secret"); string(got.Value) != `"s3cr3t"` || !got.IsEncrypted {
				t.Errorf("Get = %s, encrypted %v; want the plain value, encrypted", got.Value, got.IsEncrypted)
			}
			got := get(t, a, "secret", client.Decrypt(false))
			if strings.Contains(string(got.Value), "s3cr3t") || !strings.HasPrefix(string(got.Value), `"ac1.`) {
				t.Errorf("Get with Decrypt(false) = %s, want the sealed ciphertext", got.Value)
			}
		}},
		{"Create of an existing attribute is E009001", func(t *testing.T, a *client.Attrs) {
			must(t, a.Create(t.Context(), "once", 1))
			wantCode(t, a.Create(t.Context(), "once", 2), 403, client.CodeAttrExists)
			if got := get(t, a, "once"); string(got.Value) != "1" {
				t.Errorf("value %s after a refused create, want 1", got.Value)
			}
		}},
		{"CreateMany is all or nothing", func(t *testing.T, a *client.Attrs) {
			must(t, a.Set(t.Context(), "taken", 1))
			err := a.CreateMany(t.Context(), []client.Item{{Name: "fresh", Value: 1}, {Name: "taken", Value: 2}})
			wantCode(t, err, 403, client.CodeAttrExists)
			if ok, err := a.Exists(t.Context(), "fresh"); err != nil || ok {
				t.Errorf("Exists(fresh) = %v, %v after a refused CreateMany, want false", ok, err)
			}
		}},
		{"Update replaces the value; a missing one stays missing", func(t *testing.T, a *client.Attrs) {
			must(t, a.Set(t.Context(), "u", "old"))
			must(t, a.Update(t.Context(), "u", "new"))
			must(t, a.Update(t.Context(), "ghost", "x"))
			if got := get(t, a, "u"); string(got.Value) != `"new"` {
				t.Errorf("value %s, want new", got.Value)
			}
			if ok, _ := a.Exists(t.Context(), "ghost"); ok {
				t.Error("Update created a missing attribute")
			}
		}},
		{"SetMany, UpdateMany, GetMany, ExistsMany, Names, DeleteMany", func(t *testing.T, a *client.Attrs) {
			ctx := t.Context()
			must(t, a.SetMany(ctx, []client.Item{{Name: "b", Value: 1}, {Name: "a", Value: json.RawMessage(`[1,2]`)}, {Name: "c", Value: "x", ExpiresIn: time.Minute}}))
			must(t, a.UpdateMany(ctx, []client.Item{{Name: "b", Value: 10}}))
			got, err := a.GetMany(ctx, []string{"a", "b", "c", "nope"})
			if err != nil {
				t.Fatalf("GetMany: %v", err)
			}
			if len(got) != 4 || string(got["a"].Value) != "[1,2]" || string(got["b"].Value) != "10" || got["c"].ExpirationTime.IsNever() || got["nope"] != nil {
				t.Errorf("GetMany = %v, want a [1,2], b 10, c expiring, nope nil", got)
			}
			exists, err := a.ExistsMany(ctx, []string{"a", "nope"})
			if err != nil || !exists["a"] || exists["nope"] || len(exists) != 2 {
				t.Errorf("ExistsMany = %v, %v; want a true, nope false", exists, err)
			}
			if names, err := a.Names(ctx); err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
				t.Errorf("Names = %v, %v; want [a b c]", names, err)
			}
			must(t, a.DeleteMany(ctx, []string{"a", "b", "nope"}))
			if names, err := a.Names(ctx); err != nil || !slices.Equal(names, []string{"c"}) {
				t.Errorf("Names after DeleteMany = %v, %v; want [c]", names, err)
			}
		}},
		{"Delete removes; a second Delete is no error", func(t *testing.T, a *client.Attrs) {
			must(t, a.Set(t.Context(), "d", true))
			must(t, a.Delete(t.Context(), "d"))
			must(t, a.Delete(t.Context(), "d"))
			if ok, err := a.Exists(t.Context(), "d"); err != nil || ok {
				t.Errorf("Exists after Delete = %v, %v; want false", ok, err)
			}
		}},
		{"a name over 191 bytes is E008002", func(t *testing.T, a *client.Attrs) {
			wantCode(t, a.Set(t.Context(), strings.Repeat("n", 192), 1), 403, client.CodeInvalidInput)
		}},
	}
	for _, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, sc.attrs(newUser(t))) })
			}
		})
	}
}

func TestAttrRefusals(t *testing.T) {
	ctx := t.Context()
	u, other := newUser(t), newUser(t)
	tests := []struct {
		name       string
		call       func() error
		httpStatus int
		code       client.Code
	}{
		{"another user's attributes", func() error { return u.session.UserAttrs(other.id).Set(ctx, "x", 1) }, 403, client.CodeNotAllowed},
		{"another user's session's attributes", func() error {
			_, err := u.session.SessionAttrs(other.session.UST).Names(ctx)
			return err
		}, 403, client.CodeNotAllowed},
		{"an unknown UST", func() error {
			_, err := newClient(t).Session("not-a-ust").UserAttrs("").Get(ctx, "x")
			return err
		}, 403, client.CodeNoSuchSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), tt.httpStatus, tt.code) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// get returns the attribute name, failing the test unless it is found.
func get(t *testing.T, a *client.Attrs, name string, opts ...client.AttrOption) *client.Attr {
	t.Helper()
	got, err := a.Get(t.Context(), name, opts...)
	if err != nil || got == nil {
		t.Fatalf("Get(%s) = %v, %v; want the attribute", name, got, err)
	}
	return got
}
