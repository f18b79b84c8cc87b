package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

const configFile = "../../configs/attrcache.yaml"

// envOf returns a getenv that answers from vars.
func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// TestConfigFileHoldsEveryDefault decodes configs/attrcache.yaml into an empty config, so a
// setting missing from the file shows up as a difference too.
func TestConfigFileHoldsEveryDefault(t *testing.T) {
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var got config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding %s: %v", configFile, err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs from the built-in defaults:\n got %+v\nwant %+v", configFile, got, want)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no file in the working directory", nil},
		{"the shipped file", map[string]string{envConfigPath: configFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if want := defaultConfig(); !reflect.DeepEqual(got, want) {
				t.Errorf("loadConfig() = %+v, want the defaults %+v", got, want)
			}
		})
	}
}

func TestSSOConfigOfDefaultsIsSSODefault(t *testing.T) {
	cfg := defaultConfig()
	got := cfg.ssoConfig()
	want := sso.DefaultConfig()
	if len(got.SignupApps) == 0 && len(want.SignupApps) == 0 {
		got.SignupApps, want.SignupApps = nil, nil // an empty list and none are the same setting
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ssoConfig() of the defaults = %+v, want sso.DefaultConfig() %+v", got, want)
	}
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		env   string
		value string
		want  func(*config)
	}{
		{"ATTRCACHE_HTTP_ADDR", "0.0.0.0:8080", func(c *config) { c.HTTP.Addr = "0.0.0.0:8080" }},
		{"ATTRCACHE_HTTP_READ_HEADER_TIMEOUT", "2s", func(c *config) { c.HTTP.ReadHeaderTimeout = 2 * time.Second }},
		{"ATTRCACHE_HTTP_READ_TIMEOUT", "3s", func(c *config) { c.HTTP.ReadTimeout = 3 * time.Second }},
		{"ATTRCACHE_HTTP_WRITE_TIMEOUT", "4s", func(c *config) { c.HTTP.WriteTimeout = 4 * time.Second }},
		{"ATTRCACHE_HTTP_IDLE_TIMEOUT", "5m", func(c *config) { c.HTTP.IdleTimeout = 5 * time.Minute }},
		{"ATTRCACHE_HTTP_MAX_HEADER_BYTES", "1024", func(c *config) { c.HTTP.MaxHeaderBytes = 1024 }},
		{"ATTRCACHE_HTTP_MAX_BODY_BYTES", "2048", func(c *config) { c.HTTP.MaxBodyBytes = 2048 }},
		{"ATTRCACHE_HTTP_SHUTDOWN_TIMEOUT", "1m", func(c *config) { c.HTTP.ShutdownTimeout = time.Minute }},
		{"ATTRCACHE_HTTP_DRAIN_DELAY", "0s", func(c *config) { c.HTTP.DrainDelay = 0 }},
		{"ATTRCACHE_HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,,fd00::/8", func(c *config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"} }},
		{"ATTRCACHE_MYSQL_DSN", "u:p@tcp(db:3306)/x", func(c *config) { c.MySQL.DSN = "u:p@tcp(db:3306)/x" }},
		{"ATTRCACHE_MYSQL_MAX_OPEN_CONNS", "100", func(c *config) { c.MySQL.MaxOpenConns = 100 }},
		{"ATTRCACHE_MYSQL_MAX_IDLE_CONNS", "16", func(c *config) { c.MySQL.MaxIdleConns = 16 }},
		{"ATTRCACHE_MYSQL_GROUP_COMMIT_MAX_ROWS", "100", func(c *config) { c.MySQL.GroupCommit.MaxRows = 100 }},
		{"ATTRCACHE_MYSQL_GROUP_COMMIT_MAX_WAIT", "2ms", func(c *config) { c.MySQL.GroupCommit.MaxWait = 2 * time.Millisecond }},
		{"ATTRCACHE_MYSQL_GROUP_COMMIT_WORKERS", "0", func(c *config) { c.MySQL.GroupCommit.Workers = 0 }},
		{"ATTRCACHE_REDIS_URL", "redis://cache:6379/2", func(c *config) { c.Redis.URL = "redis://cache:6379/2" }},
		{"ATTRCACHE_REDIS_ADDRS", "a:1, b:2,,c:3", func(c *config) { c.Redis.Addrs = []string{"a:1", "b:2", "c:3"} }},
		{"ATTRCACHE_REDIS_PREFIX", "ac:", func(c *config) { c.Redis.Prefix = "ac:" }},
		{"ATTRCACHE_CACHE_PRINCIPAL_TTL", "90s", func(c *config) { c.Cache.PrincipalTTL = 90 * time.Second }},
		{"ATTRCACHE_CACHE_ABSENT_TTL", "30s", func(c *config) { c.Cache.AbsentTTL = 30 * time.Second }},
		{"ATTRCACHE_CACHE_ABSENT_MAX", "10", func(c *config) { c.Cache.AbsentMax = 10 }},
		{"ATTRCACHE_CACHE_FAILOVER_CHECK_INTERVAL", "50ms", func(c *config) { c.Cache.FailoverCheckInterval = 50 * time.Millisecond }},
		{"ATTRCACHE_CACHE_FAILOVER_REPLAY_WINDOW", "2m", func(c *config) { c.Cache.FailoverReplayWindow = 2 * time.Minute }},
		{"ATTRCACHE_CACHE_MAX_TTL", "2h", func(c *config) { c.Cache.MaxTTL = 2 * time.Hour }},
		{"ATTRCACHE_CHANGES_RELAY_GRACE", "200ms", func(c *config) { c.Changes.RelayGrace = 200 * time.Millisecond }},
		{"ATTRCACHE_CHANGES_RELAY_INTERVAL", "100ms", func(c *config) { c.Changes.RelayInterval = 100 * time.Millisecond }},
		{"ATTRCACHE_CHANGES_FEED", "false", func(c *config) { c.Changes.Feed = false }},
		{"ATTRCACHE_CHANGES_FEED_INTERVAL", "50ms", func(c *config) { c.Changes.FeedInterval = 50 * time.Millisecond }},
		{"ATTRCACHE_CHANGES_RETENTION", "24h", func(c *config) { c.Changes.Retention = 24 * time.Hour }},
		{"ATTRCACHE_APPS", "CRM,ERP", func(c *config) { c.Apps = []string{"CRM", "ERP"} }},
		{"ATTRCACHE_SIGNUP_APPS", "Shop", func(c *config) { c.SignupApps = []string{"Shop"} }},
		{"ATTRCACHE_APPROVAL_NEEDED", "false", func(c *config) { c.ApprovalNeeded = false }},
		{"ATTRCACHE_SESSION_EXPIRY", "15m", func(c *config) { c.Session.Expiry = 15 * time.Minute }},
		{"ATTRCACHE_PASSWORD_MIN_LENGTH", "12", func(c *config) { c.Password.MinLength = 12 }},
		{"ATTRCACHE_PASSWORD_MAX_LENGTH", "64", func(c *config) { c.Password.MaxLength = 64 }},
		{"ATTRCACHE_PASSWORD_REJECT_LIST", "acme,hunter2", func(c *config) { c.Password.RejectList = []string{"acme", "hunter2"} }},
		{"ATTRCACHE_PASSWORD_EXPIRY_DAYS", "90", func(c *config) { c.Password.ExpiryDays = 90 }},
		{"ATTRCACHE_PASSWORD_ABOUT_TO_EXPIRE_DAYS", "7", func(c *config) { c.Password.AboutToExpireDays = 7 }},
		{"ATTRCACHE_ARGON2_TIME", "3", func(c *config) { c.Argon2.Time = 3 }},
		{"ATTRCACHE_ARGON2_MEMORY_KIB", "65536", func(c *config) { c.Argon2.MemoryKiB = 65536 }},
		{"ATTRCACHE_ARGON2_THREADS", "4", func(c *config) { c.Argon2.Threads = 4 }},
		{"ATTRCACHE_LOGIN_THROTTLE_PER_USERNAME", "0", func(c *config) { c.LoginThrottle.PerUsername = 0 }},
		{"ATTRCACHE_LOGIN_THROTTLE_PER_ADDRESS", "20", func(c *config) { c.LoginThrottle.PerAddress = 20 }},
		{"ATTRCACHE_LOGIN_THROTTLE_WINDOW", "1m", func(c *config) { c.LoginThrottle.Window = time.Minute }},
		{"ATTRCACHE_SIGNUP_THROTTLE_PER_ADDRESS", "3", func(c *config) { c.SignupThrottle.PerAddress = 3 }},
		{"ATTRCACHE_SIGNUP_THROTTLE_WINDOW", "10m", func(c *config) { c.SignupThrottle.Window = 10 * time.Minute }},
		{"ATTRCACHE_SEARCH_DEFAULT_PAGE_SIZE", "20", func(c *config) { c.Search.DefaultPageSize = 20 }},
		{"ATTRCACHE_SEARCH_MAX_PAGE_SIZE", "500", func(c *config) { c.Search.MaxPageSize = 500 }},
		{"ATTRCACHE_ATTRIBUTES_MAX_VALUE_BYTES", "1000", func(c *config) { c.Attributes.MaxValueBytes = 1000 }},
		{"ATTRCACHE_QUOTA_MAX_ATTRS", "500", func(c *config) { c.Quota.MaxAttrs = 500 }},
		{"ATTRCACHE_QUOTA_MAX_BYTES", "1048576", func(c *config) { c.Quota.MaxBytes = 1 << 20 }},
		{"ATTRCACHE_PURGE_INTERVAL", "1h", func(c *config) { c.Purge.Interval = time.Hour }},
		{"ATTRCACHE_PURGE_BATCH", "10", func(c *config) { c.Purge.Batch = 10 }},
		{"ATTRCACHE_LOG_FORMAT", "json", func(c *config) { c.Log.Format = "json" }},
		{"ATTRCACHE_AUDIT_SINK", "/var/log/attrcache/audit.jsonl", func(c *config) { c.Audit.Sink = "/var/log/attrcache/audit.jsonl" }},
		{"ATTRCACHE_AUDIT_SINK", "none", func(c *config) { c.Audit.Sink = "none" }},
		{"ATTRCACHE_LOG_LEVEL", "debug", func(c *config) { c.Log.Level = "debug" }},
		{"ATTRCACHE_DEBUG_PPROF_ADDR", "127.0.0.1:6060", func(c *config) { c.Debug.PprofAddr = "127.0.0.1:6060" }},
		{"ATTRCACHE_MEMORY_MAX_INFLIGHT_BODY_BYTES", "16777216", func(c *config) { c.Memory.MaxInflightBodyBytes = 16 << 20 }},
		{"ATTRCACHE_MEMORY_LIMIT", "0", func(c *config) { c.Memory.Limit = 0 }},
	}
	covered := []string{"ATTRCACHE_REDIS_MASTER"} // needs addrs: tested in TestRedisOptions
	for _, tt := range tests {
		covered = append(covered, tt.env)
		t.Run(tt.env, func(t *testing.T) {
			got, err := loadConfig(envOf(map[string]string{tt.env: tt.value}))
			if err != nil {
				t.Fatal(err)
			}
			want := defaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with %s=%s:\n got %+v\nwant %+v", tt.env, tt.value, got, want)
			}
		})
	}
	t.Run("every setting has a case", func(t *testing.T) {
		cfg := defaultConfig()
		for _, s := range cfg.settings() {
			if !slices.Contains(covered, s.envName()) {
				t.Errorf("setting %s: no case tests %s", s.path, s.envName())
			}
		}
	})
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeConfig(t, "http:\n  addr: 127.0.0.1:1\nsession:\n  expiry: 2h\n")
	got, err := loadConfig(envOf(map[string]string{envConfigPath: path, "ATTRCACHE_HTTP_ADDR": "127.0.0.1:2"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.HTTP.Addr != "127.0.0.1:2" {
		t.Errorf("http.addr = %q, want the environment's 127.0.0.1:2", got.HTTP.Addr)
	}
	if got.Session.Expiry != 2*time.Hour {
		t.Errorf("session.expiry = %v, want the file's 2h", got.Session.Expiry)
	}
	if got.Search != defaultConfig().Search {
		t.Errorf("search = %+v, want the defaults for what the file leaves out", got.Search)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attrcache.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		file     string // config file text; "" for none
		env      map[string]string
		wantErr  string
		mustHide string // a secret the error must not quote
	}{
		{name: "unknown key in the file", file: "http:\n  adress: x\n", wantErr: "field adress not found"},
		{name: "missing file", env: map[string]string{envConfigPath: "no/such/file.yaml"}, wantErr: "config file"},
		{name: "bad duration", env: map[string]string{"ATTRCACHE_SESSION_EXPIRY": "soon"}, wantErr: "ATTRCACHE_SESSION_EXPIRY"},
		{name: "bad integer", env: map[string]string{"ATTRCACHE_PASSWORD_MIN_LENGTH": "eight"}, wantErr: "ATTRCACHE_PASSWORD_MIN_LENGTH"},
		{name: "integer out of range", env: map[string]string{"ATTRCACHE_ARGON2_THREADS": "300"}, wantErr: "ATTRCACHE_ARGON2_THREADS"},
		{name: "bad boolean", env: map[string]string{"ATTRCACHE_APPROVAL_NEEDED": "maybe"}, wantErr: "ATTRCACHE_APPROVAL_NEEDED"},
		{name: "listen address without a port", env: map[string]string{"ATTRCACHE_HTTP_ADDR": "localhost"}, wantErr: "http.addr (ATTRCACHE_HTTP_ADDR): must be host:port"},
		{name: "trusted proxy not a CIDR", env: map[string]string{"ATTRCACHE_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,10.0.0.0/33"}, wantErr: `http.trusted_proxies (ATTRCACHE_HTTP_TRUSTED_PROXIES): "10.0.0.0/33" is not a CIDR`},
		{name: "trusted proxy a host name", file: "http:\n  trusted_proxies: [proxy.local]\n", wantErr: `http.trusted_proxies (ATTRCACHE_HTTP_TRUSTED_PROXIES): "proxy.local" is not a CIDR`},
		{name: "negative sign-up limit", env: map[string]string{"ATTRCACHE_SIGNUP_THROTTLE_PER_ADDRESS": "-1"}, wantErr: "signup_throttle.per_address (ATTRCACHE_SIGNUP_THROTTLE_PER_ADDRESS): must not be negative"},
		{name: "zero timeout", env: map[string]string{"ATTRCACHE_HTTP_READ_TIMEOUT": "0s"}, wantErr: "http.read_timeout (ATTRCACHE_HTTP_READ_TIMEOUT): must be positive"},
		{name: "negative drain delay", env: map[string]string{"ATTRCACHE_HTTP_DRAIN_DELAY": "-1s"}, wantErr: "http.drain_delay (ATTRCACHE_HTTP_DRAIN_DELAY): must not be negative"},
		{name: "negative attribute quota", env: map[string]string{"ATTRCACHE_QUOTA_MAX_ATTRS": "-1"}, wantErr: "quota.max_attrs (ATTRCACHE_QUOTA_MAX_ATTRS): must not be negative"},
		{name: "negative byte quota", env: map[string]string{"ATTRCACHE_QUOTA_MAX_BYTES": "-1"}, wantErr: "quota.max_bytes (ATTRCACHE_QUOTA_MAX_BYTES): must not be negative"},
		{name: "no absent markers", env: map[string]string{"ATTRCACHE_CACHE_ABSENT_MAX": "0"}, wantErr: "cache.absent_max (ATTRCACHE_CACHE_ABSENT_MAX): must be at least 1"},
		{name: "failover checks too often", env: map[string]string{"ATTRCACHE_CACHE_FAILOVER_CHECK_INTERVAL": "1ms"}, wantErr: "cache.failover_check_interval (ATTRCACHE_CACHE_FAILOVER_CHECK_INTERVAL): must be 10ms to 1m"},
		{name: "no replay window", env: map[string]string{"ATTRCACHE_CACHE_FAILOVER_REPLAY_WINDOW": "0s"}, wantErr: "cache.failover_replay_window (ATTRCACHE_CACHE_FAILOVER_REPLAY_WINDOW): must be positive"},
		{name: "max TTL too short", env: map[string]string{"ATTRCACHE_CACHE_MAX_TTL": "30s"}, wantErr: "cache.max_ttl (ATTRCACHE_CACHE_MAX_TTL): must be at least 1m"},
		{name: "relay grace too short", env: map[string]string{"ATTRCACHE_CHANGES_RELAY_GRACE": "10ms"}, wantErr: "changes.relay_grace (ATTRCACHE_CHANGES_RELAY_GRACE): must be at least 50ms"},
		{name: "feed interval too short", env: map[string]string{"ATTRCACHE_CHANGES_FEED_INTERVAL": "1ms"}, wantErr: "changes.feed_interval (ATTRCACHE_CHANGES_FEED_INTERVAL): must be from 5ms to 1s"},
		{name: "feed interval too long", env: map[string]string{"ATTRCACHE_CHANGES_FEED_INTERVAL": "2s"}, wantErr: "changes.feed_interval (ATTRCACHE_CHANGES_FEED_INTERVAL): must be from 5ms to 1s"},
		{name: "relay interval too short", env: map[string]string{"ATTRCACHE_CHANGES_RELAY_INTERVAL": "1ms"}, wantErr: "changes.relay_interval (ATTRCACHE_CHANGES_RELAY_INTERVAL): must be at least 10ms"},
		{name: "relay too slow for the bound", env: map[string]string{"ATTRCACHE_CHANGES_RELAY_GRACE": "600ms", "ATTRCACHE_CHANGES_RELAY_INTERVAL": "300ms"}, wantErr: "changes.relay_interval (ATTRCACHE_CHANGES_RELAY_INTERVAL): plus changes.relay_grace must be at most 800ms"},
		{name: "retention too short", env: map[string]string{"ATTRCACHE_CHANGES_RETENTION": "10m"}, wantErr: "changes.retention (ATTRCACHE_CHANGES_RETENTION): must be at least 1h"},
		{name: "no apps", file: "apps: []\n", wantErr: "apps (ATTRCACHE_APPS)"},
		{name: "max below min", env: map[string]string{"ATTRCACHE_PASSWORD_MAX_LENGTH": "4"}, wantErr: "password.max_length"},
		{name: "page sizes", env: map[string]string{"ATTRCACHE_SEARCH_MAX_PAGE_SIZE": "10"}, wantErr: "search.max_page_size"},
		{name: "purge batch", env: map[string]string{"ATTRCACHE_PURGE_BATCH": "-1"}, wantErr: "purge.batch (ATTRCACHE_PURGE_BATCH): must be at least 1"},
		{name: "log format", env: map[string]string{"ATTRCACHE_LOG_FORMAT": "xml"}, wantErr: "log.format (ATTRCACHE_LOG_FORMAT): must be text or json"},
		{name: "empty audit sink", env: map[string]string{"ATTRCACHE_AUDIT_SINK": " "}, wantErr: "audit.sink (ATTRCACHE_AUDIT_SINK): must be stderr, none or the path of a file"},
		{name: "log level", env: map[string]string{"ATTRCACHE_LOG_LEVEL": "loud"}, wantErr: "log.level"},
		{name: "no connections", env: map[string]string{"ATTRCACHE_MYSQL_MAX_OPEN_CONNS": "0"}, wantErr: "mysql.max_open_conns"},
		{name: "more idle than open connections", env: map[string]string{"ATTRCACHE_MYSQL_MAX_IDLE_CONNS": "65"}, wantErr: "mysql.max_idle_conns"},
		{name: "a worker per connection", env: map[string]string{"ATTRCACHE_MYSQL_GROUP_COMMIT_WORKERS": "64"}, wantErr: "mysql.group_commit.workers"},
		{name: "batches too large", env: map[string]string{"ATTRCACHE_MYSQL_GROUP_COMMIT_MAX_ROWS": "1001"}, wantErr: "mysql.group_commit.max_rows"},
		{name: "negative batch wait", env: map[string]string{"ATTRCACHE_MYSQL_GROUP_COMMIT_MAX_WAIT": "-1ms"}, wantErr: "mysql.group_commit.max_wait"},
		{name: "pprof on every interface", env: map[string]string{"ATTRCACHE_DEBUG_PPROF_ADDR": ":6060"}, wantErr: "debug.pprof_addr (ATTRCACHE_DEBUG_PPROF_ADDR): must be empty (off) or a loopback host:port"},
		{name: "pprof on a public address", env: map[string]string{"ATTRCACHE_DEBUG_PPROF_ADDR": "0.0.0.0:6060"}, wantErr: "debug.pprof_addr"},
		{name: "pprof on a host name", file: "debug:\n  pprof_addr: db.example.com:6060\n", wantErr: "debug.pprof_addr"},
		{name: "pprof without a port", env: map[string]string{"ATTRCACHE_DEBUG_PPROF_ADDR": "127.0.0.1"}, wantErr: "debug.pprof_addr"},
		{name: "bodies in flight below one body", env: map[string]string{"ATTRCACHE_MEMORY_MAX_INFLIGHT_BODY_BYTES": "1048576"}, wantErr: "memory.max_inflight_body_bytes (ATTRCACHE_MEMORY_MAX_INFLIGHT_BODY_BYTES): must be at least http.max_body_bytes"},
		{name: "memory limit below the bodies", env: map[string]string{"ATTRCACHE_MEMORY_LIMIT": "67108864"}, wantErr: "memory.limit (ATTRCACHE_MEMORY_LIMIT): must be 0 (no limit) or at least"},
		{name: "sentinel without addresses", env: map[string]string{"ATTRCACHE_REDIS_MASTER": "mymaster"}, wantErr: "redis.master"},
		{
			name:     "bad redis URL",
			env:      map[string]string{"ATTRCACHE_REDIS_URL": "redis://:s3cret@host:port/0"},
			wantErr:  "redis.url (ATTRCACHE_REDIS_URL)",
			mustHide: "s3cret",
		},
		{
			name:     "cluster with a database number",
			env:      map[string]string{"ATTRCACHE_REDIS_URL": "redis://:s3cret@h:6379/3", "ATTRCACHE_REDIS_ADDRS": "a:1,b:2"},
			wantErr:  "only database 0",
			mustHide: "s3cret",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.file != "" {
				env[envConfigPath] = writeConfig(t, tt.file)
			}
			_, err := loadConfig(envOf(env))
			if err == nil {
				t.Fatalf("loadConfig() succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadConfig() error = %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.mustHide != "" && strings.Contains(err.Error(), tt.mustHide) {
				t.Errorf("loadConfig() error = %q quotes the secret %q", err, tt.mustHide)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg := defaultConfig()
	cfg.HTTP.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7", "10.1.2.3/16", "::ffff:172.16.0.0/108", "2001:db8::/32"}
	got, err := cfg.trustedProxies()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("trustedProxies() = %v, want %v", got, want)
	}
}

func TestRedisOptions(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantAddrs   []string
		wantMaster  string
		wantCluster bool
		wantDB      int
	}{
		{name: "one server", env: map[string]string{"ATTRCACHE_REDIS_URL": "redis://:pw@cache:6390/2"}, wantAddrs: []string{"cache:6390"}, wantDB: 2},
		{name: "cluster", env: map[string]string{"ATTRCACHE_REDIS_ADDRS": "n1:7000,n2:7000"}, wantAddrs: []string{"n1:7000", "n2:7000"}, wantCluster: true},
		{name: "cluster of one address", env: map[string]string{"ATTRCACHE_REDIS_ADDRS": "n1:7000"}, wantAddrs: []string{"n1:7000"}, wantCluster: true},
		{
			name:       "sentinel",
			env:        map[string]string{"ATTRCACHE_REDIS_ADDRS": "s1:26379,s2:26379", "ATTRCACHE_REDIS_MASTER": "mymaster"},
			wantAddrs:  []string{"s1:26379", "s2:26379"},
			wantMaster: "mymaster",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			opts, err := cfg.redisOptions()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opts.Addrs, tt.wantAddrs) || opts.MasterName != tt.wantMaster ||
				opts.IsClusterMode != tt.wantCluster || opts.DB != tt.wantDB {
				t.Errorf("redisOptions() = addrs %v, master %q, cluster %v, db %d; want %v, %q, %v, %d",
					opts.Addrs, opts.MasterName, opts.IsClusterMode, opts.DB,
					tt.wantAddrs, tt.wantMaster, tt.wantCluster, tt.wantDB)
			}
		})
	}
}

func TestSecretKeyring(t *testing.T) {
	keyA, keyB := attrcache.GenerateKey(), attrcache.GenerateKey()
	sealedWithA := mustKeyring(t, keyA).Seal(attrcache.PurposeAttr, []byte("x"), nil)
	tests := []struct {
		name      string
		env       map[string]string
		opensA    bool   // the keyring opens what keyA sealed
		wantErr   string // "" for success
		notInErrs string
	}{
		{name: "single key", env: map[string]string{envSecretKey: keyA}, opensA: true},
		{name: "key list wins", env: map[string]string{envSecretKey: keyA, envSecretKeys: "k2:" + keyB}, opensA: false},
		{name: "rotation keeps the old key", env: map[string]string{envSecretKeys: "k2:" + keyB + ",k1:" + keyA}, opensA: true},
		{name: "none", wantErr: "no secret key"},
		{name: "bad key", env: map[string]string{envSecretKey: "c2hvcnQ="}, wantErr: envSecretKey, notInErrs: "c2hvcnQ="},
		{name: "bad key list", env: map[string]string{envSecretKeys: "k1:" + keyA[:20]}, wantErr: envSecretKeys, notInErrs: keyA[:20]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := secretKeyring(envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("secretKeyring() error = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.notInErrs != "" && strings.Contains(err.Error(), tt.notInErrs) {
					t.Errorf("secretKeyring() error = %q quotes the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, openErr := keys.Open(attrcache.PurposeAttr, sealedWithA, nil)
			if opens := openErr == nil; opens != tt.opensA {
				t.Errorf("keyring opens keyA's envelope = %v, want %v", opens, tt.opensA)
			}
		})
	}
	if _, err := secretKeyring(envOf(nil)); !errors.Is(err, errNoSecretKey) {
		t.Errorf("secretKeyring() with no key = %v, want errNoSecretKey", err)
	}
}

func mustKeyring(t *testing.T, key string) *attrcache.Keyring {
	t.Helper()
	keys, err := attrcache.ParseSecretKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
		redact         func(string) string
	}{
		{"dsn without password", "root@tcp(127.0.0.1:3306)/attrcache?parseTime=true", "root@tcp(127.0.0.1:3306)/attrcache?parseTime=true", redactDSN},
		{"dsn with password", "app:s3cret@tcp(db:3306)/attrcache", "app:xxxxx@tcp(db:3306)/attrcache", redactDSN},
		{"dsn password with @ and /", "app:p@ss/w:rd@tcp(db:3306)/attrcache", "app:xxxxx@tcp(db:3306)/attrcache", redactDSN},
		{"dsn without credentials", "tcp(db:3306)/attrcache", "tcp(db:3306)/attrcache", redactDSN},
		{"redis url with password", "redis://user:s3cret@cache:6379/0", "redis://user:xxxxx@cache:6379/0", redactURL},
		{"redis url without password", "redis://cache:6379/0", "redis://cache:6379/0", redactURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
