#!/usr/bin/env bash
# The body of `make bench`: measures, side by side on this machine, what Redis and MariaDB
# sustain on their own and what attrcache sustains in front of them, then writes the results as
# JSON under bench/results/ and prints a markdown table of the ratios issue 4 asks for.
#
#   (a) redis-benchmark -t get,set -c 50 (no pipelining) against the same Redis;
#   (b) bench/rawmysql: one-row-per-commit and sorted 100-row batch upserts, 64 connections, over
#       the rows of 64 users;
#   (c) attrcache bench, 64 clients, closed loop, each request on one of 64 users' sessions drawn at
#       random: cached GET, PUT single, PUT many (100 items), the requests sent by wrk (in C, a
#       fraction of the built-in driver's CPU per request; the built-in driver when wrk is
#       missing); then each open loop, by the built-in driver, at half of the rate the closed loop reached, over the same 64
#       connections: a request that finds them all busy waits for one, and its latency, counted
#       from its scheduled send time, includes that wait. (More connections than the closed loop
#       used would measure the load generator's scheduling of hundreds of idle connections on
#       the same two cores more than the service.) During PUT single, closed and open loop, an
#       SSE client reads everyone's change feed events (attrcache bench --feed) and measures
#       their delivery lag: receipt less the event's time, its change log row's insert just
#       before the commit. This serve has the feed on and audits to a file.
#   (d) PUT single and PUT many, closed loop, with the change feed and the audit log off
#       (changes.feed false, audit.sink none) and on (as in (c), without a feed reader), each in
#       a fresh serve, in BENCH_FEED_ROUNDS rounds (default 1: off, on; then on, off; …), for the
#       ratio of their mean throughputs, on / off. Each state has a database of its own, which
#       only these runs use: on a shared one the sequencer of "on" would number the backlog of
#       "off", and two databases with different histories write at different speeds.
#
# During the closed-loop cached GET and PUT single runs it takes a CPU profile of attrcache, through
# its pprof listener (debug.pprof_addr), and saves it next to the JSON: <same name>-get.pprof and
# -set.pprof, each with a -top.txt summary (go tool pprof -top).
#
# It expects MariaDB and Redis to answer (make bench starts them) and bin/attrcache to be built.
# It starts its own `attrcache serve` (a throwaway key, the database attrcache_bench, and for (d)
# attrcache_bench_feed_off and attrcache_bench_feed_on, the Redis prefix attrcache-bench:, a free
# loopback port) and stops it at the end.
#
# Environment: BENCH_SECONDS (default 10) is the length of each run; BENCH_REDIS_REQUESTS (default
# 50000 per BENCH_SECOND) the requests of each redis-benchmark test; BENCH_FEED_ROUNDS (default 1)
# the rounds of (d); MYSQL_PORT and REDIS_PORT as for make services. Needs jq and curl; uses wrk
# and redis-benchmark when installed (make bench installs them when root).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly seconds=${BENCH_SECONDS:-10} feed_rounds=${BENCH_FEED_ROUNDS:-1}
readonly redis_requests=${BENCH_REDIS_REQUESTS:-$((seconds * 50000))}
readonly mysql_port=${MYSQL_PORT:-3306} redis_port=${REDIS_PORT:-6379}
readonly concurrency=64 many=100 users=64

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

command -v jq >/dev/null || die "jq is needed to assemble the results"
command -v curl >/dev/null || die "curl is needed to take the CPU profiles"
[[ -x bin/attrcache ]] || die "bin/attrcache is missing; run make build"
# What drives the closed loops: wrk when installed.
closed_driver=(--driver builtin)
if command -v wrk >/dev/null; then
	closed_driver=(--driver wrk --wrk-threads "$(nproc)")
else
	say "wrk is not installed: the closed loops use attrcache bench's own driver"
fi

work=$(mktemp -d)
serve_pid=""
stop_serve() {
	if [[ -n $serve_pid ]] && kill -0 "$serve_pid" 2>/dev/null; then
		kill "$serve_pid"
		wait "$serve_pid" 2>/dev/null || true
	fi
	serve_pid=""
}
trap 'stop_serve; rm -rf "$work"' EXIT

# --- the service under test ---------------------------------------------------------------
export ATTRCACHE_HTTP_ADDR=127.0.0.1:0 ATTRCACHE_HTTP_DRAIN_DELAY=0s
export ATTRCACHE_REDIS_URL="redis://127.0.0.1:$redis_port/0"
export ATTRCACHE_REDIS_PREFIX=attrcache-bench:
export ATTRCACHE_LOG_FORMAT=json ATTRCACHE_LOG_LEVEL=info
ATTRCACHE_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
export ATTRCACHE_SECRET_KEY
admin_password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
admin=bench-admin-$$
# The settings of the change feed and the audit log, on and off.
readonly -a feed_audit_on=(ATTRCACHE_CHANGES_FEED=true "ATTRCACHE_AUDIT_SINK=$work/audit.jsonl")
readonly -a feed_audit_off=(ATTRCACHE_CHANGES_FEED=false ATTRCACHE_AUDIT_SINK=none)

# start_serve DATABASE SETTING...: starts `attrcache serve` on DATABASE with the settings
# (VAR=value), its log in $work/serve.log, and the super-user in that database; sets serve_pid,
# url and pprof_url.
declare -A admin_created=()
start_serve() {
	local database=$1
	shift
	local dsn="root@tcp(127.0.0.1:$mysql_port)/$database?parseTime=true"
	env "$@" ATTRCACHE_MYSQL_DSN="$dsn" ATTRCACHE_DEBUG_PPROF_ADDR=127.0.0.1:0 bin/attrcache serve 2>"$work/serve.log" &
	serve_pid=$!
	local addr=""
	for _ in $(seq 600); do # up to 60 s: migrations on a fresh database
		kill -0 "$serve_pid" 2>/dev/null || die "attrcache serve exited: $(tail -n 5 "$work/serve.log")"
		addr=$(jq -r 'select(.msg == "listening") | .addr' "$work/serve.log" 2>/dev/null | head -n 1)
		[[ -n $addr ]] && break
		sleep 0.1
	done
	[[ -n $addr ]] || die "attrcache serve did not report its address"
	url="http://$addr"
	# serve logs its pprof address before the API's.
	local pprof_addr
	pprof_addr=$(jq -r 'select(.msg == "pprof listening") | .addr' "$work/serve.log" | head -n 1)
	[[ -n $pprof_addr ]] || die "attrcache serve did not report its pprof address"
	pprof_url="http://$pprof_addr/debug/pprof"
	say "attrcache serving $database on $url (pid $serve_pid, $*), pprof on $pprof_url"
	if [[ -z ${admin_created[$database]:-} ]]; then
		ATTRCACHE_MYSQL_DSN="$dsn" bin/attrcache sso create-super-user "$admin" --password "$admin_password" >/dev/null
		admin_created[$database]=1
	fi
}

# attrcache_bench NAME ARGS...: one `attrcache bench` run, its JSON in $work/NAME.json.
attrcache_bench() {
	local name=$1
	shift
	say "attrcache bench $name: $*"
	bin/attrcache bench --url "$url" --username "$admin" --password "$admin_password" \
		--duration "${seconds}s" --many "$many" --users "$users" --json "$@" >"$work/$name.json"
}

# attrcache_bench_profiled NAME ARGS...: attrcache_bench, and a CPU profile of attrcache over its
# load, in $work/NAME.pprof. The profile starts at the first progress line, a second into the load
# (so it leaves out the preparation: users, their argon2 hashes and attributes), and ends a second
# before the load does. A profile that cannot be taken is reported and skipped; the run counts.
attrcache_bench_profiled() {
	local name=$1 bench_pid profile_pid
	local profile_seconds=$((seconds > 3 ? seconds - 2 : 1))
	attrcache_bench "$@" 2> >(tee "$work/$name.progress" >&2) &
	bench_pid=$!
	until grep -qE ' req/s |load running' "$work/$name.progress" 2>/dev/null; do
		if ! kill -0 "$bench_pid" 2>/dev/null; then
			wait "$bench_pid"
			say "no CPU profile of $name: its load ended before the first progress line"
			return
		fi
		sleep 0.1
	done
	say "CPU profile of $name: ${profile_seconds}s"
	curl -sSf "$pprof_url/profile?seconds=$profile_seconds" -o "$work/$name.pprof" &
	profile_pid=$!
	wait "$bench_pid"
	if ! wait "$profile_pid"; then
		say "no CPU profile of $name: fetching it failed"
		rm -f "$work/$name.pprof"
	fi
}

# --- (a) Redis alone ----------------------------------------------------------------------
redis_get=null redis_set=null
if command -v redis-benchmark >/dev/null; then
	say "redis-benchmark -t get,set -c 50 -n $redis_requests"
	redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get,set -c 50 -n "$redis_requests" -q |
		tr '\r' '\n' >"$work/redis.txt"
	rate_of() { awk -v test="$1:" '$1 == test && $3 == "requests" { rate = $2 } END { print rate ? rate : "null" }' "$work/redis.txt"; }
	redis_get=$(rate_of GET)
	redis_set=$(rate_of SET)
else
	say "redis-benchmark is not installed: the Redis column stays empty"
fi

# --- (b) MariaDB alone --------------------------------------------------------------------
say "rawmysql: one row per commit, then $many-row batches, $concurrency connections"
go build -o "$work/rawmysql" ./bench/rawmysql
"$work/rawmysql" --dsn "root@tcp(127.0.0.1:$mysql_port)/" --connections "$concurrency" \
	--users "$users" --batch "$many" --duration "${seconds}s" >"$work/rawmysql.json"

# --- (c) attrcache: closed loop, then open loop at half the closed loop's rate --------------
start_serve attrcache_bench "${feed_audit_on[@]}"
# PUT single (closed and open loop) with a reader of the change feed.
declare -A feed_flag=([set]=--feed)
attrcache_bench_profiled get --mix get=100 --concurrency "$concurrency" "${closed_driver[@]}"
attrcache_bench_profiled set --mix set=100 --concurrency "$concurrency" --feed "${closed_driver[@]}"
attrcache_bench set_many --mix set_many=100 --concurrency "$concurrency" "${closed_driver[@]}"
for op in get set set_many; do
	half=$(jq '.total.throughput / 2 | floor | if . < 1 then 1 else . end' "$work/$op.json")
	attrcache_bench "${op}_open" --mix "$op=100" --rate "$half" --concurrency "$concurrency" ${feed_flag[$op]:-}
done
rss_kib=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$serve_pid/status")
stop_serve

# --- (d) PUT with the change feed and the audit log off, then on ------------------------------
# Odd rounds run off then on, even rounds on then off, so that a drift of the machine's speed
# weighs on both.
for round in $(seq -f %02g "$feed_rounds"); do
	states=(off on)
	((10#$round % 2)) || states=(on off)
	for state in "${states[@]}"; do
		if [[ $state == off ]]; then
			start_serve attrcache_bench_feed_off "${feed_audit_off[@]}"
		else
			start_serve attrcache_bench_feed_on "${feed_audit_on[@]}"
		fi
		for op in set set_many; do
			attrcache_bench "feed_audit-$state-$op-$round" --mix "$op=100" --concurrency "$concurrency" "${closed_driver[@]}"
		done
		stop_serve
	done
done
for state in off on; do
	for op in set set_many; do
		jq -s . "$work"/feed_audit-$state-$op-*.json >"$work/feed_audit-$state-$op.json"
	done
done

# --- results ------------------------------------------------------------------------------
mkdir -p bench/results
result=bench/results/$(date -u +%Y%m%d-%H%M%S)-$(hostname -s).json
jq -n \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	--arg host "$(hostname -s)" \
	--arg cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
	--argjson nproc "$(nproc)" \
	--argjson mem_kib "$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)" \
	--arg version "$(bin/attrcache --version)" \
	--argjson seconds "$seconds" --arg closed_driver "${closed_driver[1]}" \
	--argjson redis_get "$redis_get" --argjson redis_set "$redis_set" \
	--argjson rss_kib "$rss_kib" \
	--slurpfile raw "$work/rawmysql.json" \
	--slurpfile get "$work/get.json" --slurpfile set "$work/set.json" --slurpfile set_many "$work/set_many.json" \
	--slurpfile get_open "$work/get_open.json" --slurpfile set_open "$work/set_open.json" \
	--slurpfile set_many_open "$work/set_many_open.json" \
	--argjson feed_rounds "$feed_rounds" \
	--slurpfile off_set "$work/feed_audit-off-set.json" --slurpfile off_set_many "$work/feed_audit-off-set_many.json" \
	--slurpfile on_set "$work/feed_audit-on-set.json" --slurpfile on_set_many "$work/feed_audit-on-set_many.json" \
	'def mean_throughput: map(.total.throughput) | add / length;
	{
		date: $date, seconds_per_run: $seconds, attrcache: $version, closed_loop_driver: $closed_driver,
		machine: {host: $host, nproc: $nproc, cpu: $cpu, memory_mib: ($mem_kib / 1024 | floor)},
		redis_benchmark: {get_per_second: $redis_get, set_per_second: $redis_set},
		rawmysql: $raw[0],
		attrcache_bench: {
			get: $get[0], set: $set[0], set_many: $set_many[0],
			get_open: $get_open[0], set_open: $set_open[0], set_many_open: $set_many_open[0]
		},
		change_feed_lag_ms: {set: $set[0].feed, set_open: $set_open[0].feed},
		feed_audit: {
			rounds: $feed_rounds,
			off: {settings: "changes.feed false, audit.sink none", set: $off_set[0], set_many: $off_set_many[0]},
			on: {settings: "changes.feed true, audit.sink a file", set: $on_set[0], set_many: $on_set_many[0]},
			on_over_off: {
				set: (($on_set[0] | mean_throughput) / ($off_set[0] | mean_throughput)),
				set_many: (($on_set_many[0] | mean_throughput) / ($off_set_many[0] | mean_throughput))
			}
		},
		attrcache_max_rss_mib: ($rss_kib / 1024)
	}' >"$result"
say "results in $result"

# The CPU profiles, named after the results: the raw profile and its 40 heaviest functions.
for op in get set; do
	[[ -s $work/$op.pprof ]] || continue
	profile=${result%.json}-$op.pprof
	cp "$work/$op.pprof" "$profile"
	go tool pprof -top -nodecount=40 "$profile" >"${profile%.pprof}-top.txt"
	say "CPU profile of $op in $profile, its top in ${profile%.pprof}-top.txt"
done

# The markdown table: each measured figure, its yardstick, their ratio and the issue's target.
jq -r '
	def fmt: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
	def ratio(a; b): if a == null or b == null or b == 0 then null else a / b end;
	def mean_throughput: map(.total.throughput) | add / length;
	def lag: if . == null then "n/a" else "\(.lag_ms.p50 | fmt) / \(.lag_ms.p99 | fmt) / \(.lag_ms.max | fmt)" end;
	.attrcache_bench as $b | .rawmysql as $raw | .feed_audit as $fa |
	"Machine: \(.machine.nproc) CPUs (\(.machine.cpu)), \(.machine.memory_mib) MiB; \(.seconds_per_run) s per run; closed loops by \(.closed_loop_driver); \(.attrcache).",
	"",
	"| measure | attrcache | yardstick | ratio | target |",
	"|---|---|---|---|---|",
	"| cached GET, 64 clients (req/s) | \($b.get.total.throughput | fmt) | redis-benchmark GET \(.redis_benchmark.get_per_second | fmt) | \(ratio($b.get.total.throughput; .redis_benchmark.get_per_second) | fmt)× | ≥ 0.40× |",
	"| PUT single, 64 clients (req/s) | \($b.set.total.throughput | fmt) | raw one-row upserts \($raw.single_row.commits_per_second | fmt) | \(ratio($b.set.total.throughput; $raw.single_row.commits_per_second) | fmt)× | ≥ 0.80× |",
	"| PUT many (\($b.set_many.many) items), 64 clients (rows/s) | \($b.set_many.total.throughput * $b.set_many.many | fmt) | raw \($raw.batch_rows)-row batches \($raw.batch.rows_per_second | fmt) | \(ratio($b.set_many.total.throughput * $b.set_many.many; $raw.batch.rows_per_second) | fmt)× | ≥ 0.50× |",
	"| GET p99, open loop at \($b.get_open.rate | fmt) req/s (ms) | \($b.get_open.total.latency_ms.p99 | fmt) | | | < 3 ms |",
	"| PUT single p99, open loop at \($b.set_open.rate | fmt) req/s (ms) | \($b.set_open.total.latency_ms.p99 | fmt) | | | < 10 ms |",
	"| PUT many p99, open loop at \($b.set_many_open.rate | fmt) req/s (ms) | \($b.set_many_open.total.latency_ms.p99 | fmt) | | | < 50 ms |",
	"| attrcache peak RSS (MiB) | \(.attrcache_max_rss_mib | fmt) | | | < 150 MiB |",
	"| change feed lag p50 / p99 / max, PUT single closed loop, \($b.set.feed.events // 0) events (ms) | \($b.set.feed | lag) | | | p99 < 100 ms |",
	"| change feed lag p50 / p99 / max, PUT single open loop at \($b.set_open.rate | fmt) req/s, \($b.set_open.feed.events // 0) events (ms) | \($b.set_open.feed | lag) | | | p99 < 100 ms |",
	"| PUT single, feed and audit on, 64 clients (req/s) | \($fa.on.set | mean_throughput | fmt) | feed and audit off \($fa.off.set | mean_throughput | fmt) | \($fa.on_over_off.set | fmt)× | ≥ 0.95× |",
	"| PUT many (\($b.set_many.many) items), feed and audit on, 64 clients (rows/s) | \($fa.on.set_many | mean_throughput * $b.set_many.many | fmt) | feed and audit off \($fa.off.set_many | mean_throughput * $b.set_many.many | fmt) | \($fa.on_over_off.set_many | fmt)× | ≥ 0.95× |",
	"",
	"Errors: " + ([$b | to_entries[] | select(.value.total.errors > 0) | "\(.key) \(.value.total.errors)"]
		+ [$fa.off, $fa.on | .set[], .set_many[] | select(.total.errors > 0) | "feed_audit \(.mix) \(.total.errors)"]
		| if length == 0 then "none" else join(", ") end) + "."
' "$result"
