// Package sso is attrcache's Go API: Zato SSO's users, sessions and user and session attributes
// as Go calls, over the store interfaces of package attrcache. The HTTP layer is a thin adapter
// over it.
//
// Every call that acts for a logged-in user takes the caller's UST, current_app and remote
// address last, as Zato's Python API does, and re-checks the user (locked, not approved,
// password expired) before doing anything. Errors are *attrcache.Error values carrying the Zato
// status code the client sees.
//
// A user_id names a user only in the exact form attrcache.NewUserID makes (attrcache.ValidUserID):
// any other spelling, padded, re-cased, longer or shorter, is an unknown user, refused before any
// store is asked.
package sso

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/attrcache/attrcache"
)

// HashParams are the argon2id parameters of new password hashes. Hashes keep the parameters they
// were made with, so changing these affects only passwords set afterwards.
type HashParams struct {
	Time      uint32 // iterations, at least 1
	MemoryKiB uint32
	Threads   uint8  // at least 1
	KeyLen    uint32 // 0: 32
	SaltLen   uint32 // 0: 16
}

// ThrottleConfig bounds password guessing, at login and in a user's own password change: at most
// PerUsername wrong passwords for one username and PerAddress for one client address within
// Window; 0 disables that limit.
//
// Counter, when set, holds counts that every instance of the service shares (cache's, in
// Redis); the API also counts in process, and relies on that alone while Counter fails. At most
// MaxTracked usernames and as many addresses are remembered in process (0: 100,000 each); past
// that the ones whose last failure is oldest are forgotten first.
type ThrottleConfig struct {
	PerUsername int
	PerAddress  int
	Window      time.Duration
	MaxTracked  int
	Counter     attrcache.FailureCounter
}

// SignupThrottleConfig bounds sign-ups: at most PerAddress attempts from one client address within
// Window; 0 disables the limit. They are counted where ThrottleConfig's are.
type SignupThrottleConfig struct {
	PerAddress int
	Window     time.Duration
}

// Config is the behaviour of the API (Zato's sso.conf, under attrcache's names).
type Config struct {
	Apps           []string // current_app values allowed at all and for login (apps.all, apps.login_allowed)
	SignupApps     []string // current_app values that may sign up (apps.signup_allowed)
	ApprovalNeeded bool     // signup.is_approval_needed

	SessionExpiry time.Duration // session.expiry

	Password       attrcache.PasswordPolicy
	PasswordExpiry time.Duration // password.expiry: how long a new password lasts
	AboutToExpire  time.Duration // password.about_to_expire_threshold
	Hash           HashParams

	SearchDefaultPageSize int
	SearchMaxPageSize     int

	// MaxAttrValueBytes bounds the JSON text of one attribute value (before encryption); 0 means
	// attrcache.DefaultMaxValueBytes.
	MaxAttrValueBytes int

	Throttle       ThrottleConfig
	SignupThrottle SignupThrottleConfig

	// Audit, when set, records every call that reads or changes a user's data (see AuditEntry);
	// nil records nothing.
	Audit Auditor

	// Now returns the current time; nil means attrcache.Now. Tests set it to move time.
	Now func() time.Time

	// Feed is the change feed that OpenChanges reads; nil: the feed answers 503.
	Feed attrcache.ChangeFeed
	// FeedPollInterval is how often an instance with readers waiting on the feed asks it whether
	// it has grown; 0 means 20 ms.
	FeedPollInterval time.Duration
}

// DefaultConfig returns Zato's defaults (sso.conf as created by zato create server).
func DefaultConfig() Config {
	return Config{
		Apps:           []string{"CRM"},
		ApprovalNeeded: true,
		SessionExpiry:  60 * time.Minute,
		Password: attrcache.PasswordPolicy{
			MinLength:  8,
			MaxLength:  256,
			RejectList: attrcache.DefaultRejectList,
		},
		PasswordExpiry:        730 * 24 * time.Hour,
		AboutToExpire:         30 * 24 * time.Hour,
		Hash:                  HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}, // OWASP's argon2id minimum
		SearchDefaultPageSize: 50,
		SearchMaxPageSize:     100,
		MaxAttrValueBytes:     attrcache.DefaultMaxValueBytes,
		Throttle:              ThrottleConfig{PerUsername: 10, PerAddress: 50, Window: 5 * time.Minute},
		SignupThrottle:        SignupThrottleConfig{PerAddress: 10, Window: time.Hour},
	}
}

// API is the Go API. It is safe for concurrent use.
type API struct {
	cfg      Config
	keys     *attrcache.Keyring
	users    attrcache.UserStore
	sessions attrcache.SessionStore
	attrs    attrcache.AttrStore
	throttle *throttle
	// dummyHash is verified against when a login names no usable user, so that such a login
	// takes as long as one with a wrong password and does not reveal which usernames exist.
	dummyHash string

	feedOnce sync.Once
	watcher  *feedWatcher
}

// New returns the API over the given stores. keys seals USTs and encrypted attribute values. It
// fails for a configuration that cannot work: no app, a non-positive session or password lifetime
// or page size, a negative attribute value limit, or argon2id parameters below one iteration or
// one thread.
func New(cfg Config, keys *attrcache.Keyring, users attrcache.UserStore, sessions attrcache.SessionStore, attrs attrcache.AttrStore) (*API, error) {
	if keys == nil || users == nil || sessions == nil || attrs == nil {
		return nil, errors.New("sso.New: keys, users, sessions and attrs are required")
	}
	if err := validateConfig(&cfg); err != nil {
		return nil, err
	}
	dummyHash, err := hashPassword(cfg.Hash, randomToken())
	if err != nil {
		return nil, err
	}
	return &API{
		cfg:       cfg,
		keys:      keys,
		users:     users,
		sessions:  sessions,
		attrs:     attrs,
		throttle:  newThrottle(cfg.Throttle, cfg.SignupThrottle, cfg.Now),
		dummyHash: dummyHash,
	}, nil
}

// validateConfig fills the defaults documented on Config and refuses values that cannot work.
func validateConfig(cfg *Config) error {
	switch {
	case len(cfg.Apps) == 0:
		return errors.New("sso.New: Config.Apps lists no application")
	case cfg.SessionExpiry <= 0:
		return errors.New("sso.New: Config.SessionExpiry must be positive")
	case cfg.PasswordExpiry <= 0:
		return errors.New("sso.New: Config.PasswordExpiry must be positive")
	case cfg.SearchDefaultPageSize <= 0 || cfg.SearchMaxPageSize < cfg.SearchDefaultPageSize:
		return errors.New("sso.New: Config.SearchDefaultPageSize must be positive and at most SearchMaxPageSize")
	case cfg.Hash.Time < 1 || cfg.Hash.Threads < 1:
		return errors.New("sso.New: Config.Hash needs at least one iteration and one thread")
	case cfg.MaxAttrValueBytes < 0:
		return errors.New("sso.New: Config.MaxAttrValueBytes must not be negative")
	}
	if cfg.MaxAttrValueBytes == 0 {
		cfg.MaxAttrValueBytes = attrcache.DefaultMaxValueBytes
	}
	if cfg.Hash.KeyLen == 0 {
		cfg.Hash.KeyLen = 32
	}
	if cfg.Hash.SaltLen == 0 {
		cfg.Hash.SaltLen = 16
	}
	if cfg.Now == nil {
		cfg.Now = attrcache.Now
	}
	return nil
}

// now is the current time as stored: UTC, to the microsecond.
func (a *API) now() time.Time { return a.cfg.Now().UTC().Truncate(time.Microsecond) }

// checkApp is the first check of every call: current_app must be one of Config.Apps (E004001).
func (a *API) checkApp(app string) error {
	if slices.Contains(a.cfg.Apps, app) {
		return nil
	}
	return appInvalid()
}

// appInvalid is the answer to an unknown current_app: HTTP 200 with E004001, as Zato answers.
func appInvalid() *attrcache.Error {
	return &attrcache.Error{Kind: attrcache.KindAppInvalid, Code: attrcache.CodeAppInvalid, Message: "unknown current_app"}
}
