#!/usr/bin/env bash
# Compares the write paths of two attrcache binaries on this machine: PUT single and PUT many
# (100 items), each closed loop (64 clients) and open loop at half the first binary's closed-loop
# rate, in rounds that alternate the binaries (A B A B …) so that drift in the machine's speed
# falls on both. Each binary serves its own database and Redis prefix, dropped before each serve.
# Prints a markdown table
# of every round and the ratios B/A.
#
#   bench/compare.sh OLD_BINARY NEW_BINARY   (BENCH_SECONDS per run, default 8; ROUNDS, default 2)
#
# Needs jq, the mariadb and redis-cli clients, and MariaDB and Redis answering (make services).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly seconds=${BENCH_SECONDS:-8} rounds=${ROUNDS:-2}
readonly mysql_port=${MYSQL_PORT:-3306} redis_port=${REDIS_PORT:-6379}
readonly concurrency=64 many=100 users=64

say() { printf 'compare: %s\n' "$*" >&2; }
die() { printf 'compare: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: bench/compare.sh OLD_BINARY NEW_BINARY"
readonly -a bins=("$1" "$2")
for bin in "${bins[@]}"; do [[ -x $bin ]] || die "$bin is not an executable"; done
for tool in jq mariadb redis-cli; do command -v "$tool" >/dev/null || die "$tool is needed"; done

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

# Each binary runs on its own built-in defaults: the tree's configs/attrcache.yaml may name settings
# an older binary does not know.
: >"$work/empty.yaml"
ATTRCACHE_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
export ATTRCACHE_CONFIG="$work/empty.yaml" ATTRCACHE_SECRET_KEY ATTRCACHE_HTTP_ADDR=127.0.0.1:0 ATTRCACHE_HTTP_DRAIN_DELAY=0s
export ATTRCACHE_REDIS_URL="redis://127.0.0.1:$redis_port/0" ATTRCACHE_LOG_FORMAT=json ATTRCACHE_LOG_LEVEL=info

# fresh_backends I: drops binary I's database and its Redis keys, so that every serve starts
# from what the previous runs left in neither (a log or a feed grown by an earlier run slows
# writes by tens of per cent).
fresh_backends() {
	local i=$1
	mariadb -h 127.0.0.1 -P "$mysql_port" -u root -e "DROP DATABASE IF EXISTS attrcache_compare_$i"
	redis-cli -p "$redis_port" --scan --pattern "attrcache-compare-$i:*" | xargs -r -n 1000 redis-cli -p "$redis_port" unlink >/dev/null
}

# serve_binary I: starts binary I on a fresh database and prefix of its own; sets url, admin,
# password.
serve_binary() {
	local i=$1 bin=${bins[$1]}
	fresh_backends "$i"
	export ATTRCACHE_MYSQL_DSN="root@tcp(127.0.0.1:$mysql_port)/attrcache_compare_$i?parseTime=true"
	export ATTRCACHE_REDIS_PREFIX="attrcache-compare-$i:"
	"$bin" serve 2>"$work/serve-$i.log" &
	serve_pid=$!
	url=""
	for _ in $(seq 600); do
		kill -0 "$serve_pid" 2>/dev/null || die "$bin serve exited: $(tail -n 5 "$work/serve-$i.log")"
		url=$(jq -Rr 'fromjson? | select(.msg == "listening") | .addr' "$work/serve-$i.log" 2>/dev/null | head -n 1 || true)
		[[ -n $url ]] && break
		sleep 0.1
	done
	[[ -n $url ]] || die "$bin serve did not report its address"
	url="http://$url"
	admin=compare-admin-$i-$$-$RANDOM
	password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
	"$bin" sso create-super-user "$admin" --password "$password" >/dev/null
}

# run I NAME ARGS...: one `attrcache bench` of binary I, its JSON in $work/NAME.json.
run() {
	local i=$1 name=$2
	shift 2
	say "${bins[$i]}: $name $*"
	"${bins[$i]}" bench --url "$url" --username "$admin" --password "$password" \
		--duration "${seconds}s" --many "$many" --users "$users" --concurrency "$concurrency" --json "$@" >"$work/$name.json"
}

throughput() { jq '.total.throughput | floor' "$work/$1.json"; }
p99() { jq '.total.latency_ms.p99 * 10 | round / 10' "$work/$1.json"; }

declare -A half=()
rows=()
for round in $(seq "$rounds"); do
	for i in 0 1; do
		serve_binary "$i"
		run "$i" "r$round-$i-set" --mix set=100
		run "$i" "r$round-$i-set_many" --mix set_many=100
		for op in set set_many; do
			# Both binaries get the same open-loop rate: half of the first's closed loop in round 1.
			[[ -n ${half[$op]:-} ]] || half[$op]=$(jq '.total.throughput / 2 | floor' "$work/r1-0-$op.json")
			run "$i" "r$round-$i-${op}_open" --mix "$op=100" --rate "${half[$op]}"
		done
		stop_serve
	done
	for op in set set_many; do
		a=r$round-0-$op b=r$round-1-$op
		rows+=("| $round | $op | $(throughput "$a") | $(throughput "$b") | $(jq -n "$(throughput "$b") / $(throughput "$a") * 100 | round / 100") | $(p99 "$a") | $(p99 "$b") | $(p99 "${a}_open") | $(p99 "${b}_open") |")
	done
done

printf '| round | load | A req/s | B req/s | B/A | A p99 closed (ms) | B p99 closed (ms) | A p99 open (ms) | B p99 open (ms) |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
printf '%s\n' "${rows[@]}"
printf '\nA = %s, B = %s; open loop at %s PUT/s and %s PUT many/s; %s s per run; PUT many is 100 items.\n' \
	"${bins[0]}" "${bins[1]}" "${half[set]}" "${half[set_many]}" "$seconds"
