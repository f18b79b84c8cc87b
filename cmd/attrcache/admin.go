package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/sso"
)

// migrate runs `attrcache migrate`: it creates the database if needed, applies pending
// migrations and logs the name of each one applied. Like every command that opens the
// database, it needs the secret key.
func (c *cli) migrate(ctx context.Context, args []string) error {
	if err := parseNoArgs(newFlagSet("migrate"), args); err != nil {
		return err
	}
	cfg, err := loadConfig(c.getenv)
	if err != nil {
		return err
	}
	keys, err := secretKeyring(c.getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg, keys, newLogger(cfg, c.stderr))
	if err != nil {
		return err
	}
	return closeWith("mysql", db)
}

// sso runs `attrcache sso COMMAND USERNAME [flags]`: Zato's `zato sso …` administration commands.
// They act by username, need no session, and print the user_id of the user they affect.
func (c *cli) sso(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("sso: no command given; run 'attrcache help' for the list")
	}
	name, args := args[0], args[1:]
	fs := newFlagSet("sso " + name)
	var do func(api *sso.API, username string) error
	// passwordFlag is set by the commands that take a password, which is read before any
	// connection is made.
	var passwordFlag *string
	var password string
	switch name {
	case "create-super-user", "create-user":
		passwordFlag = fs.String("password", "", "the password (default: the first line of standard input)")
		email := fs.String("email", "", "the e-mail address")
		do = func(api *sso.API, username string) error {
			in := sso.CreateUserInput{Username: username, Password: &password}
			if flagSet(fs, "email") {
				in.Email = email
			}
			u, err := api.AdminCreateUser(ctx, in, name == "create-super-user")
			if err != nil {
				return err
			}
			return c.println(u.UserID)
		}
	case "lock-user", "unlock-user":
		do = func(api *sso.API, username string) error {
			return c.printUserID(api.AdminSetLocked(ctx, username, name == "lock-user"))
		}
	case "delete-user":
		do = func(api *sso.API, username string) error {
			return c.printUserID(api.AdminDeleteUser(ctx, username))
		}
	case "change-user-password":
		passwordFlag = fs.String("password", "", "the new password (default: the first line of standard input)")
		expiryDays := fs.Int("expiry", 0, "days until the password expires (0: password.expiry_days)")
		mustChange := fs.Bool("must-change", false, "make the user change the password at the next login")
		do = func(api *sso.API, username string) error {
			return c.printUserID(api.AdminChangePassword(ctx, username, password, *expiryDays, *mustChange))
		}
	case "reset-totp-key":
		key := fs.String("key", "", "the new TOTP key, base32 (default: a generated one)")
		do = func(api *sso.API, username string) error {
			userID, totpKey, err := api.AdminResetTOTPKey(ctx, username, *key)
			if err != nil {
				return err
			}
			return c.println(userID + "\n" + totpKey)
		}
	case "export-user":
		do = func(api *sso.API, username string) error {
			e, err := api.AdminExportUser(ctx, username)
			if err != nil {
				return err
			}
			if err := httpapi.WriteExport(ctx, c.stdout, e); err != nil {
				return err
			}
			return c.println("")
		}
	default:
		return fmt.Errorf("sso: unknown command %q; run 'attrcache help' for the list", name)
	}

	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return fmt.Errorf("%s: want exactly one USERNAME, got %d arguments", fs.Name(), len(positional))
	}
	username := positional[0]
	if passwordFlag != nil {
		if password, err = c.password(fs, *passwordFlag); err != nil {
			return fmt.Errorf("%s: %w", fs.Name(), err)
		}
	}
	if err := c.withAPI(ctx, func(api *sso.API) error { return do(api, username) }); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), describeAdminError(err, username))
	}
	return nil
}

// withAPI opens the backends with the configured secret key, calls fn with the Go API over them,
// and closes them.
func (c *cli) withAPI(ctx context.Context, fn func(*sso.API) error) error {
	return c.withBackends(ctx, func(b *backends, _ *attrcache.Keyring) error { return fn(b.api) })
}

// password returns the --password flag when it was given, else the first line of standard input.
func (c *cli) password(fs *flag.FlagSet, flagValue string) (string, error) {
	if flagSet(fs, "password") {
		return flagValue, nil
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: give --password or write it on standard input")
	}
	return line, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func (c *cli) println(s string) error {
	_, err := fmt.Fprintln(c.stdout, s)
	return err
}

// printUserID prints the user_id an admin call returned, or returns its error.
func (c *cli) printUserID(userID string, err error) error {
	if err != nil {
		return err
	}
	return c.println(userID)
}

// describeAdminError words the errors an operator can act on; the others pass as they are.
func describeAdminError(err error, username string) error {
	switch {
	case attrcache.CodeOf(err) == attrcache.CodeUsernameExists || errors.Is(err, attrcache.ErrConflict):
		return fmt.Errorf("user %q already exists", username)
	case errors.Is(err, attrcache.ErrNotFound):
		return fmt.Errorf("no user named %q", username)
	}
	return err
}
