#!/usr/bin/env bash
# Side-by-side HTTP: the upstream called directly (nginx serving a JSON
# answer), nginx as a plain reverse proxy in front of it, and the gateway in
# front of it (every request authenticated, decided and written ahead to the
# evidence log; once without masking, once with the PII detectors and a JSON
# path rule), driven by wrk at 1, 8 and 64 connections, interleaved, several
# rounds, medians. Prints a Markdown table and, with --write, replaces the
# generated section of docs/performance.md.
#
#   bench/http.sh [--write]      # env: DURATION (s per run, 5), ROUNDS (3)
#
# Needs: nginx (nginx-light), wrk, python3 and a release build of gatehouse
# (built or brought up to date here). Everything listens on 127.0.0.1 only,
# in plaintext on both legs so the three are compared like for like.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WRITE=${1:-}

need() { command -v "$1" >/dev/null || { echo "bench/http.sh: $1 not found: $2" >&2; exit 1; }; }
need nginx "sudo apt-get install -y nginx-light"
need wrk "sudo apt-get install -y wrk"
need python3 "sudo apt-get install -y python3"
cargo build --release --locked -p gatehouse >&2  # never bench a stale binary
GW="$ROOT/target/release/gatehouse"

WORK=$(mktemp -d /tmp/gatehouse-http-bench-XXXXXX)
chmod 755 "$WORK"  # nginx workers run as an unprivileged user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); PROXY=$(free_port); GWP=$(free_port); API=$(free_port); PGP=$(free_port)

# The upstream's answer: ten customer records (about 1.4 KB), emails in half.
python3 - "$WORK/customers.json" <<'PY'
import json, sys
rows = [{"id": i, "name": f"Customer {i}", "email": (f"user{i}@example.com" if i % 2 else "n/a"),
         "ssn": "123-45-6789", "note": "order shipped to warehouse 7 in bin 3"} for i in range(10)]
open(sys.argv[1], "w").write(json.dumps({"customers": rows}))
PY
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  upstream api { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$UP;
    location = /customers { default_type application/json; alias $WORK/customers.json; }
  }
  server {
    listen 127.0.0.1:$PROXY;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
nginx -c "$WORK/nginx.conf" -p "$WORK/nginx"

echo "== gateway on $GWP (api: no masking, api-mask: detectors and a JSON path)" >&2
mkdir -p "$WORK/gw"
cat > "$WORK/gw/policy.cedar" <<'EOF'
@id("connect") permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"connect", resource);
@id("read") permit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"http:read", resource)
when { context.path like "/customers*" };
EOF
cat > "$WORK/gw/gatehouse.toml" <<EOF
[server]
data_dir = "data"
api_listen = "127.0.0.1:$API"
[listeners]
postgres = "127.0.0.1:$PGP"
http = "127.0.0.1:$GWP"
plaintext_on_loopback = true
[policy]
files = ["policy.cedar"]
[[connection]]
name = "api"
kind = "http"
url = "http://127.0.0.1:$UP"
[[connection]]
name = "api-mask"
kind = "http"
url = "http://127.0.0.1:$UP"
[connection.masking]
detectors = ["pii"]
json_paths = ["\$..ssn"]
EOF
(cd "$WORK/gw" && GATEHOUSE_LOG=warn "$GW" serve --config gatehouse.toml >"$WORK/gw.log" 2>&1) & PIDS+=($!)
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $GWP)).close(); socket.create_connection(('127.0.0.1', $API)).close()" 2>/dev/null && break
  sleep 0.1
done
TOKEN=$(cd "$WORK/gw" && "$GW" token create --config gatehouse.toml --identity bench --group agents --ttl 1h)

declare -A URL=(
  [direct]="http://127.0.0.1:$UP/customers"
  [nginx-proxy]="http://127.0.0.1:$PROXY/customers"
  [gw]="http://127.0.0.1:$GWP/api/customers"
  [gw-mask]="http://127.0.0.1:$GWP/api-mask/customers"
)
ORDER=(direct nginx-proxy gw gw-mask)
for t in "${ORDER[@]}"; do
  code=$(curl -s -o "$WORK/check" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "${URL[$t]}")
  [ "$code" = 200 ] || { echo "bench/http.sh: $t answered $code: $(cat "$WORK/check")" >&2; exit 1; }
done
grep -q 'masked:email' <(curl -s -H "Authorization: Bearer $TOKEN" "${URL[gw-mask]}") \
  || { echo "bench/http.sh: gw-mask does not mask" >&2; exit 1; }

# One wrk run: "requests/s avg-latency-ms p99-ms".
run() { # target connections
  local out
  out=$(wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "${URL[$1]}")
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^    Latency/ { avg = ms($2) }
    /^     99%/ { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f\n", rps, avg, p99 }' <<<"$out"
}

declare -A RESULTS
CONNS=(1 8 64)
for round in $(seq "$ROUNDS"); do
  for c in "${CONNS[@]}"; do
    for t in "${ORDER[@]}"; do
      r=$(run "$t" "$c")
      RESULTS["$c|$t"]+="$r;"
      echo "round $round c=$c $t: $r" >&2
    done
  done
done

median() { tr ';' '\n' | awk -v f="$1" 'NF{print $f}' | sort -g | awk '{a[NR]=$1} END{if(NR==0){print 0}else if(NR%2){print a[(NR+1)/2]}else{print (a[NR/2]+a[NR/2+1])/2}}'; }
TABLE=$(
  printf '| wrk'; for t in "${ORDER[@]}"; do printf ' | %s' "$t"; done; echo ' |'
  printf '|---'; for _ in "${ORDER[@]}"; do printf '|---'; done; echo '|'
  for c in "${CONNS[@]}"; do
    d=$(echo "${RESULTS["$c|direct"]}" | median 1)
    printf '| %s conn. requests/s' "$c"
    for t in "${ORDER[@]}"; do
      m=$(echo "${RESULTS["$c|$t"]}" | median 1)
      printf ' | %.0f (%s)' "$m" "$(awk -v a="$m" -v b="$d" 'BEGIN{ if (b>0) printf "%.0f%%", 100*a/b; else print "-" }')"
    done
    echo ' |'
    printf '| %s conn. latency avg / p99 ms' "$c"
    for t in "${ORDER[@]}"; do
      printf ' | %.3f / %.3f' "$(echo "${RESULTS["$c|$t"]}" | median 2)" "$(echo "${RESULTS["$c|$t"]}" | median 3)"
    done
    echo ' |'
  done
)
HEADER="$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), ${ROUNDS} rounds of ${DURATION}s per cell, medians; $(nproc) cores; one nginx worker; evidence durability disk"
echo
echo "$HEADER"
echo
echo "$TABLE"
if [ "$WRITE" = --write ]; then
  python3 - "$ROOT/docs/performance.md" "$HEADER" "$TABLE" <<'PY'
import sys
path, header, table = sys.argv[1:4]
doc = open(path).read()
begin, end = "<!-- bench/http.sh begin -->", "<!-- bench/http.sh end -->"
section = f"{begin}\n{header}\n\n{table}\n{end}"
if begin in doc:
    doc = doc[:doc.index(begin)] + section + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip("\n") + "\n\n## bench/http.sh (latest run)\n\n" + section + "\n"
open(path, "w").write(doc)
PY
  echo "wrote docs/performance.md" >&2
fi
