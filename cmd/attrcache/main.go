// Command attrcache runs the attrcache service (a Go implementation of Zato SSO's users,
// sessions and user attributes, with MySQL as the system of record and Redis as the cache) and
// its administration commands.
//
// Usage:
//
//	attrcache serve [--dev]      apply pending migrations, then serve HTTP
//	attrcache migrate            apply pending migrations only
//	attrcache sso COMMAND ...    administer users (attrcache help lists the commands)
//	attrcache keys status|rewrap key rotation: count sealed values per key id, re-seal them
//	attrcache bench [flags]      load-test a running attrcache (attrcache bench -h)
//	attrcache --version
//
// Settings come from configs/attrcache.yaml (or the file ATTRCACHE_CONFIG names) and from
// ATTRCACHE_* environment variables; the secret key only from ATTRCACHE_SECRET_KEY or
// ATTRCACHE_SECRET_KEYS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// Joined errors (a failure and then a failed clean-up) span lines; keep the message to one.
		fmt.Fprintln(os.Stderr, "attrcache:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// Set at build time with -ldflags "-X main.version=v1.2.3 -X main.commit=abc123"; when empty,
// the build information the Go toolchain records is used instead.
var (
	version string
	commit  string
)

const usage = `attrcache: Zato SSO users, sessions and attributes on MySQL, cached in Redis.

Usage:
  attrcache serve [--dev]
        Apply pending migrations (creating the database if needed), then serve HTTP.
        --dev generates a throwaway secret key when none is set.
  attrcache migrate
        Apply pending migrations and exit.
  attrcache sso create-super-user USERNAME [--password P] [--email E]
  attrcache sso create-user USERNAME [--password P] [--email E]
  attrcache sso lock-user USERNAME
  attrcache sso unlock-user USERNAME
  attrcache sso delete-user USERNAME
  attrcache sso change-user-password USERNAME [--password P] [--expiry DAYS] [--must-change]
  attrcache sso reset-totp-key USERNAME [--key BASE32]
        Administer users. Each prints the user_id (reset-totp-key also the new key).
        Without --password, the password is read from the first line of standard input.
  attrcache sso export-user USERNAME
        Print everything held about the user as JSON, as GET /zato/sso/user/export answers it.
  attrcache keys status
        Count the stored values (attribute values, e-mails, TOTP keys) each key id seals, and
        flag those sealed with a key id that is not configured (exit code 1 then).
  attrcache keys rewrap [--batch N] [--rate R]
        Re-seal, with the newest key, every value sealed with an older one, while serve runs.
        Safe to stop and run again. --rate bounds rows per second (0: unbounded).
  attrcache bench [--url URL] (--username U [--password P] | --ust UST) [--mix M] [--concurrency N | --rate R] [--duration D] [--requests N] ...
        Load-test a running attrcache; 'attrcache bench -h' lists the flags.
  attrcache --version
  attrcache help

Settings: configs/attrcache.yaml (or the file in ATTRCACHE_CONFIG), overridden by ATTRCACHE_*
environment variables. The secret key comes from ATTRCACHE_SECRET_KEY or ATTRCACHE_SECRET_KEYS.
`

// cli is one invocation of the command: its environment and standard streams.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run carries out the command line args (without the program name) and returns what went wrong,
// in one line. serve returns nil after a graceful shutdown once ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		return errors.New("no command given; run 'attrcache help' for the list")
	}
	switch name, rest := args[0], args[1:]; name {
	case "serve":
		return c.serve(ctx, rest)
	case "migrate":
		return c.migrate(ctx, rest)
	case "sso":
		return c.sso(ctx, rest)
	case "keys":
		return c.keys(ctx, rest)
	case "bench":
		return c.bench(ctx, rest)
	case "--version", "-version", "version":
		_, err := fmt.Fprintln(stdout, versionString())
		return err
	case "help", "--help", "-help", "-h":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		return fmt.Errorf("unknown command %q; run 'attrcache help' for the list", name)
	}
}

// versionString names the version, the commit it was built from and the Go release.
func versionString() string {
	v, rev := buildVersion()
	return fmt.Sprintf("attrcache %s (commit %s, %s)", v, rev, runtime.Version())
}

// buildVersion returns the version and the commit of this build: those set with -ldflags, else
// those the Go toolchain recorded ("(devel)" and "unknown" when it recorded none). The commit
// ends in "-dirty" when the working tree had changes.
func buildVersion() (v, rev string) {
	v, rev, modified := version, commit, false
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	if modified {
		rev += "-dirty"
	}
	return v, rev
}

// newFlagSet returns a flag set for a subcommand that reports errors to the caller instead of
// printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgs parses args with fs, allowing flags before, between and after the positional
// arguments, and returns the positional arguments in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%s: %w; run 'attrcache help'", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseNoArgs parses args with fs and fails on any positional argument.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), positional[0])
	}
	return nil
}
