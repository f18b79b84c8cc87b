package sso_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// userAttrs returns the attributes of userID ("" for the caller) as the caller of ust uses them.
func (e *env) userAttrs(t *testing.T, userID, ust string) *sso.AttrAPI {
	t.Helper()
	attrs, err := e.api.UserAttrs(context.Background(), "cid", userID, ust, testApp, testAddr)
	if err != nil {
		t.Fatalf("UserAttrs(%q): %v", userID, err)
	}
	return attrs
}

// ownAttrs makes a regular user, logs them in and returns their own attributes.
func (e *env) ownAttrs(t *testing.T) *sso.AttrAPI {
	t.Helper()
	_, ust := e.regularUser(t)
	return e.userAttrs(t, "", ust)
}

// sessionAttrs returns the attributes of the session of targetUST as the caller of currentUST
// uses them.
func (e *env) sessionAttrs(t *testing.T, targetUST, currentUST string) *sso.AttrAPI {
	t.Helper()
	attrs, err := e.api.SessionAttrs(context.Background(), "cid", targetUST, currentUST, testApp, testAddr)
	if err != nil {
		t.Fatalf("SessionAttrs: %v", err)
	}
	return attrs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mustGet returns the attribute called name (nil when it is missing).
func mustGet(t *testing.T, attrs *sso.AttrAPI, name string, opts ...sso.AttrOption) *sso.AttrValue {
	t.Helper()
	v, err := attrs.Get(context.Background(), name, opts...)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return v
}

// wantValue fails the test unless the attribute called name is found with the JSON text want.
func wantValue(t *testing.T, attrs *sso.AttrAPI, name, want string) *sso.AttrValue {
	t.Helper()
	v := mustGet(t, attrs, name)
	if v == nil {
		t.Fatalf("Get(%q) = nil, want value %s", name, want)
	}
	if string(v.Value) != want {
		t.Errorf("Get(%q).Value = %s, want %s", name, v.Value, want)
	}
	return v
}

// wantMissing fails the test unless the attribute called name is missing.
func wantMissing(t *testing.T, attrs *sso.AttrAPI, name string) {
	t.Helper()
	if v := mustGet(t, attrs, name); v != nil {
		t.Errorf("Get(%q) = %s, want nil", name, v.Value)
	}
}

// wantTimes fails the test unless v was created at created, last modified at modified and
// expires at expires.
func wantTimes(t *testing.T, v *sso.AttrValue, created, modified, expires time.Time) {
	t.Helper()
	if !v.CreationTime.Equal(created) || !v.LastModified.Equal(modified) || !v.ExpirationTime.Equal(expires) {
		t.Errorf("%s: created %v, modified %v, expires %v; want %v, %v, %v",
			v.Name, v.CreationTime, v.LastModified, v.ExpirationTime, created, modified, expires)
	}
}

func TestAttrValuesRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	now := e.clock.Now()

	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"string", "my-value", `"my-value"`},
		{"empty string", "", `""`},
		{"number", 3.25, `3.25`},
		{"bool", true, `true`},
		{"null", nil, `null`},
		{"map", map[string]any{"b": []int{1, 2}, "a": "x"}, `{"a":"x","b":[1,2]}`},
		{"struct", struct {
			City string `json:"city"`
		}{"Oslo"}, `{"city":"Oslo"}`},
		{"raw message compacted", json.RawMessage(" { \"k\" : [ 1 , \"<&>\" ] } "), `{"k":[1,"<&>"]}`},
		{"markup kept", "<b>&</b>", `"<b>&</b>"`},
	}
	for _, tt := range tests {
		for _, encrypt := range []bool{false, true} {
			name := tt.name
			if encrypt {
				name += " encrypted"
			}
			t.Run(name, func(t *testing.T) {
				must(t, attrs.Set(ctx, name, tt.value, sso.Encrypt(encrypt)))
				v := wantValue(t, attrs, name, tt.want)
				if v.Name != name || v.IsEncrypted != encrypt {
					t.Errorf("name %q, is_encrypted %v; want %q, %v", v.Name, v.IsEncrypted, name, encrypt)
				}
				wantTimes(t, v, now, now, attrcache.NeverExpires)
			})
		}
	}
}

func TestAttrCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	must(t, attrs.Create(ctx, "taken", "first"))

	t.Run("single", func(t *testing.T) {
		must(t, attrs.Create(ctx, "single", "v", sso.Expiration(60)))
		v := wantValue(t, attrs, "single", `"v"`)
		now := e.clock.Now()
		wantTimes(t, v, now, now, now.Add(time.Minute))
	})
	t.Run("single conflict", func(t *testing.T) {
		wantCode(t, attrs.Create(ctx, "taken", "second"), attrcache.CodeAttrExists)
		wantValue(t, attrs, "taken", `"first"`)
	})
	t.Run("many", func(t *testing.T) {
		must(t, attrs.CreateMany(ctx, []sso.AttrItem{{Name: "m1", Value: 1}, {Name: "m2", Value: 2}}))
		wantValue(t, attrs, "m1", `1`)
		wantValue(t, attrs, "m2", `2`)
	})
	for _, tt := range []struct {
		name  string
		items []sso.AttrItem
	}{
		{"many with one existing", []sso.AttrItem{{Name: "fresh1", Value: 1}, {Name: "taken", Value: 2}}},
		{"many naming one twice", []sso.AttrItem{{Name: "fresh2", Value: 1}, {Name: "fresh2", Value: 2}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, attrs.CreateMany(ctx, tt.items), attrcache.CodeAttrExists)
			wantMissing(t, attrs, tt.items[0].Name)
			wantValue(t, attrs, "taken", `"first"`)
		})
	}
}

func TestAttrUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	created := e.clock.Now()
	must(t, attrs.SetMany(ctx, []sso.AttrItem{
		{Name: "plain", Value: "old"},
		{Name: "expiring", Value: "old", Expiration: ptr[int64](3600)},
		{Name: "many1", Value: "old"},
	}))
	e.clock.Advance(time.Second)
	modified := e.clock.Now()

	t.Run("keeps the expiry without Expiration", func(t *testing.T) {
		must(t, attrs.Update(ctx, "expiring", "new"))
		v := wantValue(t, attrs, "expiring", `"new"`)
		wantTimes(t, v, created, modified, created.Add(time.Hour))
	})
	t.Run("sets the expiry from now with Expiration", func(t *testing.T) {
		must(t, attrs.Update(ctx, "plain", "new", sso.Expiration(60)))
		v := wantValue(t, attrs, "plain", `"new"`)
		wantTimes(t, v, created, modified, modified.Add(time.Minute))
	})
	t.Run("empty string replaces the value", func(t *testing.T) {
		must(t, attrs.Update(ctx, "plain", ""))
		wantValue(t, attrs, "plain", `""`)
	})
	t.Run("missing is ignored", func(t *testing.T) {
		must(t, attrs.Update(ctx, "missing", "v"))
		wantMissing(t, attrs, "missing")
	})
	t.Run("many updates those that exist", func(t *testing.T) {
		must(t, attrs.UpdateMany(ctx, []sso.AttrItem{{Name: "many1", Value: "new"}, {Name: "many2", Value: "new"}}))
		wantValue(t, attrs, "many1", `"new"`)
		wantMissing(t, attrs, "many2")
	})
}

func TestAttrSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	created := e.clock.Now()
	must(t, attrs.Set(ctx, "existing", "old", sso.Expiration(3600)))
	e.clock.Advance(time.Second)
	modified := e.clock.Now()

	t.Run("over an existing one keeps creation time and expiry", func(t *testing.T) {
		must(t, attrs.Set(ctx, "existing", "new"))
		v := wantValue(t, attrs, "existing", `"new"`)
		wantTimes(t, v, created, modified, created.Add(time.Hour))
	})
	t.Run("many creates and updates", func(t *testing.T) {
		must(t, attrs.SetMany(ctx, []sso.AttrItem{{Name: "existing", Value: "newer"}, {Name: "new", Value: 1}}, sso.Expiration(60)))
		wantTimes(t, wantValue(t, attrs, "existing", `"newer"`), created, modified, modified.Add(time.Minute))
		wantTimes(t, wantValue(t, attrs, "new", `1`), modified, modified, modified.Add(time.Minute))
	})
}

func TestAttrManyItemsTakeTheCallOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	now := e.clock.Now()
	must(t, attrs.SetMany(ctx, []sso.AttrItem{
		{Name: "defaults", Value: "a"},
		{Name: "own expiry", Value: "b", Expiration: ptr[int64](10)},
		{Name: "never", Value: "c", Expiration: ptr[int64](0)},
		{Name: "plain", Value: "d", Encrypt: ptr(false)},
	}, sso.Expiration(60), sso.Encrypt(true)))

	for _, tt := range []struct {
		name          string
		wantEncrypted bool
		wantExpires   time.Time
	}{
		{"defaults", true, now.Add(time.Minute)},
		{"own expiry", true, now.Add(10 * time.Second)},
		{"never", true, attrcache.NeverExpires},
		{"plain", false, now.Add(time.Minute)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := mustGet(t, attrs, tt.name)
			if v == nil {
				t.Fatal("missing")
			}
			if v.IsEncrypted != tt.wantEncrypted || !v.ExpirationTime.Equal(tt.wantExpires) {
				t.Errorf("is_encrypted %v, expires %v; want %v, %v", v.IsEncrypted, v.ExpirationTime, tt.wantEncrypted, tt.wantExpires)
			}
		})
	}
}

// reversedNames lists attribute names in reverse byte order, so that a test sees whether the
// API sorts them itself.
type reversedNames struct{ attrcache.AttrStore }

func (r reversedNames) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	names, err := r.AttrStore.AttrNames(ctx, scope, now)
	slices.Sort(names)
	slices.Reverse(names)
	return names, err
}

func TestAttrReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvOver(t, reversedNames{testAttrs})
	attrs := e.ownAttrs(t)
	names := []string{"b", "a", "B", "é", "a b", "Z"}
	items := make([]sso.AttrItem, len(names))
	for i, name := range names {
		items[i] = sso.AttrItem{Name: name, Value: i}
	}
	must(t, attrs.SetMany(ctx, items))

	t.Run("get missing", func(t *testing.T) {
		wantMissing(t, attrs, "missing")
	})
	t.Run("get many", func(t *testing.T) {
		got, err := attrs.GetMany(ctx, []string{"a", "missing", "é"})
		must(t, err)
		if len(got) != 3 || got["missing"] != nil || got["a"] == nil || string(got["a"].Value) != "1" ||
			got["é"] == nil || string(got["é"].Value) != "3" {
			t.Errorf("GetMany = %v, want a: 1, missing: nil, é: 3", got)
		}
	})
	t.Run("exists", func(t *testing.T) {
		for name, want := range map[string]bool{"a": true, "missing": false} {
			got, err := attrs.Exists(ctx, name)
			must(t, err)
			if got != want {
				t.Errorf("Exists(%q) = %v, want %v", name, got, want)
			}
		}
	})
	t.Run("exists many", func(t *testing.T) {
		got, err := attrs.ExistsMany(ctx, []string{"Z", "missing"})
		must(t, err)
		if want := map[string]bool{"Z": true, "missing": false}; !mapsEqual(got, want) {
			t.Errorf("ExistsMany = %v, want %v", got, want)
		}
	})
	t.Run("names in byte order", func(t *testing.T) {
		got, err := attrs.Names(ctx)
		must(t, err)
		if want := []string{"B", "Z", "a", "a b", "b", "é"}; !slices.Equal(got, want) {
			t.Errorf("Names = %q, want %q", got, want)
		}
	})
	t.Run("names of none", func(t *testing.T) {
		got, err := e.ownAttrs(t).Names(ctx)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("Names = %#v, %v; want an empty list", got, err)
		}
	})
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAttrDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	must(t, attrs.SetMany(ctx, []sso.AttrItem{{Name: "one", Value: 1}, {Name: "two", Value: 2}, {Name: "three", Value: 3}}))

	must(t, attrs.Delete(ctx, "one"))
	wantMissing(t, attrs, "one")
	must(t, attrs.Delete(ctx, "one")) // missing: not an error
	must(t, attrs.DeleteMany(ctx, []string{"two", "missing"}))
	wantMissing(t, attrs, "two")
	names, err := attrs.Names(ctx)
	must(t, err)
	if !slices.Equal(names, []string{"three"}) {
		t.Errorf("Names = %q, want [three]", names)
	}
}

func TestAttrExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	attrs := e.ownAttrs(t)
	names := []string{"get", "update", "delete", "create", "set"}
	items := make([]sso.AttrItem, len(names))
	for i, name := range names {
		items[i] = sso.AttrItem{Name: name, Value: "old"}
	}
	must(t, attrs.SetMany(ctx, items, sso.Expiration(60)))
	must(t, attrs.Set(ctx, "lasting", "v"))
	e.clock.Advance(59 * time.Second)
	wantValue(t, attrs, "get", `"old"`)
	e.clock.Advance(time.Second)
	now := e.clock.Now()

	t.Run("get", func(t *testing.T) { wantMissing(t, attrs, "get") })
	t.Run("get many", func(t *testing.T) {
		got, err := attrs.GetMany(ctx, []string{"get", "lasting"})
		must(t, err)
		if got["get"] != nil || got["lasting"] == nil {
			t.Errorf("GetMany = %v, want get: nil, lasting found", got)
		}
	})
	t.Run("exists", func(t *testing.T) {
		got, err := attrs.ExistsMany(ctx, []string{"get", "lasting"})
		must(t, err)
		if want := map[string]bool{"get": false, "lasting": true}; !mapsEqual(got, want) {
			t.Errorf("ExistsMany = %v, want %v", got, want)
		}
	})
	t.Run("names", func(t *testing.T) {
		got, err := attrs.Names(ctx)
		must(t, err)
		if !slices.Equal(got, []string{"lasting"}) {
			t.Errorf("Names = %q, want [lasting]", got)
		}
	})
	t.Run("update", func(t *testing.T) {
		must(t, attrs.Update(ctx, "update", "new", sso.Expiration(3600)))
		wantMissing(t, attrs, "update")
	})
	t.Run("delete", func(t *testing.T) {
		must(t, attrs.Delete(ctx, "delete"))
		wantMissing(t, attrs, "delete")
	})
	t.Run("create over an expired one", func(t *testing.T) {
		must(t, attrs.Create(ctx, "create", "new"))
		wantTimes(t, wantValue(t, attrs, "create", `"new"`), now, now, attrcache.NeverExpires)
	})
	t.Run("set over an expired one", func(t *testing.T) {
		must(t, attrs.Set(ctx, "set", "new"))
		wantTimes(t, wantValue(t, attrs, "set", `"new"`), now, now, attrcache.NeverExpires)
	})
}

// storedAttr returns the value and is_encrypted of a user attribute's row in MySQL.
func storedAttr(t *testing.T, userID, name string) (value string, encrypted bool) {
	t.Helper()
	err := testSQL.QueryRowContext(context.Background(),
		"SELECT value, is_encrypted FROM sso_attr WHERE user_id = ? AND ust_hash = '' AND name = ?",
		userID, name).Scan(&value, &encrypted)
	if err != nil {
		t.Fatalf("reading the row of %s: %v", name, err)
	}
	return value, encrypted
}

// copyAttrRow copies a user attribute's row, as it is stored, to another user and name.
func copyAttrRow(t *testing.T, fromUser, fromName, toUser, toName string) {
	t.Helper()
	_, err := testSQL.ExecContext(context.Background(), `INSERT INTO sso_attr (user_id, ust_hash, name, value,
		is_encrypted, creation_time, last_modified, expiration_time, version)
		SELECT ?, ust_hash, ?, value, is_encrypted, creation_time, last_modified, expiration_time, version
		FROM sso_attr WHERE user_id = ? AND ust_hash = '' AND name = ?`, toUser, toName, fromUser, fromName)
	if err != nil {
		t.Fatalf("copying the row of %s: %v", fromName, err)
	}
}

// wantUndecryptable fails the test unless err is the E008002 of a value that cannot be decrypted.
func wantUndecryptable(t *testing.T, err error) {
	t.Helper()
	wantCode(t, err, attrcache.CodeInvalidInput)
	if !errors.Is(err, attrcache.ErrUndecryptable) {
		t.Errorf("error %v does not wrap attrcache.ErrUndecryptable", err)
	}
}

func TestAttrEncryption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	owner, ust := e.regularUser(t)
	attrs := e.userAttrs(t, "", ust)
	const secret = "123-45-6789"
	must(t, attrs.Set(ctx, "ssn", secret, sso.Encrypt(true)))

	t.Run("decrypted by default", func(t *testing.T) {
		v := wantValue(t, attrs, "ssn", `"`+secret+`"`)
		if !v.IsEncrypted {
			t.Error("is_encrypted = false, want true")
		}
	})
	t.Run("MySQL holds ciphertext only", func(t *testing.T) {
		stored, encrypted := storedAttr(t, owner.UserID, "ssn")
		if !encrypted || strings.Contains(stored, secret) || !strings.HasPrefix(stored, `"ac1.`) {
			t.Errorf("row holds %s, is_encrypted %v; want the JSON string of an envelope, true", stored, encrypted)
		}
	})
	t.Run("Decrypt(false) returns the ciphertext", func(t *testing.T) {
		v := mustGet(t, attrs, "ssn", sso.Decrypt(false))
		stored, _ := storedAttr(t, owner.UserID, "ssn")
		if string(v.Value) != stored || !v.IsEncrypted {
			t.Errorf("Value = %s, is_encrypted %v; want %s, true", v.Value, v.IsEncrypted, stored)
		}
	})
	t.Run("is_encrypted follows every write", func(t *testing.T) {
		must(t, attrs.Set(ctx, "flip", "plain"))
		must(t, attrs.Update(ctx, "flip", "sealed", sso.Encrypt(true)))
		if v := wantValue(t, attrs, "flip", `"sealed"`); !v.IsEncrypted {
			t.Error("after an encrypted update: is_encrypted = false")
		}
		must(t, attrs.Set(ctx, "flip", "plain again"))
		if v := wantValue(t, attrs, "flip", `"plain again"`); v.IsEncrypted {
			t.Error("after a plain set: is_encrypted = true")
		}
		if stored, encrypted := storedAttr(t, owner.UserID, "flip"); stored != `"plain again"` || encrypted {
			t.Errorf("row holds %s, is_encrypted %v; want \"plain again\", false", stored, encrypted)
		}
	})
	t.Run("copied to another name", func(t *testing.T) {
		copyAttrRow(t, owner.UserID, "ssn", owner.UserID, "moved")
		_, err := attrs.Get(ctx, "moved")
		wantUndecryptable(t, err)
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error %q holds the plaintext", err)
		}
		_, err = attrs.GetMany(ctx, []string{"ssn", "moved"})
		wantUndecryptable(t, err)
		if v := mustGet(t, attrs, "moved", sso.Decrypt(false)); v == nil || !v.IsEncrypted {
			t.Errorf("Get(moved, Decrypt(false)) = %v, want the stored ciphertext", v)
		}
	})
	t.Run("copied to another user", func(t *testing.T) {
		other, otherUST := e.regularUser(t)
		copyAttrRow(t, owner.UserID, "ssn", other.UserID, "ssn")
		_, err := e.userAttrs(t, "", otherUST).Get(ctx, "ssn")
		wantUndecryptable(t, err)
	})
}

func TestAttrEncryptedWithALostKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, ust := e.regularUser(t)
	// rotated has a new key first, so it seals with a key that e.api does not have; it still has
	// the old one, so it opens the USTs e.api issued.
	rotated, err := attrcache.ParseSecretKeys("k2:" + attrcache.GenerateKey() + ",k1:" + testSecretKey)
	must(t, err)
	rotatedAPI, err := sso.New(testConfig(e.clock.Now), rotated, testStore, testStore, testAttrs)
	must(t, err)
	rotatedAttrs, err := rotatedAPI.UserAttrs(ctx, "cid", "", ust, testApp, testAddr)
	must(t, err)
	must(t, rotatedAttrs.Set(ctx, "sealed-with-k2", "v", sso.Encrypt(true)))
	wantValue(t, rotatedAttrs, "sealed-with-k2", `"v"`)

	// A key that is gone is the operator's error: 503 E008004 naming the key id, not E008002.
	_, err = e.userAttrs(t, "", ust).Get(ctx, "sealed-with-k2")
	var ae *attrcache.Error
	if !errors.As(err, &ae) || ae.Kind != attrcache.KindUnavailable || ae.Code != attrcache.CodeInternalError ||
		!strings.Contains(ae.Message, `"k2"`) {
		t.Errorf("Get of a value sealed with a key that is not configured: %v, want unavailable E008004 naming k2", err)
	}
}

func TestUserAttrsPermissions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	regular, regularUST := e.regularUser(t)
	other, _ := e.regularUser(t)

	for _, tt := range []struct {
		name, userID, ust, app, wantCode string
	}{
		{"regular, own by default", "", regularUST, testApp, ""},
		{"regular, own by id", regular.UserID, regularUST, testApp, ""},
		{"regular, another user", other.UserID, regularUST, testApp, attrcache.CodeNotAllowed},
		{"regular, unknown user", attrcache.NewUserID(), regularUST, testApp, attrcache.CodeNotAllowed},
		{"super-user, another user", other.UserID, superUST, testApp, ""},
		{"super-user, unknown user", attrcache.NewUserID(), superUST, testApp, attrcache.CodeNotAllowed},
		{"bad UST", "", "garbage", testApp, attrcache.CodeNoSuchSession},
		{"unknown app", "", regularUST, "nope", attrcache.CodeAppInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.UserAttrs(ctx, "cid", tt.userID, tt.ust, tt.app, testAddr)
			wantCode(t, err, tt.wantCode)
		})
	}

	t.Run("a super-user writes another user's attributes", func(t *testing.T) {
		must(t, e.userAttrs(t, regular.UserID, superUST).Set(ctx, "by-super", "v"))
		wantValue(t, e.userAttrs(t, "", regularUST), "by-super", `"v"`)
	})
	t.Run("user views are bound to their user", func(t *testing.T) {
		current, err := e.api.GetCurrentUser(ctx, "cid", regularUST, testApp, testAddr)
		must(t, err)
		must(t, current.Attr.Set(ctx, "via-current", "mine"))
		byID, err := e.api.GetUserByID(ctx, "cid", other.UserID, superUST, testApp, testAddr)
		must(t, err)
		must(t, byID.Attr.Set(ctx, "via-id", "theirs"))

		wantValue(t, e.userAttrs(t, regular.UserID, superUST), "via-current", `"mine"`)
		wantValue(t, e.userAttrs(t, other.UserID, superUST), "via-id", `"theirs"`)
		wantMissing(t, e.userAttrs(t, other.UserID, superUST), "via-current")
	})
}

func TestAttrCallsRecheckTheCaller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	locked, lockedUST := e.regularUser(t)
	_, loggedOutUST := e.regularUser(t)
	lockedAttrs := e.userAttrs(t, "", lockedUST)
	loggedOutAttrs := e.userAttrs(t, "", loggedOutUST)
	must(t, e.api.LockUser(ctx, "cid", locked.UserID, superUST, testApp, testAddr))
	must(t, e.api.Logout(ctx, "cid", loggedOutUST, testApp, testAddr))

	for _, tt := range []struct {
		name     string
		attrs    *sso.AttrAPI
		wantCode string
	}{
		{"locked", lockedAttrs, attrcache.CodeLocked},
		{"logged out", loggedOutAttrs, attrcache.CodeNoSuchSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.attrs.Set(ctx, "a", 1), tt.wantCode)
			_, err := tt.attrs.Get(ctx, "a")
			wantCode(t, err, tt.wantCode)
			_, err = tt.attrs.Names(ctx)
			wantCode(t, err, tt.wantCode)
		})
	}
}

func TestSessionAttrs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	_, superUST := e.superUser(t)
	owner, ownerUST := e.regularUser(t)
	otherSessionUST := e.login(t, owner)
	_, strangerUST := e.regularUser(t)

	for _, tt := range []struct {
		name, target, current, wantCode string
	}{
		{"owner, same session", ownerUST, ownerUST, ""},
		{"owner, another of their sessions", ownerUST, otherSessionUST, ""},
		{"super-user", ownerUST, superUST, ""},
		{"another regular user", ownerUST, strangerUST, attrcache.CodeNotAllowed},
		{"garbage target", "garbage", superUST, attrcache.CodeNoSuchSession},
		{"missing target", "", superUST, attrcache.CodeNoSuchSession},
		{"bad caller", ownerUST, "garbage", attrcache.CodeNoSuchSession},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.api.SessionAttrs(ctx, "cid", tt.target, tt.current, testApp, testAddr)
			wantCode(t, err, tt.wantCode)
		})
	}

	t.Run("scoped to the session", func(t *testing.T) {
		must(t, e.sessionAttrs(t, ownerUST, superUST).Set(ctx, "cart", []string{"book"}))
		wantValue(t, e.sessionAttrs(t, ownerUST, ownerUST), "cart", `["book"]`)
		wantMissing(t, e.sessionAttrs(t, otherSessionUST, ownerUST), "cart")
		wantMissing(t, e.userAttrs(t, "", ownerUST), "cart")
	})
	t.Run("encrypted values are bound to the session", func(t *testing.T) {
		attrs := e.sessionAttrs(t, ownerUST, ownerUST)
		must(t, attrs.Set(ctx, "token", "s3cret", sso.Encrypt(true)))
		wantValue(t, attrs, "token", `"s3cret"`)
	})
	t.Run("gone with the session", func(t *testing.T) {
		_, targetUST := e.regularUser(t)
		attrs := e.sessionAttrs(t, targetUST, superUST)
		must(t, attrs.Set(ctx, "a", 1))
		must(t, e.api.Logout(ctx, "cid", targetUST, testApp, testAddr))
		_, err := attrs.Get(ctx, "a")
		wantCode(t, err, attrcache.CodeNoSuchSession)
		wantCode(t, attrs.Set(ctx, "a", 2), attrcache.CodeNoSuchSession)
		_, err = e.api.SessionAttrs(ctx, "cid", targetUST, superUST, testApp, testAddr)
		wantCode(t, err, attrcache.CodeNoSuchSession)
	})
	t.Run("expired target", func(t *testing.T) {
		e := newEnv(t)
		_, superUST := e.superUser(t)
		_, targetUST := e.regularUser(t)
		attrs := e.sessionAttrs(t, targetUST, superUST)
		e.clock.Advance(30 * time.Minute)
		_, err := e.api.RenewSession(ctx, "cid", superUST, testApp, testAddr)
		must(t, err)
		e.clock.Advance(30 * time.Minute) // the target has ended, the caller has not
		_, err = attrs.Names(ctx)
		wantCode(t, err, attrcache.CodeNoSuchSession)
	})
}

func TestAttrLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const maxValue = 16
	e := newEnv(t, func(cfg *sso.Config) { cfg.MaxAttrValueBytes = maxValue })
	attrs := e.ownAttrs(t)

	tooMany := make([]sso.AttrItem, attrcache.MaxAttrItems+1)
	for i := range tooMany {
		tooMany[i] = sso.AttrItem{Name: "n" + strconv.Itoa(i), Value: i}
	}
	writes := []struct {
		name  string
		items []sso.AttrItem
		opts  []sso.AttrOption
	}{
		{"empty name", []sso.AttrItem{{Name: "", Value: 1}}, nil},
		{"name too long", []sso.AttrItem{{Name: strings.Repeat("n", attrcache.MaxAttrNameBytes+1), Value: 1}}, nil},
		{"control character in name", []sso.AttrItem{{Name: "a\nb", Value: 1}}, nil},
		{"name not UTF-8", []sso.AttrItem{{Name: "a\xffb", Value: 1}}, nil},
		{"value too large", []sso.AttrItem{{Name: "big", Value: strings.Repeat("v", maxValue-1)}}, nil},
		{"value not JSON", []sso.AttrItem{{Name: "raw", Value: json.RawMessage("{nope")}}, nil},
		{"value not encodable", []sso.AttrItem{{Name: "inf", Value: math.Inf(1)}}, nil},
		{"negative expiration", []sso.AttrItem{{Name: "neg", Value: 1}}, []sso.AttrOption{sso.Expiration(-1)}},
		{"negative item expiration", []sso.AttrItem{{Name: "neg", Value: 1, Expiration: ptr[int64](-5)}}, nil},
		{"no items", nil, nil},
		{"too many items", tooMany, nil},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			items := append([]sso.AttrItem{{Name: "valid-first", Value: 1}}, tt.items...)
			if tt.items == nil {
				items = nil
			}
			for verb, write := range map[string]func(context.Context, []sso.AttrItem, ...sso.AttrOption) error{
				"SetMany": attrs.SetMany, "CreateMany": attrs.CreateMany, "UpdateMany": attrs.UpdateMany,
			} {
				wantCode(t, write(ctx, items, tt.opts...), attrcache.CodeInvalidInput)
				if verb != "UpdateMany" {
					wantMissing(t, attrs, "valid-first")
				}
			}
		})
	}

	t.Run("at the limits", func(t *testing.T) {
		longest := strings.Repeat("n", attrcache.MaxAttrNameBytes)
		must(t, attrs.Set(ctx, longest, strings.Repeat("v", maxValue-2)))
		wantValue(t, attrs, longest, `"`+strings.Repeat("v", maxValue-2)+`"`)
		most := tooMany[:attrcache.MaxAttrItems]
		must(t, attrs.SetMany(ctx, most))
		names := make([]string, len(most))
		for i, item := range most {
			names[i] = item.Name
		}
		found, err := attrs.ExistsMany(ctx, names)
		must(t, err)
		for _, name := range names {
			if !found[name] {
				t.Fatalf("%s was not stored", name)
			}
		}
	})

	reads := []struct {
		name  string
		names []string
	}{
		{"no names", nil},
		{"bad name", []string{"ok", ""}},
		{"too many names", slices.Repeat([]string{"n"}, attrcache.MaxAttrItems+1)},
	}
	for _, tt := range reads {
		t.Run("read: "+tt.name, func(t *testing.T) {
			_, err := attrs.GetMany(ctx, tt.names)
			wantCode(t, err, attrcache.CodeInvalidInput)
			_, err = attrs.ExistsMany(ctx, tt.names)
			wantCode(t, err, attrcache.CodeInvalidInput)
			wantCode(t, attrs.DeleteMany(ctx, tt.names), attrcache.CodeInvalidInput)
		})
	}
}
