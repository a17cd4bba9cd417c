#!/usr/bin/env bash
# SSH through the gateway against direct: scp throughput both ways and the
# round trip of one command, on a real sshd on loopback. Prints a Markdown
# table.
#
#   bench/ssh.sh            # env: SIZE_MB (file size, 1024), RUNS (exec round trips, 50)
#
# The caller logs in to the gateway with a certificate from `gatehouse ssh
# login` and to sshd with a key, so no password prompt is timed. Exec round
# trips run over one multiplexed client connection (ControlMaster), so they
# time a channel (open, decide, record, run `true`, close), not a login;
# "login + exec" times a fresh connection each time.
#
# Needs: openssh-server, openssh-client and a release build of gatehouse
# (built or brought up to date here). Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-50}
[ -x /usr/sbin/sshd ] || { echo "bench/ssh.sh: /usr/sbin/sshd not found: sudo apt-get install -y openssh-server" >&2; exit 1; }
command -v scp >/dev/null || { echo "bench/ssh.sh: scp not found: sudo apt-get install -y openssh-client" >&2; exit 1; }
cargo build --release --locked -p gatehouse >&2
GW="$ROOT/target/release/gatehouse"

WORK=$(mktemp -d /tmp/gatehouse-ssh-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  ssh -O exit -o ControlPath="$WORK/direct.ctl" x 2>/dev/null || true
  ssh -O exit -o ControlPath="$WORK/gw.ctl" x 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SSHD=$(free_port); PGL=$(free_port); API=$(free_port); GWP=$(free_port)
USER_NAME=$(id -un)

ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/gw_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/direct_key"
cat "$WORK/gw_key.pub" "$WORK/direct_key.pub" > "$WORK/authorized_keys"
mkdir -p /run/sshd
cat > "$WORK/sshd_config" <<EOF
Port $SSHD
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
Subsystem sftp internal-sftp
MaxSessions 100
EOF
/usr/sbin/sshd -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
PIDS+=($!)

cat > "$WORK/policy.cedar" <<'EOF'
@id("all") permit (principal, action, resource);
EOF
cat > "$WORK/gatehouse.toml" <<EOF
[server]
data_dir = "data"
api_listen = "127.0.0.1:$API"
[listeners]
postgres = "127.0.0.1:$PGL"
ssh = "127.0.0.1:$GWP"
[policy]
files = ["policy.cedar"]
[[connection]]
name = "host"
kind = "ssh"
host = "127.0.0.1"
port = $SSHD
user = "$USER_NAME"
private_key_file = "gw_key"
host_key_file = "host_key.pub"
EOF
"$GW" serve --config "$WORK/gatehouse.toml" 2>"$WORK/gw.log" &
PIDS+=($!)
for _ in $(seq 100); do
  (echo > /dev/tcp/127.0.0.1/$GWP) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$API) 2>/dev/null && break
  sleep 0.1
done
"$GW" --config "$WORK/gatehouse.toml" token create --identity bench --ttl 1h > "$WORK/token" 2>/dev/null
"$GW" --config "$WORK/gatehouse.toml" ssh login --token-file "$WORK/token" --key "$WORK/cert_key" >/dev/null
"$GW" --config "$WORK/gatehouse.toml" ssh host-key --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["known_hosts"])' > "$WORK/known_hosts"
echo "[127.0.0.1]:$SSHD $(cat "$WORK/host_key.pub")" >> "$WORK/known_hosts"

COMMON=(-F /dev/null -o UserKnownHostsFile="$WORK/known_hosts" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes -o Ciphers=aes256-gcm@openssh.com)
DIRECT=("${COMMON[@]}" -i "$WORK/direct_key")
THROUGH=("${COMMON[@]}" -i "$WORK/cert_key")

head -c "$((SIZE_MB << 20))" /dev/urandom > "$WORK/file"
now() { date +%s.%N; }
rate() { python3 -c "print(f'{$SIZE_MB / ($2 - $1):.0f}')"; }

scp_time() { # direction port options... target
  local dir=$1 port=$2; shift 2
  local t0 t1
  t0=$(now)
  if [ "$dir" = up ]; then
    scp -q -P "$port" "$@" "$WORK/file" "$TARGET:$WORK/remote" 
  else
    scp -q -P "$port" "$@" "$TARGET:$WORK/remote" "$WORK/back"
  fi
  t1=$(now)
  rate "$t0" "$t1"
}

TARGET="$USER_NAME@127.0.0.1"; D_UP=$(scp_time up "$SSHD" "${DIRECT[@]}")
D_DOWN=$(scp_time down "$SSHD" "${DIRECT[@]}")
TARGET="host@127.0.0.1"; G_UP=$(scp_time up "$GWP" "${THROUGH[@]}")
G_DOWN=$(scp_time down "$GWP" "${THROUGH[@]}")
cmp -s "$WORK/file" "$WORK/back" || { echo "bench/ssh.sh: the file came back different" >&2; exit 1; }

exec_rtt() { # port target options...: median ms of RUNS `true` over one connection
  local port=$1 target=$2 ctl=$3; shift 3
  ssh -p "$port" "$@" -o ControlMaster=yes -o ControlPath="$ctl" -o ControlPersist=120 -fN "$target"
  local times=()
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(now); ssh -p "$port" "$@" -o ControlPath="$ctl" "$target" true; t1=$(now)
    times+=("$(python3 -c "print(($t1 - $t0) * 1000)")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'
}
login_exec() { # port target options...: median ms of 10 fresh logins running `true`
  local port=$1 target=$2; shift 2
  local times=()
  for _ in $(seq 10); do
    local t0 t1
    t0=$(now); ssh -p "$port" "$@" "$target" true; t1=$(now)
    times+=("$(python3 -c "print(($t1 - $t0) * 1000)")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'
}
D_RTT=$(exec_rtt "$SSHD" "$USER_NAME@127.0.0.1" "$WORK/direct.ctl" "${DIRECT[@]}")
G_RTT=$(exec_rtt "$GWP" "host@127.0.0.1" "$WORK/gw.ctl" "${THROUGH[@]}")
D_LOGIN=$(login_exec "$SSHD" "$USER_NAME@127.0.0.1" "${DIRECT[@]}")
G_LOGIN=$(login_exec "$GWP" "host@127.0.0.1" "${THROUGH[@]}")
GW_RSS=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/${PIDS[1]}/status")

cat <<EOF
| | direct | through the gateway |
|---|---|---|
| scp upload, ${SIZE_MB} MiB (MiB/s) | $D_UP | $G_UP |
| scp download, ${SIZE_MB} MiB (MiB/s) | $D_DOWN | $G_DOWN |
| exec \`true\` on an open connection, median of $RUNS (ms) | $D_RTT | $G_RTT |
| login + exec \`true\`, median of 10 (ms) | $D_LOGIN | $G_LOGIN |

Gateway peak resident memory over the run: ${GW_RSS} MiB.
EOF
