#!/usr/bin/env bash
# MySQL through the gateway against direct and a plain TCP relay (socat):
# sysbench oltp_read_only with prepared statements (binary protocol) and
# with plain queries (text protocol), interleaved rounds, on a throwaway
# MariaDB on loopback. Prints a Markdown table of transactions per second
# and the 95th-percentile latency.
#
#   bench/mysql.sh       # env: SECONDS_EACH (15), THREADS (4), ROUNDS (2), ROWS (10000)
#
# Every leg is plain TCP on loopback (the gateway with
# plaintext_on_loopback), so the figures compare the gateway's work, not
# TLS. The gateway decides every statement with a policy, writes each
# decision ahead to its evidence log, and records each result.
#
# Needs: mariadb-server (mariadb-install-db, mariadbd), sysbench, socat, and
# a release build of gatehouse (built or brought up to date here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECONDS_EACH=${SECONDS_EACH:-15}
THREADS=${THREADS:-4}
ROUNDS=${ROUNDS:-2}
ROWS=${ROWS:-10000}
need() { command -v "$1" >/dev/null || { echo "bench/mysql.sh: $1 not found: $2" >&2; exit 1; }; }
need mariadb-install-db "sudo apt-get install -y mariadb-server"
need sysbench "sudo apt-get install -y sysbench"
need socat "sudo apt-get install -y socat"
cargo build --release --locked -p gatehouse >&2
GW="$ROOT/target/release/gatehouse"

WORK=$(mktemp -d /tmp/gatehouse-mysql-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB=$(free_port); RELAY=$(free_port); PGL=$(free_port); API=$(free_port); GWP=$(free_port)

AS_ROOT=()
[ "$(id -u)" = 0 ] && AS_ROOT=(--user=root)
mariadb-install-db --no-defaults --datadir="$WORK/db" --auth-root-authentication-method=normal \
  --skip-test-db >"$WORK/install.log" 2>&1
mariadbd --no-defaults "${AS_ROOT[@]}" --datadir="$WORK/db" --socket="$WORK/db.sock" \
  --port="$DB" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$WORK/db.pid" \
  --log-error="$WORK/db.err" --innodb-buffer-pool-size=256M --max-connections=500 \
  --max-connect-errors=1000000000 &
PIDS+=($!)
for _ in $(seq 100); do
  mariadb --no-defaults --user=root --socket="$WORK/db.sock" -e 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
mariadb --no-defaults --user=root --socket="$WORK/db.sock" -e "
  CREATE DATABASE sbtest;
  CREATE USER bench@'%' IDENTIFIED BY 'bench-pw';
  GRANT ALL ON sbtest.* TO bench@'%';"
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --tables=1 --table-size="$ROWS" --threads="$THREADS")
sysbench oltp_read_only "${SB[@]}" --mysql-port="$DB" --mysql-user=bench \
  --mysql-password=bench-pw --mysql-db=sbtest prepare >/dev/null

socat TCP-LISTEN:$RELAY,fork,reuseaddr,nodelay,bind=127.0.0.1 TCP:127.0.0.1:$DB,nodelay &
PIDS+=($!)

cat > "$WORK/policy.cedar" <<'EOF2'
@id("connect") permit (principal, action == Gatehouse::Action::"connect", resource);
@id("reads") permit (principal, action in [Gatehouse::Action::"select", Gatehouse::Action::"transaction", Gatehouse::Action::"set"], resource);
@id("no-drops") forbid (principal, action == Gatehouse::Action::"ddl", resource);
EOF2
cat > "$WORK/gatehouse.toml" <<EOF2
[server]
data_dir = "data"
api_listen = "127.0.0.1:$API"
[listeners]
postgres = "127.0.0.1:$PGL"
mysql = "127.0.0.1:$GWP"
plaintext_on_loopback = true
[policy]
files = ["policy.cedar"]
[limits]
max_sessions_per_identity = 1000
[[connection]]
name = "sbtest"
kind = "mysql"
host = "127.0.0.1"
port = $DB
database = "sbtest"
user = "bench"
password_env = "BENCH_DB_PASSWORD"
backend_tls = "disable"
EOF2
BENCH_DB_PASSWORD=bench-pw "$GW" serve --config "$WORK/gatehouse.toml" 2>"$WORK/gw.log" &
PIDS+=($!)
for _ in $(seq 100); do
  (echo > /dev/tcp/127.0.0.1/$GWP) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$API) 2>/dev/null && break
  sleep 0.1
done
TOKEN=$("$GW" --config "$WORK/gatehouse.toml" token create --identity bench --ttl 1h 2>/dev/null)

run() { # target ps-mode: "tps p95"
  local target=$1 mode=$2 port user pw
  case $target in
    direct) port=$DB; user=bench; pw=bench-pw ;;
    relay) port=$RELAY; user=bench; pw=bench-pw ;;
    gateway) port=$GWP; user=bench; pw=$TOKEN ;;
  esac
  # libmariadb loads mysql_clear_password (which carries the token) on
  # first use, racing when several threads connect at once ("it is already
  # loaded"): loaded up front instead.
  LIBMYSQL_PLUGINS=mysql_clear_password \
  sysbench oltp_read_only "${SB[@]}" --mysql-port="$port" --mysql-user="$user" \
    --mysql-password="$pw" --mysql-db=sbtest --db-ps-mode="$mode" --time="$SECONDS_EACH" \
    --report-interval=0 run >"$WORK/run.log" 2>&1 || true
  grep -q "transactions:" "$WORK/run.log" || { echo "bench/mysql.sh: $target ($mode) failed:" >&2; tail -5 "$WORK/run.log" >&2; }
  awk '/transactions:/ {gsub("\\(",""); tps=$3} /95th percentile:/ {p95=$3} END {print tps, p95}' "$WORK/run.log"
}

declare -A TPS P95
for round in $(seq "$ROUNDS"); do
  for mode in auto disable; do
    for t in direct relay gateway; do
      read -r tps p95 < <(run "$t" "$mode")
      echo "round $round $mode $t: $tps tps, p95 $p95 ms" >&2
      TPS[$t.$mode]="${TPS[$t.$mode]:-} $tps"
      P95[$t.$mode]="${P95[$t.$mode]:-} $p95"
    done
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "sysbench oltp_read_only, $THREADS threads, $ROWS rows, ${SECONDS_EACH}s x $ROUNDS rounds (median)"
echo
echo "| | direct | relay (socat) | gateway |"
echo "|---|---|---|---|"
for mode in auto disable; do
  label="prepared statements (tps)"; [ "$mode" = disable ] && label="plain queries (tps)"
  echo "| $label | $(median "${TPS[direct.$mode]}") | $(median "${TPS[relay.$mode]}") | $(median "${TPS[gateway.$mode]}") |"
  echo "| p95 latency (ms) | $(median "${P95[direct.$mode]}") | $(median "${P95[relay.$mode]}") | $(median "${P95[gateway.$mode]}") |"
done
ps -o rss= -p "$(pgrep -f "gatehouse serve --config $WORK" | head -1)" | awk '{printf "\ngateway RSS at the end: %d MiB\n", $1/1024}'
