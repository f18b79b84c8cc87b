#!/usr/bin/env bash
# Makes sure MariaDB and Redis answer on their ports, for `make run` and `make test`, and runs a
# three-master Redis Cluster and a three-node MariaDB Galera cluster for the tests that must pass
# on them.
#
#   scripts/services.sh               start whichever of MariaDB and Redis does not answer
#   scripts/services.sh stop          stop the servers this script started (and nothing else)
#   scripts/services.sh cluster       start the Redis Cluster unless it is up already
#   scripts/services.sh cluster-stop  stop the Redis Cluster's servers
#   scripts/services.sh galera        start the Galera cluster's nodes that are down
#   scripts/services.sh galera-stop   stop the Galera cluster's nodes
#   scripts/services.sh bench-tools   install what `make bench` drives the load with (wrk,
#                                     redis-benchmark), when missing and root; else only warn
#
# For each server: if something already answers on its port, nothing is done. Otherwise the
# server package is installed if its binary is missing (as root only, with apt-get), and a private
# server is started with its data under .data/ in the project, listening on 127.0.0.1 only. The
# system's database and services are never touched.
#
# The cluster's nodes are private redis-servers with --cluster-enabled, one per port, each with
# its cluster configuration in .data/cluster/<port>/ and nothing saved to disk. The first start
# joins them with `redis-cli --cluster create`, every slot on a master and no replicas; a start
# finds an existing cluster by its configuration files and only restarts nodes that are down.
#
# The Galera nodes are private mariadbds (run as user mysql when this script runs as root, as
# rsync state transfers need), one per port, each with its configuration, data and log in
# .data/galera/<port>/. With no node up, the node that may bootstrap (safe_to_bootstrap in its
# grastate.dat: the last one stopped; node 1 for a fresh cluster) starts a new cluster and the
# others join it one after the other, each copying its state from a running node; with some up,
# the nodes that are down join them. The start returns once every node is Synced and sees all.
#
# Environment: MYSQL_PORT (default 3306), REDIS_PORT (default 6379), REDIS_CLUSTER_PORTS (the
# cluster's ports, separated by spaces or commas, at least three; default 7001 7002 7003; each
# node also uses its port + 10000 for the cluster bus), GALERA_PORTS (the Galera nodes' SQL
# ports, at least three; default 3311 3312 3313; each node also uses its port + 1000 for group
# communication, + 2000 for incremental and + 3000 for full state transfers).
set -euo pipefail

readonly host=127.0.0.1
readonly mysql_port=${MYSQL_PORT:-3306}
readonly redis_port=${REDIS_PORT:-6379}
IFS=', ' read -r -a cluster_ports <<<"${REDIS_CLUSTER_PORTS:-7001 7002 7003}"
readonly cluster_ports
IFS=', ' read -r -a galera_ports <<<"${GALERA_PORTS:-3311 3312 3313}"
readonly galera_ports
data=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.data
readonly data
readonly mysql_pidfile=$data/mysqld.pid redis_pidfile=$data/redis.pid

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

# reachable PORT: something accepts TCP connections on host:PORT.
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$host/$1" 2>/dev/null; }

# wait_for WHAT COMMAND...: runs COMMAND every half second until it succeeds, for at most 60 s.
wait_for() {
  local what=$1 i
  shift
  for ((i = 0; i < 120; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what did not answer within 60 s; see its log under $data"
}

apt_updated=
# install_package PACKAGE WHAT: installs PACKAGE with apt-get, as root only; WHAT names what is
# missing without it.
install_package() {
  local package=$1 what=$2
  [ "$(id -u)" -eq 0 ] || die "$what is missing; install the $package package (as root: apt-get install $package) and run again"
  if [ -z "$apt_updated" ]; then
    apt-get update -q
    apt_updated=1
  fi
  # Keep the package's own service from starting: this script runs its own private server.
  local policy=/usr/sbin/policy-rc.d own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" || { [ -z "$own_policy" ] || rm -f "$policy"; die "could not install $package"; }
  [ -z "$own_policy" ] || rm -f "$policy"
}

# ensure_binary BINARY PACKAGE: installs PACKAGE with apt-get when BINARY is not on PATH.
ensure_binary() {
  local binary=$1 package=$2
  command -v "$binary" >/dev/null 2>&1 && return 0
  install_package "$package" "$binary"
  command -v "$binary" >/dev/null 2>&1 || die "$package is installed but $binary is still not on PATH"
}

# ensure_file FILE PACKAGE: installs PACKAGE with apt-get when FILE does not exist.
ensure_file() {
  local file=$1 package=$2
  [ -e "$file" ] && return 0
  install_package "$package" "$file"
  [ -e "$file" ] || die "$package is installed but $file is still missing"
}

# mysql_accepts_root: root with an empty password can run a query over TCP.
mysql_accepts_root() {
  mariadb --no-defaults --protocol=TCP -h "$host" -P "$mysql_port" -u root -e 'SELECT 1' >/dev/null 2>&1
}

start_mysql() {
  if reachable "$mysql_port"; then
    say "MySQL answers on $host:$mysql_port"
    return 0
  fi
  ensure_binary mariadbd mariadb-server
  ensure_binary mariadb mariadb-client
  local datadir=$data/mysql socket=$data/mysqld.sock user
  user=$(id -un)
  mkdir -p "$data"
  if [ ! -d "$datadir/mysql" ]; then
    say "creating a private MariaDB data directory in $datadir"
    mariadb-install-db --no-defaults --datadir="$datadir" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$data/mysql-install.log" 2>&1 ||
      die "mariadb-install-db failed; see $data/mysql-install.log"
  fi
  say "starting MariaDB on $host:$mysql_port (data in $datadir)"
  setsid mariadbd --no-defaults --datadir="$datadir" --socket="$socket" --pid-file="$mysql_pidfile" \
    --port="$mysql_port" --bind-address="$host" --user="$user" --log-error="$data/mysqld.log" \
    --skip-name-resolve </dev/null >/dev/null 2>&1 &
  wait_for "MariaDB" mariadb-admin --no-defaults --socket="$socket" -u root status
  # A fresh data directory has root@localhost only; TCP clients come from 127.0.0.1.
  mariadb --no-defaults --socket="$socket" -u root -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
    die "could not let root in over TCP from $host"
  wait_for "MariaDB over TCP as root without a password" mysql_accepts_root
  say "MariaDB is ready"
}

start_redis() {
  if reachable "$redis_port"; then
    say "Redis answers on $host:$redis_port"
    return 0
  fi
  ensure_binary redis-server redis-server
  mkdir -p "$data/redis"
  say "starting Redis on $host:$redis_port (data in $data/redis)"
  redis-server --daemonize yes --dir "$data/redis" --port "$redis_port" --bind "$host" \
    --pidfile "$redis_pidfile" --logfile "$data/redis.log" --save '' --appendonly no
  wait_for "Redis" reachable "$redis_port"
  say "Redis is ready"
}

# redis_cli PORT ARGS...: runs a redis-cli command against the server on host:PORT.
redis_cli() {
  local port=$1
  shift
  redis-cli -h "$host" -p "$port" "$@"
}

# cluster_info PORT FIELD: prints FIELD of `cluster info` on host:PORT; nothing when the server
# does not answer or is not a cluster node.
cluster_info() {
  redis_cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

# redis_pongs PORT: the server on PORT answers PING.
redis_pongs() { [ "$(redis_cli "$1" ping 2>/dev/null)" = PONG ]; }

# cluster_state_ok: every node says cluster_state:ok, so every slot is served.
cluster_state_ok() {
  local port
  for port in "${cluster_ports[@]}"; do
    [ "$(cluster_info "$port" cluster_state)" = ok ] || return 1
  done
}

# start_cluster_node PORT: starts the cluster node of PORT unless a cluster node answers there.
start_cluster_node() {
  local port=$1 dir=$data/cluster/$1
  if reachable "$port"; then
    [ -n "$(cluster_info "$port" cluster_state)" ] ||
      die "something answers on $host:$port but it is not a Redis Cluster node; free the port or set REDIS_CLUSTER_PORTS"
    return 0
  fi
  mkdir -p "$dir"
  say "starting Redis Cluster node on $host:$port (configuration in $dir)"
  redis-server --daemonize yes --dir "$dir" --port "$port" --bind "$host" \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly no
}

# start_cluster starts the nodes that are down, joins them into a cluster when they are not one
# yet, and waits until every node serves.
start_cluster() {
  local count=${#cluster_ports[@]} port addrs=() fresh=0
  [ "$count" -ge 3 ] || die "REDIS_CLUSTER_PORTS names $count port(s); a Redis Cluster needs at least three masters"
  ensure_binary redis-server redis-server
  ensure_binary redis-cli redis-tools
  for port in "${cluster_ports[@]}"; do
    start_cluster_node "$port"
    addrs+=("$host:$port")
  done
  for port in "${cluster_ports[@]}"; do
    wait_for "Redis Cluster node $host:$port" redis_pongs "$port"
    if [ "$(cluster_info "$port" cluster_known_nodes)" = 1 ] &&
      [ "$(cluster_info "$port" cluster_slots_assigned)" = 0 ]; then
      fresh=$((fresh + 1))
    fi
  done
  if [ "$fresh" -eq "$count" ]; then
    say "creating the Redis Cluster of ${addrs[*]}"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$data/cluster/create.log" 2>&1 ||
      die "redis-cli --cluster create failed; see $data/cluster/create.log"
  elif [ "$fresh" -ne 0 ]; then
    die "$fresh of the $count nodes on ports ${cluster_ports[*]} belong to no cluster and the others do;" \
      "run '$0 cluster-stop', remove $data/cluster and start again"
  fi
  wait_for "cluster_state:ok on every Redis Cluster node" cluster_state_ok
  say "Redis Cluster is ready on ${addrs[*]}"
}

# stop_cluster stops every cluster node this script started, keeping their configuration, so
# that the next start brings back the same cluster.
stop_cluster() {
  local port
  for port in "${cluster_ports[@]}"; do
    stop_pidfile "Redis Cluster node $host:$port" "$data/cluster/$port/redis.pid"
  done
}

readonly galera_provider=/usr/lib/galera/libgalera_smm.so

# galera_dir PORT: the directory of the Galera node of PORT.
galera_dir() { printf '%s/galera/%s' "$data" "$1"; }

# galera_sql PORT SQL: runs SQL as root on the Galera node of PORT through its socket, printing
# the result without headers.
galera_sql() {
  mariadb --no-defaults --socket="$(galera_dir "$1")/mysqld.sock" -u root -N -B -e "$2" 2>/dev/null
}

# galera_status PORT NAME: prints the status variable NAME of the node of PORT.
galera_status() { galera_sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2; }

# galera_synced PORT: the node of PORT is ready for clients and Synced with its cluster.
galera_synced() {
  [ "$(galera_status "$1" wsrep_ready)" = ON ] &&
    [ "$(galera_status "$1" wsrep_local_state_comment)" = Synced ]
}

# galera_whole: every node is Synced and its cluster has every node.
galera_whole() {
  local port
  for port in "${galera_ports[@]}"; do
    galera_synced "$port" || return 1
    [ "$(galera_status "$port" wsrep_cluster_size)" = "${#galera_ports[@]}" ] || return 1
  done
}

# galera_running PORT: the mariadbd of the node of PORT runs (a killed one not yet reaped does
# not).
galera_running() {
  local pidfile state
  pidfile=$(galera_dir "$1")/mysqld.pid
  [ -s "$pidfile" ] || return 1
  state=$(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

# galera_wait WHAT SECONDS COMMAND...: as wait_for, for at most SECONDS.
galera_wait() {
  local what=$1 seconds=$2 i
  shift 2
  for ((i = 0; i < seconds * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what within $seconds s; see the logs under $data/galera"
}

# galera_configure PORT USER: writes the configuration file of the node of PORT, run as USER.
galera_configure() {
  local port=$1 user=$2 dir peers=() peer_list p
  dir=$(galera_dir "$port")
  for p in "${galera_ports[@]}"; do
    peers+=("$host:$((p + 1000))")
  done
  peer_list=$(IFS=,; echo "${peers[*]}")
  cat >"$dir/my.cnf" <<CNF
# Written by scripts/services.sh on every start of the node.
[mysqld]
user = $user
datadir = $dir/data
socket = $dir/mysqld.sock
pid-file = $dir/mysqld.pid
log-error = $dir/mysqld.log
port = $port
bind-address = $host
skip-name-resolve
max-connections = 500
performance-schema = OFF
innodb-buffer-pool-size = 64M
innodb-log-file-size = 32M
innodb-flush-log-at-trx-commit = 2
binlog-format = ROW
default-storage-engine = InnoDB
innodb-autoinc-lock-mode = 2
wsrep-on = ON
wsrep-provider = $galera_provider
wsrep-cluster-name = attrcache_galera
wsrep-cluster-address = gcomm://$peer_list
wsrep-node-name = node-$port
wsrep-node-address = $host:$((port + 1000))
wsrep-provider-options = "gmcast.listen_addr=tcp://$host:$((port + 1000));ist.recv_addr=$host:$((port + 2000));gcache.size=64M;evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT5S"
wsrep-sst-method = rsync
wsrep-sst-receive-address = $host:$((port + 3000))
CNF
}

# galera_start_node PORT [--wsrep-new-cluster]: starts the mariadbd of the node of PORT with
# its configuration, creating the data directory if needed (a fresh one holds the system tables
# only on the bootstrapping node; a joining node receives everything from a donor).
galera_start_node() {
  local port=$1 bootstrap=${2:-} dir user
  dir=$(galera_dir "$port")
  user=$(id -un)
  [ "$(id -u)" -ne 0 ] || user=mysql
  mkdir -p "$dir/data"
  if [ -n "$bootstrap" ] && [ ! -d "$dir/data/mysql" ]; then
    say "creating the Galera cluster's data directory in $dir/data"
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      die "mariadb-install-db failed; see $dir/install.log"
  fi
  galera_configure "$port" "$user"
  [ "$user" = "$(id -un)" ] || chown -R "$user:" "$dir"
  local position
  position=$(galera_recovered_position "$port")
  say "starting Galera node $host:$port${bootstrap:+ (new cluster)}${position:+ from $position} (data in $dir)"
  setsid mariadbd --defaults-file="$dir/my.cnf" $bootstrap ${position:+--wsrep-start-position="$position"} </dev/null >/dev/null 2>&1 &
}

# galera_recovered_position PORT: prints the position (uuid:seqno) InnoDB recovers for the node
# of PORT when it stopped without recording it (killed: seqno -1 in grastate.dat), else nothing.
# Started from it, the node asks a donor for the write sets it missed (IST) instead of a whole
# copy (rsync SST), which pauses the donor for its length: while a donor was paused under load,
# two nodes grew to 13 and 19 GB and the OOM killer ended one.
galera_recovered_position() {
  local port=$1 dir state
  dir=$(galera_dir "$port")
  state=$dir/data/grastate.dat
  [ -f "$state" ] && grep -q '^seqno: *-1' "$state" && [ -d "$dir/data/mysql" ] || return 0
  # A recovery that does not end within a minute leaves the node to a whole copy.
  rm -f "$dir/recover.log"
  timeout -k 5 60 mariadbd --defaults-file="$dir/my.cnf" --wsrep-recover --log-error="$dir/recover.log" </dev/null >/dev/null 2>&1 || return 0
  sed -n 's/.*WSREP: Recovered position: *\([0-9a-f-]*:[0-9][0-9]*\).*/\1/p' "$dir/recover.log" | tail -n 1
}

# galera_bootstrap_port: prints the port of the node that may start the cluster when no node
# runs: the one whose grastate.dat says safe_to_bootstrap: 1, else the one with the highest
# committed seqno (its grastate.dat is marked safe), else the first.
galera_bootstrap_port() {
  local port state best= best_seqno=-2 seqno
  for port in "${galera_ports[@]}"; do
    state=$(galera_dir "$port")/data/grastate.dat
    [ -f "$state" ] || continue
    if grep -q '^safe_to_bootstrap: 1' "$state"; then
      echo "$port"
      return 0
    fi
    seqno=$(sed -n 's/^seqno: *//p' "$state")
    if [ -n "$seqno" ] && [ "$seqno" -gt "$best_seqno" ]; then
      best=$port best_seqno=$seqno
    fi
  done
  best=${best:-${galera_ports[0]}}
  state=$(galera_dir "$best")/data/grastate.dat
  [ ! -f "$state" ] || sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$state"
  echo "$best"
}

# start_galera starts the nodes that are down (bootstrapping a cluster when none runs), one at a
# time, and waits until every node is Synced in one cluster.
start_galera() {
  local count=${#galera_ports[@]} port running=0 first
  [ "$count" -ge 3 ] || die "GALERA_PORTS names $count port(s); a Galera cluster that survives a node's loss needs at least three"
  ensure_binary mariadbd mariadb-server
  ensure_binary mariadb mariadb-client
  ensure_binary rsync rsync
  ensure_file "$galera_provider" galera-4
  for port in "${galera_ports[@]}"; do
    if galera_running "$port"; then
      running=$((running + 1))
    elif reachable "$port"; then
      die "something answers on $host:$port but it is not a Galera node this script started; free the port or set GALERA_PORTS"
    fi
  done
  if [ "$running" -eq 0 ]; then
    first=$(galera_bootstrap_port)
    galera_start_node "$first" --wsrep-new-cluster
    galera_wait "the Galera node $host:$first was not ready" 120 galera_synced "$first"
    galera_sql "$first" "
      CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" ||
      die "could not let root in over TCP from $host"
  fi
  for port in "${galera_ports[@]}"; do
    galera_running "$port" && continue
    galera_start_node "$port"
    galera_wait "the Galera node $host:$port did not join" 180 galera_synced "$port"
  done
  galera_wait "the Galera cluster did not see all its $count nodes Synced" 60 galera_whole
  say "Galera cluster is ready on $(printf "$host:%s," "${galera_ports[@]}" | sed "s/,$//")"
}

# stop_galera stops the nodes one after the other, the first last, so that the first is the one
# that may bootstrap the cluster again.
stop_galera() {
  local i
  for ((i = ${#galera_ports[@]} - 1; i >= 0; i--)); do
    stop_pidfile "Galera node $host:${galera_ports[i]}" "$(galera_dir "${galera_ports[i]}")/mysqld.pid"
  done
}

# stop_pidfile NAME PIDFILE: stops the process of PIDFILE if it still runs and waits for it to end.
stop_pidfile() {
  local name=$1 pidfile=$2 pid
  if [ ! -s "$pidfile" ]; then
    say "no $name started by this script"
    return 0
  fi
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $name (pid $pid)"
    kill -TERM "$pid"
    wait_for "$name's exit" bash -c "! kill -0 $pid 2>/dev/null"
  fi
  rm -f "$pidfile"
}

case "${1:-start}" in
  start)
    start_mysql
    start_redis
    ;;
  stop)
    stop_pidfile MariaDB "$mysql_pidfile"
    stop_pidfile Redis "$redis_pidfile"
    ;;
  cluster)
    start_cluster
    ;;
  cluster-stop)
    stop_cluster
    ;;
  galera)
    start_galera
    ;;
  galera-stop)
    stop_galera
    ;;
  bench-tools)
    # make bench runs without them (its own driver, no Redis yardstick), so a failure only warns.
    ( ensure_binary wrk wrk ) || echo "services: make bench will use its built-in driver" >&2
    ( ensure_binary redis-benchmark redis-tools ) || echo "services: make bench will have no Redis yardstick" >&2
    ;;
  *)
    die "usage: $0 [start|stop|cluster|cluster-stop|galera|galera-stop|bench-tools]"
    ;;
esac
