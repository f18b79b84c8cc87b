package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/cache"
	"github.com/attrcache/attrcache/persist"
	"github.com/attrcache/attrcache/sso"
)

// envPrefix starts the name of every environment variable that overrides a setting. A setting at
// YAML path a.b_c is overridden by ATTRCACHE_A_B_C.
const envPrefix = "ATTRCACHE_"

// Environment variables that are not settings of the file.
const (
	envConfigPath = "ATTRCACHE_CONFIG"
	envSecretKey  = "ATTRCACHE_SECRET_KEY"
	envSecretKeys = "ATTRCACHE_SECRET_KEYS"
)

// defaultConfigPath is read when ATTRCACHE_CONFIG is unset and the file exists (relative to the
// working directory).
const defaultConfigPath = "configs/attrcache.yaml"

const day = 24 * time.Hour

// config is every setting of attrcache. configs/attrcache.yaml holds each with its default and
// what it means; the field tags are the YAML keys, from which the environment names derive.
type config struct {
	HTTP           httpConfig           `yaml:"http"`
	MySQL          mysqlConfig          `yaml:"mysql"`
	Redis          redisConfig          `yaml:"redis"`
	Cache          cacheConfig          `yaml:"cache"`
	Apps           []string             `yaml:"apps"`
	SignupApps     []string             `yaml:"signup_apps"`
	ApprovalNeeded bool                 `yaml:"approval_needed"`
	Session        sessionConfig        `yaml:"session"`
	Password       passwordConfig       `yaml:"password"`
	Argon2         argon2Config         `yaml:"argon2"`
	LoginThrottle  throttleConfig       `yaml:"login_throttle"`
	SignupThrottle signupThrottleConfig `yaml:"signup_throttle"`
	Search         searchConfig         `yaml:"search"`
	Attributes     attrsConfig          `yaml:"attributes"`
	Quota          quotaConfig          `yaml:"quota"`
	Purge          purgeConfig          `yaml:"purge"`
	Changes        changesConfig        `yaml:"changes"`
	Log            logConfig            `yaml:"log"`
	Audit          auditConfig          `yaml:"audit"`
	Debug          debugConfig          `yaml:"debug"`
	Memory         memoryConfig         `yaml:"memory"`
}

type httpConfig struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	DrainDelay        time.Duration `yaml:"drain_delay"`

	// TrustedProxies are CIDRs (or single addresses) of the proxies whose forwarded headers
	// are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

type mysqlConfig struct {
	DSN          string            `yaml:"dsn"`
	MaxOpenConns int               `yaml:"max_open_conns"`
	MaxIdleConns int               `yaml:"max_idle_conns"`
	GroupCommit  groupCommitConfig `yaml:"group_commit"`
}

type groupCommitConfig struct {
	MaxRows int           `yaml:"max_rows"`
	MaxWait time.Duration `yaml:"max_wait"`
	Workers int           `yaml:"workers"`
}

type redisConfig struct {
	URL    string   `yaml:"url"`
	Addrs  []string `yaml:"addrs"`
	Master string   `yaml:"master"`
	Prefix string   `yaml:"prefix"`
}

type cacheConfig struct {
	PrincipalTTL time.Duration `yaml:"principal_ttl"`
	AbsentTTL    time.Duration `yaml:"absent_ttl"`
	AbsentMax    int           `yaml:"absent_max"`
	MaxTTL       time.Duration `yaml:"max_ttl"`

	FailoverCheckInterval time.Duration `yaml:"failover_check_interval"`
	FailoverReplayWindow  time.Duration `yaml:"failover_replay_window"`
}

// changesConfig is the change log's: its relay (cache.Relay), retention, and the change feed's
// sequencer and readers. The log is always kept; Feed turns only the feed on or off.
type changesConfig struct {
	RelayGrace    time.Duration `yaml:"relay_grace"`
	RelayInterval time.Duration `yaml:"relay_interval"`
	Retention     time.Duration `yaml:"retention"`
	Feed          bool          `yaml:"feed"`
	FeedInterval  time.Duration `yaml:"feed_interval"`
}

// Bounds of changes.feed_interval: the least time between two runs of the sequencer, and how
// often waiting readers look for events other instances numbered, which the feed's lag follows.
const (
	minFeedInterval     = 5 * time.Millisecond
	maxFeedInterval     = time.Second
	defaultFeedInterval = 20 * time.Millisecond
)

// Bounds of the relay's settings: a change is applied within grace + interval (and a poll) of
// its commit, which must stay well under the 1 s bound of coherence across instances.
const (
	minRelayGrace       = 50 * time.Millisecond
	minRelayInterval    = 10 * time.Millisecond
	maxRelayGraceAndInt = 800 * time.Millisecond
)

type sessionConfig struct {
	Expiry time.Duration `yaml:"expiry"`
}

type passwordConfig struct {
	MinLength         int      `yaml:"min_length"`
	MaxLength         int      `yaml:"max_length"`
	RejectList        []string `yaml:"reject_list"`
	ExpiryDays        int      `yaml:"expiry_days"`
	AboutToExpireDays int      `yaml:"about_to_expire_days"`
}

type argon2Config struct {
	Time      uint32 `yaml:"time"`
	MemoryKiB uint32 `yaml:"memory_kib"`
	Threads   uint8  `yaml:"threads"`
}

type throttleConfig struct {
	PerUsername int           `yaml:"per_username"`
	PerAddress  int           `yaml:"per_address"`
	Window      time.Duration `yaml:"window"`
}

type signupThrottleConfig struct {
	PerAddress int           `yaml:"per_address"`
	Window     time.Duration `yaml:"window"`
}

type searchConfig struct {
	DefaultPageSize int `yaml:"default_page_size"`
	MaxPageSize     int `yaml:"max_page_size"`
}

type attrsConfig struct {
	MaxValueBytes int `yaml:"max_value_bytes"`
}

type quotaConfig struct {
	MaxAttrs int   `yaml:"max_attrs"`
	MaxBytes int64 `yaml:"max_bytes"`
}

type purgeConfig struct {
	Interval time.Duration `yaml:"interval"`
	Batch    int           `yaml:"batch"`
}

type logConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// auditConfig is where serve writes the audit log (CONTRACT.md §10 "Audit").
type auditConfig struct {
	Sink string `yaml:"sink"` // auditStderr, auditNone, or the path of a file opened for appending
}

// The audit sinks that are not files: standard error, shared with the log; and none, which
// audits nothing.
const (
	auditStderr = "stderr"
	auditNone   = "none"
)

type debugConfig struct {
	PprofAddr string `yaml:"pprof_addr"`
}

// memoryConfig bounds the process's memory: what request bodies hold at once, and the Go
// runtime's soft limit.
type memoryConfig struct {
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
	Limit                int64 `yaml:"limit"`
}

// defaultConfig returns the built-in defaults; configs/attrcache.yaml states the same values.
// The SSO behaviour defaults are sso.DefaultConfig's (Zato's).
func defaultConfig() config {
	d := sso.DefaultConfig()
	return config{
		HTTP: httpConfig{
			Addr:              "127.0.0.1:17010",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      8 << 20,
			ShutdownTimeout:   15 * time.Second,
			DrainDelay:        5 * time.Second,
			TrustedProxies:    []string{},
		},
		MySQL: mysqlConfig{
			DSN:          "root@tcp(127.0.0.1:3306)/attrcache?parseTime=true",
			MaxOpenConns: 64,
			MaxIdleConns: 64,
			GroupCommit:  groupCommitConfig{MaxRows: 256, MaxWait: time.Millisecond, Workers: 1},
		},
		Redis: redisConfig{
			URL:    "redis://127.0.0.1:6379/0",
			Addrs:  []string{},
			Prefix: "attrcache:",
		},
		Cache: cacheConfig{
			PrincipalTTL: cache.DefaultPrincipalTTL, AbsentTTL: cache.DefaultAbsentTTL, AbsentMax: cache.DefaultAbsentMax, MaxTTL: cache.DefaultMaxTTL,
			FailoverCheckInterval: cache.DefaultFailoverCheckInterval, FailoverReplayWindow: cache.DefaultFailoverReplayWindow,
		},
		Apps:           d.Apps,
		SignupApps:     append([]string{}, d.SignupApps...),
		ApprovalNeeded: d.ApprovalNeeded,
		Session:        sessionConfig{Expiry: d.SessionExpiry},
		Password: passwordConfig{
			MinLength:         d.Password.MinLength,
			MaxLength:         d.Password.MaxLength,
			RejectList:        d.Password.RejectList,
			ExpiryDays:        int(d.PasswordExpiry / day),
			AboutToExpireDays: int(d.AboutToExpire / day),
		},
		Argon2: argon2Config{Time: d.Hash.Time, MemoryKiB: d.Hash.MemoryKiB, Threads: d.Hash.Threads},
		LoginThrottle: throttleConfig{
			PerUsername: d.Throttle.PerUsername,
			PerAddress:  d.Throttle.PerAddress,
			Window:      d.Throttle.Window,
		},
		SignupThrottle: signupThrottleConfig{
			PerAddress: d.SignupThrottle.PerAddress,
			Window:     d.SignupThrottle.Window,
		},
		Search:     searchConfig{DefaultPageSize: d.SearchDefaultPageSize, MaxPageSize: d.SearchMaxPageSize},
		Attributes: attrsConfig{MaxValueBytes: d.MaxAttrValueBytes},
		Purge:      purgeConfig{Interval: 5 * time.Minute, Batch: 1000},
		Changes: changesConfig{
			RelayGrace:    cache.DefaultRelayGrace,
			RelayInterval: cache.DefaultRelayInterval,
			Retention:     cache.DefaultRelayRetention,
			Feed:          true,
			FeedInterval:  defaultFeedInterval,
		},
		Log:    logConfig{Format: "text", Level: "info"},
		Audit:  auditConfig{Sink: auditStderr},
		Memory: memoryConfig{MaxInflightBodyBytes: 64 << 20, Limit: 200 << 20},
	}
}

// loadConfig returns the defaults, overridden by the config file (ATTRCACHE_CONFIG, else
// configs/attrcache.yaml when it exists), overridden by the environment, and validated. An empty
// environment variable counts as unset. Errors name the setting at fault and never hold the
// MySQL DSN or the Redis URL, which may carry passwords.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := defaultConfig()
	path := getenv(envConfigPath)
	if path == "" {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			path = defaultConfigPath
		}
	}
	if path != "" {
		if err := cfg.readFile(path); err != nil {
			return config{}, err
		}
	}
	if err := cfg.applyEnv(getenv); err != nil {
		return config{}, err
	}
	if err := cfg.validate(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// readFile decodes the YAML file at path over cfg: keys it does not set keep their value, and a
// key cfg does not know is an error.
func (cfg *config) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// setting is one leaf of config: its YAML path (like "http.addr") and its field.
type setting struct {
	path  string
	value reflect.Value
}

// envName returns the environment variable that overrides the setting.
func (s setting) envName() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(s.path, ".", "_"))
}

// settings lists every leaf of cfg in declaration order; the values are addressable, so they
// can be set.
func (cfg *config) settings() []setting {
	var out []setting
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			path := prefix + v.Type().Field(i).Tag.Get("yaml")
			field := v.Field(i)
			if field.Kind() == reflect.Struct {
				walk(path+".", field)
				continue
			}
			out = append(out, setting{path: path, value: field})
		}
	}
	walk("", reflect.ValueOf(cfg).Elem())
	return out
}

// applyEnv overrides every setting whose environment variable is set.
func (cfg *config) applyEnv(getenv func(string) string) error {
	for _, s := range cfg.settings() {
		raw := getenv(s.envName())
		if raw == "" {
			continue
		}
		if err := parseInto(s.value, raw); err != nil {
			return fmt.Errorf("%s: %w", s.envName(), err)
		}
	}
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// parseInto sets v from its text form: a Go duration ("90s", "5m"), an integer, a boolean
// (strconv.ParseBool), or a comma list. The error quotes raw: no setting read this way is secret.
func parseInto(v reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 90s or 5m", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case v.CanInt():
		n, err := strconv.ParseInt(raw, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer of %d bits", raw, v.Type().Bits())
		}
		v.SetInt(n)
	case v.CanUint():
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an unsigned integer of %d bits", raw, v.Type().Bits())
		}
		v.SetUint(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf(splitList(raw)))
	default:
		return fmt.Errorf("settings of type %s cannot be read from the environment", v.Type())
	}
	return nil
}

// splitList reads a comma list, dropping blanks around and between items.
func splitList(s string) []string {
	items := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// validate checks every setting that has a bad value, naming the first it finds.
func (cfg *config) validate() error {
	checks := []struct {
		path string
		bad  bool
		want string
	}{
		{"http.addr", !isHostPort(cfg.HTTP.Addr), "must be host:port"},
		{"http.read_header_timeout", cfg.HTTP.ReadHeaderTimeout <= 0, "must be positive"},
		{"http.read_timeout", cfg.HTTP.ReadTimeout <= 0, "must be positive"},
		{"http.write_timeout", cfg.HTTP.WriteTimeout <= 0, "must be positive"},
		{"http.idle_timeout", cfg.HTTP.IdleTimeout <= 0, "must be positive"},
		{"http.max_header_bytes", cfg.HTTP.MaxHeaderBytes <= 0, "must be positive"},
		{"http.max_body_bytes", cfg.HTTP.MaxBodyBytes <= 0, "must be positive"},
		{"http.shutdown_timeout", cfg.HTTP.ShutdownTimeout <= 0, "must be positive"},
		{"http.drain_delay", cfg.HTTP.DrainDelay < 0, "must not be negative (0: no drain)"},
		{"mysql.dsn", cfg.MySQL.DSN == "", "must be a go-sql-driver DSN"},
		{"mysql.max_open_conns", cfg.MySQL.MaxOpenConns < 1, "must be at least 1"},
		{"mysql.max_idle_conns", cfg.MySQL.MaxIdleConns < 0 || cfg.MySQL.MaxIdleConns > cfg.MySQL.MaxOpenConns, "must be 0 to mysql.max_open_conns"},
		{"mysql.group_commit.workers", cfg.MySQL.GroupCommit.Workers < 0 || cfg.MySQL.GroupCommit.Workers >= cfg.MySQL.MaxOpenConns, "must be 0 (off) to below mysql.max_open_conns, so that reads keep connections"},
		{"mysql.group_commit.max_rows", cfg.MySQL.GroupCommit.Workers > 0 && (cfg.MySQL.GroupCommit.MaxRows < 1 || cfg.MySQL.GroupCommit.MaxRows > attrcache.MaxAttrItems), fmt.Sprintf("must be 1 to %d", attrcache.MaxAttrItems)},
		{"mysql.group_commit.max_wait", cfg.MySQL.GroupCommit.MaxWait < 0, "must not be negative"},
		{"redis.master", cfg.Redis.Master != "" && len(cfg.Redis.Addrs) == 0, "needs redis.addrs, the Sentinel addresses"},
		{"cache.principal_ttl", cfg.Cache.PrincipalTTL <= 0, "must be positive"},
		{"cache.absent_ttl", cfg.Cache.AbsentTTL <= 0, "must be positive"},
		{"cache.absent_max", cfg.Cache.AbsentMax < 1, "must be at least 1"},
		{"cache.failover_check_interval", cfg.Cache.FailoverCheckInterval < 10*time.Millisecond || cfg.Cache.FailoverCheckInterval > time.Minute, "must be 10ms to 1m"},
		{"cache.failover_replay_window", cfg.Cache.FailoverReplayWindow <= 0, "must be positive"},
		{"cache.max_ttl", cfg.Cache.MaxTTL < time.Minute, "must be at least 1m"},
		{"changes.relay_grace", cfg.Changes.RelayGrace < minRelayGrace, "must be at least 50ms"},
		{"changes.relay_interval", cfg.Changes.RelayInterval < minRelayInterval, "must be at least 10ms"},
		{"changes.relay_interval", cfg.Changes.RelayGrace+cfg.Changes.RelayInterval > maxRelayGraceAndInt, "plus changes.relay_grace must be at most 800ms"},
		{"changes.retention", cfg.Changes.Retention < time.Hour, "must be at least 1h"},
		{"changes.feed_interval", cfg.Changes.FeedInterval < minFeedInterval || cfg.Changes.FeedInterval > maxFeedInterval, "must be from 5ms to 1s"},
		{"apps", len(cfg.Apps) == 0, "must name at least one application"},
		{"session.expiry", cfg.Session.Expiry < time.Second, "must be at least 1s"},
		{"password.min_length", cfg.Password.MinLength < 1, "must be at least 1"},
		{"password.max_length", cfg.Password.MaxLength < cfg.Password.MinLength, "must be at least password.min_length"},
		{"password.expiry_days", cfg.Password.ExpiryDays < 1, "must be at least 1"},
		{"password.about_to_expire_days", cfg.Password.AboutToExpireDays < 0, "must not be negative"},
		{"argon2.time", cfg.Argon2.Time < 1, "must be at least 1"},
		{"argon2.threads", cfg.Argon2.Threads < 1, "must be at least 1"},
		{"argon2.memory_kib", cfg.Argon2.MemoryKiB < 8*uint32(cfg.Argon2.Threads), "must be at least 8 × argon2.threads"},
		{"login_throttle.per_username", cfg.LoginThrottle.PerUsername < 0, "must not be negative (0 disables it)"},
		{"login_throttle.per_address", cfg.LoginThrottle.PerAddress < 0, "must not be negative (0 disables it)"},
		{"login_throttle.window", cfg.LoginThrottle.Window <= 0, "must be positive"},
		{"signup_throttle.per_address", cfg.SignupThrottle.PerAddress < 0, "must not be negative (0 disables it)"},
		{"signup_throttle.window", cfg.SignupThrottle.Window <= 0, "must be positive"},
		{"search.default_page_size", cfg.Search.DefaultPageSize < 1, "must be at least 1"},
		{"search.max_page_size", cfg.Search.MaxPageSize < cfg.Search.DefaultPageSize, "must be at least search.default_page_size"},
		{"attributes.max_value_bytes", cfg.Attributes.MaxValueBytes < 1, "must be at least 1"},
		{"quota.max_attrs", cfg.Quota.MaxAttrs < 0, "must not be negative (0: no limit)"},
		{"quota.max_bytes", cfg.Quota.MaxBytes < 0, "must not be negative (0: no limit)"},
		{"purge.interval", cfg.Purge.Interval <= 0, "must be positive"},
		{"purge.batch", cfg.Purge.Batch < 1, "must be at least 1"},
		{"log.format", cfg.Log.Format != "text" && cfg.Log.Format != "json", "must be text or json"},
		{"log.level", new(slog.Level).UnmarshalText([]byte(cfg.Log.Level)) != nil, "must be debug, info, warn or error"},
		{"audit.sink", strings.TrimSpace(cfg.Audit.Sink) == "", "must be stderr, none or the path of a file"},
		{"memory.max_inflight_body_bytes", cfg.Memory.MaxInflightBodyBytes < cfg.HTTP.MaxBodyBytes, "must be at least http.max_body_bytes, so that the largest body fits"},
		{"memory.limit", cfg.Memory.Limit != 0 && cfg.Memory.Limit < cfg.Memory.MaxInflightBodyBytes+minMemoryHeadroom,
			fmt.Sprintf("must be 0 (no limit) or at least memory.max_inflight_body_bytes + %d MiB", minMemoryHeadroom>>20)},
		{"debug.pprof_addr", cfg.Debug.PprofAddr != "" && !isLoopbackHostPort(cfg.Debug.PprofAddr), "must be empty (off) or a loopback host:port such as 127.0.0.1:6060: the profiles expose the process's internals and have no authentication"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("setting %s: %s", describeSetting(c.path), c.want)
		}
	}
	if _, err := cfg.redisOptions(); err != nil {
		return err
	}
	if _, err := cfg.trustedProxies(); err != nil {
		return err
	}
	return nil
}

// minMemoryHeadroom is the least room memory.limit leaves beside the request bodies: the
// process's own working set and one argon2 hash at the default cost.
const minMemoryHeadroom = 64 << 20

// trustedProxies returns http.trusted_proxies as prefixes; a single address is a prefix of its
// own bits.
func (cfg *config) trustedProxies() ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(cfg.HTTP.TrustedProxies))
	for _, item := range cfg.HTTP.TrustedProxies {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(item))
		if err != nil {
			addr, addrErr := netip.ParseAddr(strings.TrimSpace(item))
			if addrErr != nil {
				return nil, fmt.Errorf("setting %s: %q is not a CIDR such as 10.0.0.0/8 or an IP address", describeSetting("http.trusted_proxies"), item)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		if prefix.Addr().Is4In6() && prefix.Bits() >= 96 {
			// 10.0.0.0/8 written as ::ffff:10.0.0.0/104: remoteAddr compares unmapped addresses
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96)
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}

// isHostPort reports whether addr has the form host:port (the host may be empty).
func isHostPort(addr string) bool {
	_, _, err := net.SplitHostPort(addr)
	return err == nil
}

// isLoopbackHostPort reports whether addr is host:port with a host that is a loopback IP address
// or "localhost"; an empty host (every interface) is not.
func isLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// describeSetting names a setting by its YAML path and its environment variable.
func describeSetting(path string) string {
	return path + " (" + setting{path: path}.envName() + ")"
}

// logLevel returns log.level, which validate has checked.
func (cfg *config) logLevel() slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	return level
}

// ssoConfig maps the settings onto the Go API's configuration.
func (cfg *config) ssoConfig() sso.Config {
	c := sso.DefaultConfig()
	c.Apps = cfg.Apps
	c.SignupApps = cfg.SignupApps
	c.ApprovalNeeded = cfg.ApprovalNeeded
	c.SessionExpiry = cfg.Session.Expiry
	c.Password = attrcache.PasswordPolicy{
		MinLength:  cfg.Password.MinLength,
		MaxLength:  cfg.Password.MaxLength,
		RejectList: cfg.Password.RejectList,
	}
	c.PasswordExpiry = time.Duration(cfg.Password.ExpiryDays) * day
	c.AboutToExpire = time.Duration(cfg.Password.AboutToExpireDays) * day
	c.Hash.Time = cfg.Argon2.Time
	c.Hash.MemoryKiB = cfg.Argon2.MemoryKiB
	c.Hash.Threads = cfg.Argon2.Threads
	c.SearchDefaultPageSize = cfg.Search.DefaultPageSize
	c.SearchMaxPageSize = cfg.Search.MaxPageSize
	c.MaxAttrValueBytes = cfg.Attributes.MaxValueBytes
	c.Throttle.PerUsername = cfg.LoginThrottle.PerUsername
	c.Throttle.PerAddress = cfg.LoginThrottle.PerAddress
	c.Throttle.Window = cfg.LoginThrottle.Window
	c.SignupThrottle.PerAddress = cfg.SignupThrottle.PerAddress
	c.SignupThrottle.Window = cfg.SignupThrottle.Window
	return c
}

// persistOptions returns the options of persist.Open that the settings give: the pool sizes,
// group commit, the quotas and whether the change feed runs.
func (cfg *config) persistOptions() []persist.Option {
	gc := cfg.MySQL.GroupCommit
	return []persist.Option{
		persist.WithPoolSize(cfg.MySQL.MaxOpenConns, cfg.MySQL.MaxIdleConns),
		persist.WithGroupCommit(persist.GroupCommit{MaxRows: gc.MaxRows, MaxWait: gc.MaxWait, Workers: gc.Workers}),
		persist.WithQuota(persist.Quota{MaxAttrs: cfg.Quota.MaxAttrs, MaxBytes: cfg.Quota.MaxBytes}),
		persist.WithChangeFeed(cfg.Changes.Feed),
	}
}

// redisOptions returns the client options of the Redis settings: a single server from
// redis.url; with redis.addrs a Redis Cluster (credentials and TLS still from redis.url); with
// redis.master as well, Sentinel with those addresses. Errors never quote the URL.
func (cfg *config) redisOptions() (*redis.UniversalOptions, error) {
	base, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error quotes the whole URL, password included
		}
		return nil, fmt.Errorf("setting %s: not a redis:// or rediss:// URL: %w", describeSetting("redis.url"), err)
	}
	opts := &redis.UniversalOptions{
		Addrs:     []string{base.Addr},
		Protocol:  base.Protocol,
		Username:  base.Username,
		Password:  base.Password,
		DB:        base.DB,
		TLSConfig: base.TLSConfig,
		// Redis is a cache: when it is down, a request must fall back to MySQL quickly rather
		// than wait through go-redis's default of 5 dial attempts and 3 retries per command.
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		DialerRetries: 1,
		MaxRetries:    1,
	}
	switch {
	case cfg.Redis.Master != "":
		opts.MasterName = cfg.Redis.Master
		opts.Addrs = cfg.Redis.Addrs
	case len(cfg.Redis.Addrs) > 0:
		if base.DB != 0 {
			return nil, fmt.Errorf("setting %s: Redis Cluster has only database 0, the URL names %d", describeSetting("redis.url"), base.DB)
		}
		opts.Addrs = cfg.Redis.Addrs
		opts.IsClusterMode = true
	}
	return opts, nil
}

// errNoSecretKey says that neither secret key variable is set.
var errNoSecretKey = errors.New("no secret key: set " + envSecretKey + " (base64 of 32 random bytes) or " + envSecretKeys)

// secretKeyring reads the secret keys: ATTRCACHE_SECRET_KEYS when set, else ATTRCACHE_SECRET_KEY,
// else errNoSecretKey. Errors never hold a key.
func secretKeyring(getenv func(string) string) (*attrcache.Keyring, error) {
	if spec := getenv(envSecretKeys); spec != "" {
		keys, err := attrcache.ParseSecretKeys(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envSecretKeys, err)
		}
		return keys, nil
	}
	if key := getenv(envSecretKey); key != "" {
		keys, err := attrcache.ParseSecretKey(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envSecretKey, err)
		}
		return keys, nil
	}
	return nil, errNoSecretKey
}

// redactDSN returns a go-sql-driver DSN with its password, if any, replaced by "xxxxx", for logs.
// It follows the driver's own reading: the last '/' starts the database name, the last '@'
// before it ends the credentials, and the first ':' in them starts the password.
func redactDSN(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return dsn
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at < 0 {
		return dsn
	}
	colon := strings.IndexByte(dsn[:at], ':')
	if colon < 0 {
		return dsn
	}
	return dsn[:colon+1] + "xxxxx" + dsn[at:]
}
