package sso_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// The examples run against the real MariaDB and Redis: exampleAPI is built in TestMain over
// persist (MySQL) and cache (Redis), with Zato's defaults and current_app "CRM".

// exampleSuperUser creates a super-user as `attrcache sso create-super-user` does and logs in.
func exampleSuperUser(ctx context.Context, username string) (ust string, err error) {
	password := "correct horse battery staple"
	if _, err := exampleAPI.AdminCreateUser(ctx, sso.CreateUserInput{Username: username, Password: &password}, true); err != nil {
		return "", err
	}
	res, err := exampleAPI.Login(ctx, "cid-1", sso.LoginInput{
		Username: username, Password: password, CurrentApp: "CRM", RemoteAddr: "10.151.17.19",
	})
	if err != nil {
		return "", err
	}
	return res.UST, nil
}

func ExampleAPI_Login() {
	ctx := context.Background()
	password := "correct horse battery staple"
	if _, err := exampleAPI.AdminCreateUser(ctx, sso.CreateUserInput{Username: "example.login", Password: &password}, true); err != nil {
		fmt.Println(err)
		return
	}
	res, err := exampleAPI.Login(ctx, "cid-1", sso.LoginInput{
		Username:   "example.login",
		Password:   password,
		CurrentApp: "CRM",
		RemoteAddr: "10.151.17.19",
		UserAgent:  "Firefox 139",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("has UST:", res.UST != "")
	fmt.Printf("warning: %q\n", res.Warning)
	fmt.Println("valid for:", res.ExpirationTime.Sub(time.Now()).Round(time.Hour))

	_, err = exampleAPI.Login(ctx, "cid-2", sso.LoginInput{Username: "example.login", Password: "wrong", CurrentApp: "CRM"})
	fmt.Println("wrong password:", attrcache.CodeOf(err))
	// Output:
	// has UST: true
	// warning: ""
	// valid for: 1h0m0s
	// wrong password: E005001
}

func ExampleAPI_GetCurrentUser() {
	ctx := context.Background()
	ust, err := exampleSuperUser(ctx, "example.get")
	if err != nil {
		fmt.Println(err)
		return
	}
	view, err := exampleAPI.GetCurrentUser(ctx, "cid-3", ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	u := view.User
	fmt.Println(u.Username, u.IsSuperUser, u.ApprovalStatus, u.ApprovalStatusModBy, u.SignUpStatus)
	fmt.Println("every field:", view.Full)
	// Output:
	// example.get true approved auto final
	// every field: true
}

func ExampleAPI_UpdateCurrentUser() {
	ctx := context.Background()
	ust, err := exampleSuperUser(ctx, "example.update.current")
	if err != nil {
		fmt.Println(err)
		return
	}
	data := map[string]any{
		"display_name": "My New Display Name",
		"email":        "my.new.email@example.com",
	}
	if err := exampleAPI.UpdateCurrentUser(ctx, "cid-4", data, ust, "CRM", "10.151.17.19"); err != nil {
		fmt.Println(err)
		return
	}
	view, err := exampleAPI.GetCurrentUser(ctx, "cid-5", ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(*view.User.DisplayName)
	fmt.Println(*view.User.Email)
	// Output:
	// My New Display Name
	// my.new.email@example.com
}

func ExampleAPI_UpdateUserByID() {
	ctx := context.Background()
	ust, err := exampleSuperUser(ctx, "example.update.by.id")
	if err != nil {
		fmt.Println(err)
		return
	}
	target, err := exampleAPI.AdminCreateUser(ctx, sso.CreateUserInput{Username: "example.update.target"}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	data := map[string]any{
		"is_locked":       true,
		"password_expiry": "2035-01-31T12:30:00",
	}
	if err := exampleAPI.UpdateUserByID(ctx, "cid-6", target.UserID, data, ust, "CRM", "10.151.17.19"); err != nil {
		fmt.Println(err)
		return
	}
	view, err := exampleAPI.GetUserByID(ctx, "cid-7", target.UserID, ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("locked:", view.User.IsLocked)
	fmt.Println("password expires:", attrcache.FormatTime(view.User.PasswordExpiry))
	// Output:
	// locked: true
	// password expires: 2035-01-31T12:30:00
}

// exampleUser logs a new super-user in and returns them as they see themselves, with their own
// attributes at hand in view.Attr.
func exampleUser(ctx context.Context, username string) (*sso.UserView, error) {
	ust, err := exampleSuperUser(ctx, username)
	if err != nil {
		return nil, err
	}
	return exampleAPI.GetCurrentUser(ctx, "cid-8", ust, "CRM", "10.151.17.19")
}

func ExampleAttrAPI_Set() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.set")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := user.Attr.Set(ctx, "my-attribute", "my-value"); err != nil {
		fmt.Println(err)
		return
	}
	attr, err := user.Attr.Get(ctx, "my-attribute")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(attr.Name, string(attr.Value))
	fmt.Println("never expires:", attr.ExpirationTime.Equal(attrcache.NeverExpires))
	// Output:
	// my-attribute "my-value"
	// never expires: true
}

func ExampleAttrAPI_SetMany() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.set.many")
	if err != nil {
		fmt.Println(err)
		return
	}
	encrypt, expiration := true, int64(3600)
	data := []sso.AttrItem{
		{Name: "attr1", Value: "value1"},
		{Name: "attr2", Value: "value2", Encrypt: &encrypt},
		{Name: "attr3", Value: "value3", Expiration: &expiration},
	}
	if err := user.Attr.SetMany(ctx, data); err != nil {
		fmt.Println(err)
		return
	}
	for _, item := range data {
		attr, err := user.Attr.Get(ctx, item.Name)
		if err != nil {
			fmt.Println(err)
			return
		}
		expires := "never"
		if !attr.ExpirationTime.Equal(attrcache.NeverExpires) {
			expires = "in " + time.Until(attr.ExpirationTime).Round(time.Hour).String()
		}
		fmt.Printf("%s = %s, encrypted: %v, expires %s\n", attr.Name, attr.Value, attr.IsEncrypted, expires)
	}
	// Output:
	// attr1 = "value1", encrypted: false, expires never
	// attr2 = "value2", encrypted: true, expires never
	// attr3 = "value3", encrypted: false, expires in 1h0m0s
}

func ExampleAttrAPI_Get() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.get")
	if err != nil {
		fmt.Println(err)
		return
	}
	ssn := map[string]any{"country": "US", "number": "123-45-6789"}
	if err := user.Attr.Set(ctx, "ssn", ssn, sso.Encrypt(true)); err != nil {
		fmt.Println(err)
		return
	}
	attr, err := user.Attr.Get(ctx, "ssn")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("decrypted:", string(attr.Value))
	stored, err := user.Attr.Get(ctx, "ssn", sso.Decrypt(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("as stored:", strings.HasPrefix(string(stored.Value), `"ac1.`), stored.IsEncrypted)
	missing, err := user.Attr.Get(ctx, "no-such-attribute")
	fmt.Println("missing:", missing, err)
	// Output:
	// decrypted: {"country":"US","number":"123-45-6789"}
	// as stored: true true
	// missing: <nil> <nil>
}

func ExampleAttrAPI_GetMany() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.get.many")
	if err != nil {
		fmt.Println(err)
		return
	}
	data := []sso.AttrItem{{Name: "city", Value: "Oslo"}, {Name: "visits", Value: 3}}
	if err := user.Attr.SetMany(ctx, data); err != nil {
		fmt.Println(err)
		return
	}
	names := []string{"city", "visits", "no-such-attribute"}
	attrs, err := user.Attr.GetMany(ctx, names)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range names {
		if attr := attrs[name]; attr != nil {
			fmt.Printf("%s: %s\n", name, attr.Value)
		} else {
			fmt.Printf("%s: not found\n", name)
		}
	}
	// Output:
	// city: "Oslo"
	// visits: 3
	// no-such-attribute: not found
}

// A read-modify-write that no concurrent write can undo: the write applies only while the
// attribute still has the version that was read, and on E009101 the loop reads it again.
// IfVersion(0) writes only when the attribute does not exist.
func ExampleIfVersion() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.cas")
	if err != nil {
		fmt.Println(err)
		return
	}
	attrs := user.Attr
	if err := attrs.Set(ctx, "visits", 0); err != nil {
		fmt.Println(err)
		return
	}
	// Between the first read and its write, another client sets the counter.
	otherWriter := func() error { return attrs.Set(ctx, "visits", 10) }

	var version int64
	for attempt := 1; ; attempt++ {
		attr, err := attrs.Get(ctx, "visits")
		if err != nil {
			fmt.Println(err)
			return
		}
		var visits int
		if err := json.Unmarshal(attr.Value, &visits); err != nil {
			fmt.Println(err)
			return
		}
		if otherWriter != nil {
			if err := otherWriter(); err != nil {
				fmt.Println(err)
				return
			}
			otherWriter = nil
		}
		var results []sso.AttrResult
		err = attrs.Set(ctx, "visits", visits+1, sso.IfVersion(attr.Version), sso.Results(&results))
		if attrcache.CodeOf(err) == attrcache.CodeVersionMismatch {
			fmt.Printf("attempt %d: %s, the counter changed since it was read\n", attempt, attrcache.CodeOf(err))
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		version = results[0].Version
		break
	}
	attr, err := attrs.Get(ctx, "visits")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("visits = %s, the version the write answered: %v\n", attr.Value, attr.Version == version)

	// Create only if absent: the first write wins, the second finds the attribute.
	fmt.Println(attrs.Set(ctx, "owner", "alice", sso.IfVersion(0)))
	fmt.Println(attrcache.CodeOf(attrs.Set(ctx, "owner", "bob", sso.IfVersion(0))))
	// Output:
	// attempt 1: E009101, the counter changed since it was read
	// visits = 11, the version the write answered: true
	// <nil>
	// E009101
}

// With Atomic(false), a many-item write applies each item on its own: the items that fail are
// left out, the call's error wraps ErrSomeItemsFailed, and Results tells each item's outcome.
func ExampleAtomic() {
	ctx := context.Background()
	user, err := exampleUser(ctx, "example.attr.per.item")
	if err != nil {
		fmt.Println(err)
		return
	}
	attrs := user.Attr
	if err := attrs.Set(ctx, "plan", "basic"); err != nil {
		fmt.Println(err)
		return
	}
	stale := int64(1) // not plan's version
	var results []sso.AttrResult
	err = attrs.SetMany(ctx, []sso.AttrItem{
		{Name: "theme", Value: "dark"},
		{Name: "plan", Value: "pro", IfVersion: &stale},
		{Name: "bad\x00name", Value: 1},
		{Name: "locale", Value: "nb_NO"},
	}, sso.Atomic(false), sso.Results(&results))
	fmt.Println("some items failed:", errors.Is(err, sso.ErrSomeItemsFailed))
	for _, r := range results {
		if r.Err != nil {
			fmt.Printf("%q: %s\n", r.Name, attrcache.CodeOf(r.Err))
			continue
		}
		fmt.Printf("%q: written, version > 0: %v\n", r.Name, r.Version > 0)
	}
	names, err := attrs.Names(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(names)
	// Output:
	// some items failed: true
	// "theme": written, version > 0: true
	// "plan": E009101
	// "bad\x00name": E008002
	// "locale": written, version > 0: true
	// [locale plan theme]
}

func ExampleAPI_OpenChanges() {
	ctx := context.Background()
	ust, err := exampleSuperUser(ctx, "example.feed")
	if err != nil {
		fmt.Println(err)
		return
	}
	// A super-user reads everyone's events; with a user_id, that user's; a regular user their own.
	me, err := exampleAPI.GetCurrentUser(ctx, "cid-20", ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	feed, err := exampleAPI.OpenChanges(ctx, "cid-21", me.User.UserID, ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Start at the end: read what is there now, keeping only the cursor.
	cursor := ""
	for {
		page, err := feed.Read(ctx, cursor, sso.FeedMaxLimit, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		cursor = page.Next
		if len(page.Events) == 0 {
			break
		}
	}
	attrs, err := exampleAPI.UserAttrs(ctx, "cid-22", "", ust, "CRM", "10.151.17.19")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := attrs.Set(ctx, "theme", "dark"); err != nil {
		fmt.Println(err)
		return
	}
	if err := attrs.Delete(ctx, "theme"); err != nil {
		fmt.Println(err)
		return
	}
	// Long poll: wait up to 5 s for each event; values are never in the feed.
	for seen := 0; seen < 2; {
		page, err := feed.Read(ctx, cursor, 10, 5*time.Second)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range page.Events {
			fmt.Println(e.Op, e.Name, e.Session == "")
			seen++
		}
		cursor = page.Next
	}
	// Output:
	// set theme true
	// delete theme true
}
