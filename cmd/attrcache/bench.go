package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/attrcache/attrcache/loadtest"
)

const benchUsage = `attrcache bench: drive a load against a running attrcache (or Zato SSO) and report it.

Usage:
  attrcache bench [--url URL] (--username U [--password P] | --ust UST) [flags]

It logs the super-user in (or uses --ust), creates --users approved regular users, logs each in
and sets --attrs attributes of each, then drives the --mix for --duration or --requests, closed
loop (--concurrency workers back to back) or open loop (--rate requests per second, latency from
each request's scheduled time). It prints a table of throughput and latency percentiles per
operation (--json: the same as JSON), then deletes the users it created. Without --password or
--ust, the password is read from the first line of standard input.

With --feed it also reads the change feed as Server-Sent Events during the load, everyone's
events, and reports their delivery lag: the time each event arrived less its "time", when its
transaction logged it, just before the commit. After the load it writes one attribute as an end
mark and waits for it, so that every event of the load is counted.

Flags:
`

// defaultMany is the items of a many request unless --many says otherwise: at most --attrs.
const defaultMany = 100

// benchFlags are the settings of one `attrcache bench`.
type benchFlags struct {
	url, username, password, ust, app string
	mix                               string
	concurrency                       int
	rate                              float64
	duration, timeout                 time.Duration
	requests                          int64
	valueSize, users, attrs, many     int
	asJSON, allowRemote, feed         bool
	driver, wrkPath                   string
	wrkThreads                        int
}

func (c *cli) bench(ctx context.Context, args []string) error {
	fs := newFlagSet("bench")
	var f benchFlags
	fs.StringVar(&f.url, "url", "http://127.0.0.1:17010", "base URL of the service")
	fs.StringVar(&f.username, "username", "", "super-user to log in as")
	fs.StringVar(&f.password, "password", "", "the super-user's password (else read from standard input)")
	fs.StringVar(&f.ust, "ust", "", "a super-user's UST, instead of --username and --password")
	fs.StringVar(&f.app, "app", "CRM", "current_app of every request")
	fs.StringVar(&f.mix, "mix", "get=80,set=15,set_many=3,get_many=2", "operations and their relative weights")
	fs.IntVar(&f.concurrency, "concurrency", 64, "workers (closed loop), or the most requests in flight (open loop)")
	fs.Float64Var(&f.rate, "rate", 0, "requests per second of the open loop; 0 runs the closed loop")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send requests (0: only --requests bounds the run)")
	fs.Int64Var(&f.requests, "requests", 0, "how many requests to send (0: only --duration bounds the run)")
	fs.IntVar(&f.valueSize, "value-size", 100, "characters of each attribute value")
	fs.IntVar(&f.users, "users", 16, "regular users to create")
	fs.IntVar(&f.attrs, "attrs", 100, "attributes of each user")
	fs.IntVar(&f.many, "many", defaultMany, "items of each set_many and get_many request (default: at most --attrs)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit of one request")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a URL that is not a loopback address")
	fs.StringVar(&f.driver, "driver", "builtin", "what sends the closed loop's requests: builtin, or wrk (a C load generator; one operation, no --requests)")
	fs.StringVar(&f.wrkPath, "wrk", "wrk", "the wrk executable of --driver wrk")
	fs.IntVar(&f.wrkThreads, "wrk-threads", runtime.NumCPU(), "wrk's threads (--driver wrk), at most --concurrency")
	fs.BoolVar(&f.feed, "feed", false, "read the change feed as Server-Sent Events during the load and report its delivery lag")
	fs.Usage = func() {
		fs.SetOutput(c.stdout)
		fmt.Fprint(c.stdout, benchUsage)
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if !flagSet(fs, "many") {
		f.many = min(defaultMany, f.attrs)
	}
	if !f.allowRemote {
		if err := loadtest.CheckLoopback(f.url); err != nil {
			return fmt.Errorf("bench: %w (--allow-remote permits it)", err)
		}
	}
	mix, err := loadtest.ParseMix(f.mix)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if f.ust == "" {
		if f.username == "" {
			return errors.New("bench: give --username (with --password or the password on standard input) or --ust")
		}
		if f.password, err = c.password(fs, f.password); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}

	opts := loadtest.Options{
		Mix: mix, Concurrency: f.concurrency, Rate: f.rate, Duration: f.duration, Requests: f.requests,
		Progress: c.stderr, ProgressTTY: isTerminal(c.stderr), Seed: uint64(time.Now().UnixNano()),
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	drive := func(ctx context.Context, target *loadtest.ZatoTarget) (*loadtest.Report, error) {
		return loadtest.Run(ctx, target, opts)
	}
	switch f.driver {
	case "builtin":
	case "wrk":
		wrk := loadtest.WrkConfig{Path: f.wrkPath, Threads: f.wrkThreads, Timeout: f.timeout}
		if _, _, err := wrk.Check(opts); err != nil {
			return fmt.Errorf("bench: --driver wrk: %w", err)
		}
		drive = func(ctx context.Context, target *loadtest.ZatoTarget) (*loadtest.Report, error) {
			return loadtest.RunWrk(ctx, target, opts, wrk)
		}
	default:
		return fmt.Errorf("bench: --driver %q: want builtin or wrk", f.driver)
	}

	fmt.Fprintf(c.stderr, "preparing %d users with %d attributes each\n", f.users, f.attrs)
	target, err := loadtest.PrepareZato(ctx, loadtest.ZatoConfig{
		BaseURL: f.url, CurrentApp: f.app,
		SuperUserUST: f.ust, SuperUserName: f.username, SuperUserPassword: f.password,
		Users: f.users, Attrs: f.attrs, Many: f.many, ValueSize: f.valueSize,
		Client: loadtest.NewHTTPClient(f.concurrency, f.timeout),
	})
	if err != nil {
		return fmt.Errorf("bench: preparing: %w", err)
	}
	report, feed, runErr := runLoad(ctx, target, drive, f.feed)
	// The users go even after an interrupted run.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := target.Cleanup(cleanupCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("removing the load's users: %w", err))
	}
	if report == nil {
		return fmt.Errorf("bench: %w", runErr)
	}
	if err := c.writeBenchReport(report, feed, f); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return fmt.Errorf("bench: %w", runErr)
	}
	return nil
}

// runLoad drives the load on target with drive and, with watchFeed, reads the change feed
// meanwhile.
func runLoad(ctx context.Context, target *loadtest.ZatoTarget, drive func(context.Context, *loadtest.ZatoTarget) (*loadtest.Report, error), watchFeed bool) (*loadtest.Report, *loadtest.FeedReport, error) {
	if !watchFeed {
		report, err := drive(ctx, target)
		return report, nil, err
	}
	watch, err := target.WatchFeed(ctx)
	if err != nil {
		return nil, nil, err
	}
	report, runErr := drive(ctx, target)
	feed, err := watch.Stop(ctx)
	return report, feed, errors.Join(runErr, err)
}

// benchReport is the JSON of `attrcache bench --json`: the run's report, the shape of its data
// (so that rows per second can be derived from requests per second), and with --feed what the
// change feed's reader measured.
type benchReport struct {
	*loadtest.Report
	Users     int                  `json:"users"`
	Attrs     int                  `json:"attrs"`
	Many      int                  `json:"many"`
	ValueSize int                  `json:"value_size"`
	Feed      *loadtest.FeedReport `json:"feed,omitempty"`
}

func (c *cli) writeBenchReport(report *loadtest.Report, feed *loadtest.FeedReport, f benchFlags) error {
	if f.asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(benchReport{Report: report, Users: f.users, Attrs: f.attrs, Many: f.many, ValueSize: f.valueSize, Feed: feed})
	}
	if err := report.WriteText(c.stdout); err != nil || feed == nil {
		return err
	}
	l := feed.Lag
	_, err := fmt.Fprintf(c.stdout, "\nchange feed: %d events, delivery lag p50 %.3f ms, p99 %.3f ms, max %.3f ms (%d earlier events left out)\n",
		feed.Events, l.P50, l.P99, l.Max, feed.Earlier)
	return err
}

// isTerminal reports whether w is a terminal (a character device), where progress rewrites
// one line instead of adding lines.
func isTerminal(w io.Writer) bool {
	file, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
