package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/attrcache/attrcache/client"
)

// The examples run against the test server that TestMain serves at serverURL, whose super-user
// is adminUsername with adminPassword; in a program, they are your server's URL and credentials.

// A super-user creates a user; the user logs in and keeps an attribute of their own.
func Example() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM")
	if err != nil {
		log.Fatal(err)
	}
	admin, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Logout(ctx)

	password := "correct-horse-battery"
	alice, err := admin.CreateUser(ctx, client.NewUser{Username: "example-alice", Password: &password, AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	defer admin.DeleteUser(ctx, alice.UserID)

	session, err := c.Login(ctx, client.Credentials{Username: "example-alice", Password: password})
	if err != nil {
		log.Fatal(err)
	}
	attrs := session.UserAttrs("") // the caller's own
	if err := attrs.Set(ctx, "theme", "dark", client.ExpiresIn(time.Hour)); err != nil {
		log.Fatal(err)
	}
	attr, err := attrs.Get(ctx, "theme")
	if err != nil {
		log.Fatal(err)
	}
	var theme string
	if err := attr.Decode(&theme); err != nil {
		log.Fatal(err)
	}
	fmt.Println(theme, "expires:", !attr.ExpirationTime.IsNever())
	// Output: dark expires: true
}

// Many attributes go in one call, all or nothing; GetMany answers nil for a missing name.
func ExampleAttrs_SetMany() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM")
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Logout(ctx)
	attrs := s.SessionAttrs(s.UST) // the session's own, gone when it ends

	err = attrs.SetMany(ctx, []client.Item{
		{Name: "cart", Value: []string{"apple", "pear"}},
		{Name: "token", Value: "t0k3n", Encrypt: new(true)},
	})
	if err != nil {
		log.Fatal(err)
	}
	got, err := attrs.GetMany(ctx, []string{"cart", "token", "coupon"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(got["cart"].Value), string(got["token"].Value), got["token"].IsEncrypted, got["coupon"] == nil)
	names, err := attrs.Names(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(names)
	// Output:
	// ["apple","pear"] "t0k3n" true true
	// [cart token]
}

// A read-modify-write that no concurrent write can undo: IfVersion makes the write apply only
// while the attribute has the version that was read; on E009101, read again and retry.
func ExampleIfVersion() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM")
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Logout(ctx)
	attrs := s.SessionAttrs(s.UST)
	if err := attrs.Set(ctx, "visits", 0); err != nil {
		log.Fatal(err)
	}

	increment := func() error {
		for {
			attr, err := attrs.Get(ctx, "visits")
			if err != nil {
				return err
			}
			var visits int
			if err := attr.Decode(&visits); err != nil {
				return err
			}
			err = attrs.Set(ctx, "visits", visits+1, client.IfVersion(attr.Version))
			if !errors.Is(err, client.CodeVersionMismatch) {
				return err
			}
		}
	}
	for range 3 {
		if err := increment(); err != nil {
			log.Fatal(err)
		}
	}
	attr, err := attrs.Get(ctx, "visits")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(attr.Value))

	// IfVersion(0): only if absent.
	err = attrs.Set(ctx, "visits", 100, client.IfVersion(0))
	fmt.Println(client.CodeOf(err))
	// Output:
	// 3
	// E009101
}

// With Atomic(false), the items of a many call that fail are left out and the others written;
// Results tells each item's outcome.
func ExampleAtomic() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM")
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Logout(ctx)
	attrs := s.SessionAttrs(s.UST)
	if err := attrs.Set(ctx, "plan", "basic"); err != nil {
		log.Fatal(err)
	}

	var results []client.ItemResult
	err = attrs.CreateMany(ctx, []client.Item{{Name: "theme", Value: "dark"}, {Name: "plan", Value: "pro"}},
		client.Atomic(false), client.Results(&results))
	fmt.Println(errors.Is(err, client.ErrSomeItemsFailed))
	for _, r := range results {
		if r.Err != nil {
			fmt.Println(r.Name, "failed:", client.CodeOf(r.Err))
			continue
		}
		fmt.Println(r.Name, "written, has a version:", r.Version > 0)
	}
	// Output:
	// true
	// theme written, has a version: true
	// plan failed: E009001
}

// A refused call is an *Error: errors.Is tests for one of Zato's codes, errors.As reaches the
// HTTP status and the rest.
func ExampleError() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM")
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Logout(ctx)
	attrs := s.UserAttrs("")
	defer attrs.Delete(ctx, "once")

	if err := attrs.Create(ctx, "once", 1); err != nil {
		log.Fatal(err)
	}
	err = attrs.Create(ctx, "once", 2)
	fmt.Println(errors.Is(err, client.CodeAttrExists))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.HTTPStatus, e.Code())
	}
	_, err = c.Login(ctx, client.Credentials{Username: adminUsername, Password: "wrong"})
	fmt.Println(client.CodeOf(err))
	// Output:
	// true
	// 403 E009001
	// E005001
}

// A login whose password is about to expire succeeds with a warning.
func ExampleClient_Login() {
	ctx := context.Background()
	c, err := client.New(serverURL, "CRM", client.WithTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, client.Credentials{Username: adminUsername, Password: adminPassword})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Logout(ctx)
	for _, w := range s.Warnings {
		if w == client.CodePasswordAboutToExpire {
			fmt.Println("time to change the password")
		}
	}
	fmt.Println("logged in:", s.UST != "")
	// Output: logged in: true
}
