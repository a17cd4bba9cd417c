#!/usr/bin/env bash
# Side-by-side pgbench: direct PostgreSQL, a plain TCP relay (socat), PgBouncer
# (session pooling) and the gateway in several configurations, interleaved,
# several rounds, medians. Prints a Markdown table (ratios to direct) and, with
# --write, replaces the generated section of docs/performance.md.
#
#   bench/pg.sh [--write]        # env: DURATION (s per run, 5), ROUNDS (3), SCALE (10),
#                                #      LARGE_ROWS (7000000: about 1 GB)
#   bench/pg.sh --quick          # direct, relay, PgBouncer and gw-mask only: -S -M prepared
#                                # at 1 and 8 clients, TPC-B at 8, and -C; one round, no large
#                                # result; the same table in about two minutes (never --write)
#
# Needs: postgresql (initdb, pg_ctl, pgbench, psql), pgbouncer, socat, and a
# release build of gatehouse (built or brought up to date here). Runs as root too (the
# cluster then runs as the postgres user). Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
WRITE=
QUICK=
for arg in "$@"; do
  case "$arg" in
    --write) WRITE=--write ;;
    --quick) QUICK=1 ;;
    *) echo "bench/pg.sh: unknown argument $arg (--write, --quick)" >&2; exit 2 ;;
  esac
done
if [ -n "$QUICK" ] && [ -n "$WRITE" ]; then
  echo "bench/pg.sh: --quick runs one round of a few workloads; it does not replace the full run in docs/performance.md (drop --write)" >&2
  exit 2
fi
[ -n "$QUICK" ] && ROUNDS=1

need() { command -v "$1" >/dev/null || { echo "bench/pg.sh: $1 not found: $2" >&2; exit 1; }; }
PGBIN=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
export PATH="$PGBIN:$PATH"
need initdb "sudo apt-get install -y postgresql"
need pgbench "sudo apt-get install -y postgresql-client"
need pgbouncer "sudo apt-get install -y pgbouncer"
need socat "sudo apt-get install -y socat"
need openssl "sudo apt-get install -y openssl"
cargo build --release --locked -p gatehouse >&2  # a no-op when up to date; never bench a stale binary
GW="$ROOT/target/release/gatehouse"

WORK=$(mktemp -d /tmp/gatehouse-bench-XXXXXX)
AS=()
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK"; AS=(runuser -u postgres --); fi
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "${AS[@]}" pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG=$(free_port); RELAY=$(free_port); BOUNCER=$(free_port); GW1=$(free_port); GW2=$(free_port); API1=$(free_port); API2=$(free_port); GW3=$(free_port); API3=$(free_port); GW4=$(free_port); API4=$(free_port)

echo "== PostgreSQL on $PG" >&2
echo postgres > "$WORK/pw"; [ ${#AS[@]} -gt 0 ] && chown postgres "$WORK/pw"
"${AS[@]}" initdb -D "$WORK/data" -U postgres --pwfile="$WORK/pw" --auth=scram-sha-256 >/dev/null
cat >> "$WORK/data/postgresql.conf" <<EOF
port = $PG
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_connections = 300
shared_buffers = '256MB'
fsync = off
synchronous_commit = off
ssl = on
ssl_cert_file = '$WORK/pg.crt'
ssl_key_file = '$WORK/pg.key'
EOF
# TLS for the direct-with-TLS connection rate (the gateway's client leg is TLS too there).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/pg.key" -out "$WORK/pg.crt" -days 1 -subj /CN=localhost >/dev/null 2>&1
chmod 600 "$WORK/pg.key"; [ ${#AS[@]} -gt 0 ] && chown postgres "$WORK/pg.key" "$WORK/pg.crt"
"${AS[@]}" pg_ctl -D "$WORK/data" -l "$WORK/pg.log" -w start >/dev/null
export PGPASSWORD=postgres PGSSLMODE=disable
psql -h 127.0.0.1 -p "$PG" -U postgres -qc "create role app_owner login password 'apppw'"
psql -h 127.0.0.1 -p "$PG" -U postgres -qc "create database app owner app_owner"
PGPASSWORD=apppw pgbench -h 127.0.0.1 -p "$PG" -U app_owner -i -s "$SCALE" -q app >/dev/null 2>&1

echo "== relay (socat) on $RELAY, PgBouncer on $BOUNCER" >&2
socat TCP-LISTEN:$RELAY,fork,reuseaddr,bind=127.0.0.1 TCP:127.0.0.1:$PG & PIDS+=($!)
cat > "$WORK/bouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$PG dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER
auth_type = plain
auth_file = $WORK/userlist.txt
pool_mode = session
max_client_conn = 500
default_pool_size = 100
unix_socket_dir =
logfile = $WORK/bouncer.log
pidfile = $WORK/bouncer.pid
EOF
echo '"app_owner" "apppw"' > "$WORK/userlist.txt"
[ ${#AS[@]} -gt 0 ] && chown postgres "$WORK"/bouncer.ini "$WORK"/userlist.txt
"${AS[@]}" pgbouncer "$WORK/bouncer.ini" >/dev/null 2>&1 & PIDS+=($!)

echo "== gateways on $GW1 (allow-all policy), $GW2 (starter-like policy) and $GW3 (policy and masking)" >&2
cat > "$WORK/allow.cedar" <<'EOF'
@id("allow-all") permit (principal, action, resource);
EOF
cat > "$WORK/starter.cedar" <<'EOF'
@id("connect") permit (principal in Gatehouse::Group::"ci", action == Gatehouse::Action::"connect", resource == Gatehouse::Connection::"app-db");
@id("ci-rw") permit (principal in Gatehouse::Group::"ci", action in [Gatehouse::Action::"select", Gatehouse::Action::"insert", Gatehouse::Action::"update", Gatehouse::Action::"delete", Gatehouse::Action::"transaction", Gatehouse::Action::"set", Gatehouse::Action::"copy_out"], resource in Gatehouse::Connection::"app-db");
@id("no-truncate") forbid (principal, action == Gatehouse::Action::"truncate", resource);
@id("unbounded") @approval("dba") forbid (principal, action in [Gatehouse::Action::"delete", Gatehouse::Action::"update"], resource) when { !context.has_where };
EOF
gw_config() { # name port api policy [extra config]
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/gatehouse.toml" <<EOF
[server]
data_dir = "data"
api_listen = "127.0.0.1:$3"
[listeners]
postgres = "127.0.0.1:$2"
plaintext_on_loopback = true
[policy]
files = ["$4"]
[limits]
max_sessions_per_identity = 128   # one bench identity opens 64 sessions at once
[[approval.route]]
name = "dba"
approvers = ["dba-leads"]
[[connection]]
name = "app-db"
kind = "postgres"
host = "127.0.0.1"
port = $PG
database = "app"
user = "app_owner"
password_env = "BENCH_APP_PASSWORD"
backend_tls = "disable"
${5:-}
EOF
  BENCH_APP_PASSWORD=apppw GATEHOUSE_LOG=warn "$GW" serve --config "$WORK/$1/gatehouse.toml" >"$WORK/$1.log" 2>&1 & PIDS+=($!)
  GWPID[$1]=$!
}
declare -A GWPID
gw_config gw-allow "$GW1" "$API1" "$WORK/allow.cedar"
gw_config gw-policy "$GW2" "$API2" "$WORK/starter.cedar"
gw_config gw-mask "$GW3" "$API3" "$WORK/starter.cedar" '[connection.masking]
detectors = ["all"]
[[connection.masking.rule]]
column_pattern = "*ssn*"'
gw_config gw-os "$GW4" "$API4" "$WORK/allow.cedar" '[evidence]
durability = "os"'
for port in $GW1 $GW2 $GW3 $GW4 $RELAY $BOUNCER; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
TOKEN1=$("$GW" --config "$WORK/gw-allow/gatehouse.toml" token create --identity bench --group ci --ttl 1d 2>/dev/null)
TOKEN2=$("$GW" --config "$WORK/gw-policy/gatehouse.toml" token create --identity bench --group ci --ttl 1d 2>/dev/null)
TOKEN3=$("$GW" --config "$WORK/gw-mask/gatehouse.toml" token create --identity bench --group ci --ttl 1d 2>/dev/null)
TOKEN4=$("$GW" --config "$WORK/gw-os/gatehouse.toml" token create --identity bench --group ci --ttl 1d 2>/dev/null)

# target name -> "port dbname password [sslmode]"
declare -A TARGET=(
  [direct]="$PG app apppw"
  [relay]="$RELAY app apppw"
  [pgbouncer]="$BOUNCER app apppw"
  [gw-allow]="$GW1 app-db $TOKEN1"
  [gw-policy]="$GW2 app-db $TOKEN2"
  [gw-mask]="$GW3 app-db $TOKEN3"
  [gw-os]="$GW4 app-db $TOKEN4"
  [direct-tls]="$PG app apppw require"
  [gw-tls]="$GW1 app-db $TOKEN1 require"
)
ORDER=(direct relay pgbouncer gw-allow gw-os gw-policy gw-mask)
[ -n "$QUICK" ] && ORDER=(direct relay pgbouncer gw-mask)
WORKLOADS=(
  "S-simple-c1|-S -M simple -c 1"
  "S-extended-c1|-S -M extended -c 1"
  "S-prepared-c1|-S -M prepared -c 1"
  "S-simple-c8|-S -M simple -c 8 -j 2"
  "S-extended-c8|-S -M extended -c 8 -j 2"
  "S-prepared-c8|-S -M prepared -c 8 -j 2"
  "S-simple-c64|-S -M simple -c 64 -j 2"
  "S-extended-c64|-S -M extended -c 64 -j 2"
  "S-prepared-c64|-S -M prepared -c 64 -j 2"
  "tpcb-prepared-c8|-M prepared -c 8 -j 2"
)
[ -n "$QUICK" ] && WORKLOADS=(
  "S-prepared-c1|-S -M prepared -c 1"
  "S-prepared-c8|-S -M prepared -c 8 -j 2"
  "tpcb-prepared-c8|-M prepared -c 8 -j 2"
)

declare -A RESULTS
run() { # target workload-args -> "tps latency_ms p99_ms"
  read -r port db pw ssl <<<"${TARGET[$1]}"
  local out log="$WORK/txlog"
  rm -f "$log".*
  # Per-transaction log (-l) at one client, for the p99.
  local extra=()
  [[ $2 == *"-c 1" ]] && extra=(-l --log-prefix="$log")
  out=$(PGSSLMODE="${ssl:-disable}" PGPASSWORD="$pw" pgbench -h 127.0.0.1 -p "$port" -U app_owner -T "$DURATION" $2 "${extra[@]}" "$db" 2>&1) || { echo "0 0 0"; return; }
  local tps lat p99=0
  tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)
  lat=$(grep -oP 'latency average = \K[0-9.]+' <<<"$out" | head -1)
  if [ ${#extra[@]} -gt 0 ]; then
    p99=$(cat "$log".* 2>/dev/null | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END{if(NR){printf "%.3f", a[int(NR*0.99)]/1000}else{print 0}}')
  fi
  echo "${tps:-0} ${lat:-0} ${p99:-0}"
}
for round in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}; args=${w#*|}
    for t in "${ORDER[@]}"; do
      r=$(run "$t" "$args")
      RESULTS["$name|$t"]+="$r;"
      echo "round $round $name $t: $r" >&2
    done
  done
done

# Connection set-up rate: every transaction a new connection (pgbench -C):
# login, one SELECT, logout. direct-tls and gw-tls use TLS (the gateway also
# checks the service token against its store and writes the login ahead).
CONN_ORDER=(direct direct-tls relay pgbouncer gw-allow gw-tls)
[ -n "$QUICK" ] && CONN_ORDER=(direct relay pgbouncer gw-mask)
declare -A CONN
for round in $(seq "$ROUNDS"); do
  for t in "${CONN_ORDER[@]}"; do
    r=$(run "$t" "-C -S -M simple -c 4 -j 2")
    CONN[$t]+="$r;"
    echo "round $round connect $t: $r" >&2
  done
done

# A large result: realistic rows (a quarter with an email and a card number),
# read whole with psql, interleaved like the rest; seconds and MB/s.
declare -A LARGE COPY RSS
LARGE_MB=0
if [ -z "$QUICK" ]; then
PGPASSWORD=apppw psql -q -h 127.0.0.1 -p "$PG" -U app_owner app >/dev/null <<SQL
CREATE TABLE people AS
SELECT g AS id, 'Customer ' || g AS name,
       CASE WHEN g % 4 = 0 THEN 'user' || g || '@example.com' ELSE 'n/a' END AS email,
       CASE WHEN g % 4 = 0 THEN '4111 1111 1111 1111' ELSE 'none' END AS card,
       'order shipped to warehouse ' || (g % 17) || ' in bin ' || (g % 5) || '-' || g AS note,
       now() - (g || ' minutes')::interval AS created
FROM generate_series(1, ${LARGE_ROWS:-7000000}) g;
SQL
LARGE_MB=$(PGPASSWORD=apppw psql -At -h 127.0.0.1 -p "$PG" -U app_owner -c "SELECT round(sum(pg_column_size(p.*))/1e6) FROM people p" app)
GW_MASK_PID=${GWPID[gw-mask]}
rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$GW_MASK_PID/status"; }
for round in $(seq "$ROUNDS"); do
  for t in direct relay gw-allow gw-mask; do
    read -r port db pw <<<"${TARGET[$t]}"
    # The masking gateway's memory, sampled while it streams the result.
    peak_file="$WORK/rss-peak"; echo 0 > "$peak_file"
    if [ "$t" = gw-mask ]; then
      ( peak=0; while :; do r=$(rss_mb); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" > "$peak_file"; sleep 0.05; done ) & SAMPLER=$!
      RSS[before]+="$(rss_mb);"
    fi
    start=$(date +%s.%N)
    PGPASSWORD="$pw" psql -At -h 127.0.0.1 -p "$port" -U app_owner -c "SELECT * FROM people" "$db" >/dev/null
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    start=$(date +%s.%N)
    PGPASSWORD="$pw" psql -At -h 127.0.0.1 -p "$port" -U app_owner -c "COPY people TO STDOUT" "$db" >/dev/null
    csecs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    if [ "$t" = gw-mask ]; then kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true; RSS[peak]+="$(cat "$peak_file");"; fi
    LARGE[$t]+="$secs;"
    COPY[$t]+="$csecs;"
    echo "round $round large-result $t: SELECT ${secs}s, COPY ${csecs}s" >&2
  done
done
fi

median() { tr ';' '\n' | awk -v f="$1" 'NF{print $f}' | sort -g | awk '{a[NR]=$1} END{if(NR==0){print 0}else if(NR%2){print a[(NR+1)/2]}else{print (a[NR/2]+a[NR/2+1])/2}}'; }
TABLE=$(
  printf '| workload'; for t in "${ORDER[@]}"; do printf ' | %s' "$t"; done; echo ' |'
  printf '|---'; for _ in "${ORDER[@]}"; do printf '|---'; done; echo '|'
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}
    d=$(echo "${RESULTS["$name|direct"]}" | median 1)
    printf '| %s TPS' "$name"
    for t in "${ORDER[@]}"; do
      m=$(echo "${RESULTS["$name|$t"]}" | median 1)
      pct=$(awk -v a="$m" -v b="$d" 'BEGIN{ if (b>0) printf "%.0f%%", 100*a/b; else print "-" }')
      printf ' | %.0f (%s)' "$m" "$pct"
    done
    echo ' |'
    if [[ $name == *c1 ]]; then
      printf '| %s latency avg ms' "$name"
      for t in "${ORDER[@]}"; do printf ' | %.3f' "$(echo "${RESULTS["$name|$t"]}" | median 2)"; done
      echo ' |'
      printf '| %s latency p99 ms' "$name"
      for t in "${ORDER[@]}"; do printf ' | %.3f' "$(echo "${RESULTS["$name|$t"]}" | median 3)"; done
      echo ' |'
    fi
  done
  echo
  echo "Connection set-up (pgbench -C: connect, one SELECT, disconnect; 4 clients), connections per second (ratio to direct):"
  echo
  printf '|'; for t in "${CONN_ORDER[@]}"; do printf ' %s |' "$t"; done; echo
  printf '|'; for _ in "${CONN_ORDER[@]}"; do printf -- '---|'; done; echo
  d=$(echo "${CONN[direct]}" | median 1)
  printf '|'
  for t in "${CONN_ORDER[@]}"; do
    m=$(echo "${CONN[$t]}" | median 1)
    printf ' %.0f (%.0f%%) |' "$m" "$(awk -v a="$m" -v b="$d" 'BEGIN{ if (b>0) print 100*a/b; else print 0 }')"
  done
  echo
  echo
  if [ -n "$QUICK" ]; then
    echo "(--quick: one round, no large result.)"
  else
  echo "Large result: ${LARGE_MB} MB (${LARGE_ROWS:-7000000} rows, a quarter with an email and a card) read by psql, median seconds (MB/s, ratio to direct):"
  echo
  echo "| | direct | relay | gw-allow | gw-mask |"
  echo "|---|---|---|---|---|"
  for kind in SELECT COPY; do
    printf '| %s' "$kind"
    for t in direct relay gw-allow gw-mask; do
      if [ "$kind" = SELECT ]; then series=${LARGE[$t]}; dser=${LARGE[direct]}; else series=${COPY[$t]}; dser=${COPY[direct]}; fi
      m=$(echo "$series" | median 1); d=$(echo "$dser" | median 1)
      printf ' | %.2fs (%.0f MB/s, %.0f%%)' "$m" "$(awk -v a="$LARGE_MB" -v b="$m" 'BEGIN{print a/b}')" "$(awk -v a="$d" -v b="$m" 'BEGIN{print 100*a/b}')"
    done
    echo ' |'
  done
  echo
  echo "gw-mask resident memory: $(echo "${RSS[before]}" | median 1) MB before the large result, $(echo "${RSS[peak]}" | median 1) MB at most while streaming it (sampled every 50 ms)."
  fi
)
MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); $(postgres --version | head -1); $(pgbouncer --version | head -1); $("$GW" --version)"
REPORT=$(cat <<EOF
Run $(date -u +%Y-%m-%dT%H:%MZ): pgbench scale $SCALE, ${DURATION}s per run, $ROUNDS rounds interleaved, medians (ratio to direct).
Machine: $MACHINE.
gw-allow: gateway, plaintext on loopback, allow-all policy (every statement still analyzed, recorded, and written ahead to the evidence log with an fsync: durability "disk", the default).
gw-os: gw-allow with the evidence log's durability "os" (written to the operating system before forwarding, no fsync).
gw-policy: the same with a four-policy set (connect, CI read/write, no TRUNCATE, unbounded writes need approval).
gw-mask: gw-policy plus masking (every built-in detector, one column rule, so results are classified through the catalog): everything on.
direct-tls, gw-tls: direct and gw-allow with TLS on the client leg (connection rate only).

$TABLE
EOF
)
echo "$REPORT"
if [ "$WRITE" = "--write" ]; then
  python3 - "$ROOT/docs/performance.md" "$REPORT" <<'EOF'
import sys
path, report = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- bench/pg.sh begin -->", "<!-- bench/pg.sh end -->"
block = f"{begin}\n{report}\n{end}"
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n## bench/pg.sh (latest run)\n\n" + block + "\n"
open(path, "w").write(text)
EOF
  echo "wrote docs/performance.md" >&2
fi
