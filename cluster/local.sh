#!/usr/bin/env bash
# A two-node Ray cluster on this machine: a head, plus a second node joined with `ray start --address`.
#
#   cluster/local.sh up      # start both nodes; prints the dashboard address for `rtrain submit --address`
#   cluster/local.sh status  # the nodes and resources (ray status)
#   cluster/local.sh down    # stop only what `up` started, never other Ray instances on this machine
#
# `down` does not use `ray stop` (which kills every Ray process on the machine). `up` starts each node in
# its own session (setsid) with a Ray temp dir of its own, and records both process groups; `down` stops
# the members of those groups, their descendants (Ray workers and job drivers start sessions of their
# own), and any process whose command line or working directory lies in that temp dir.
#
# Settings (environment):
#   RTRAIN_LOCAL_PORT             GCS port of the head (default 46379; not Ray's 6379, to avoid other clusters)
#   RTRAIN_LOCAL_DASHBOARD_PORT   dashboard / job API port (default 48265)
#   RTRAIN_LOCAL_CLIENT_PORT      Ray Client server port (default 40001)
#   RTRAIN_LOCAL_DIR              state and Ray temp dir (default /tmp/rtrain-local-<uid>-$RTRAIN_LOCAL_PORT; keep
#                                 it short: Ray's socket paths under it must stay below 108 characters). `up` uses
#                                 it only if it is new or empty (or an earlier `up` made it), owned by you and not a
#                                 symlink, and makes it mode 700; `down` deletes it only if `up` created it.
#   RTRAIN_LOCAL_HEAD_CPUS, RTRAIN_LOCAL_WORKER_CPUS   CPUs each node offers (default 1 and 1)
#   RTRAIN_LOCAL_OBJECT_STORE_BYTES                    object store per node (default 500000000)
#   RTRAIN_LOCAL_KEEP_LOGS=1      keep the temp dir (Ray's logs) after `down`
set -euo pipefail

PORT="${RTRAIN_LOCAL_PORT:-46379}"
DASHBOARD_PORT="${RTRAIN_LOCAL_DASHBOARD_PORT:-48265}"
CLIENT_PORT="${RTRAIN_LOCAL_CLIENT_PORT:-40001}"
DIR="${RTRAIN_LOCAL_DIR:-/tmp/rtrain-local-$(id -u)-$PORT}"
HEAD_CPUS="${RTRAIN_LOCAL_HEAD_CPUS:-1}"
WORKER_CPUS="${RTRAIN_LOCAL_WORKER_CPUS:-1}"
OBJECT_STORE="${RTRAIN_LOCAL_OBJECT_STORE_BYTES:-500000000}"
STATE="$DIR/rtrain-local.env"
MARKER="$DIR/.rtrain-local-created"  # `up` made this folder: `down` may delete it
USED="$DIR/.rtrain-local-used"  # `up` ran in this folder someone else made: later `up`s may reuse it
# Ray 2.60 turns on token authentication; its CLI and SDK need this to send the token (~/.ray/auth_token).
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
export RAY_USAGE_STATS_ENABLED=0

die() { echo "cluster/local.sh: $*" >&2; exit 1; }

port_free() {
  python - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like the servers: TIME_WAIT leftovers do not block
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

read_state() {  # the state file's known keys, parsed (never sourced: its values must not run as code)
  HEAD_PGID="" WORKER_PGID=""
  local key value
  while IFS='=' read -r key value; do
    case "$key" in
      HEAD_PGID | WORKER_PGID) [[ "$value" =~ ^[0-9]+$ ]] || die "$STATE: $key=$value is not a process group id" ;;
      GCS_ADDRESS | DASHBOARD) continue ;;
      *) die "$STATE: unknown line '$key=$value'; this is not a state file 'up' wrote" ;;
    esac
    printf -v "$key" '%s' "$value"
  done < "$STATE"
}

own_dir() {  # DIR is ours to use: new (made 700 here), or a folder we own that is no symlink, empty or made by `up`
  if [[ ! -e "$DIR" ]]; then
    mkdir -p -m 700 "$DIR" && touch "$MARKER"
    return
  fi
  [[ -d "$DIR" && ! -L "$DIR" ]] || die "$DIR is not a folder (or is a symlink): set RTRAIN_LOCAL_DIR to a new folder"
  [[ -O "$DIR" ]] || die "$DIR belongs to another user: set RTRAIN_LOCAL_DIR to a folder of yours"
  if [[ ! -f "$MARKER" && ! -f "$USED" ]] && [[ -n "$(ls -A "$DIR")" ]]; then
    die "$DIR holds files 'up' did not write: set RTRAIN_LOCAL_DIR to a new or empty folder"
  fi
  chmod 700 "$DIR"
  [[ -f "$MARKER" ]] || touch "$USED"
}

group_alive() { [[ -n "$1" ]] && ps -eo pgid= | awk -v g="$1" '$1 == g { found = 1 } END { exit !found }'; }

start_node() {  # start_node NAME ARGS...: `ray start` in a session of its own; records the session's group id
  local name="$1"; shift
  if ! setsid -w bash -c 'echo $$ > "$0"; exec ray start "$@"' "$DIR/$name.pgid" "$@" > "$DIR/$name.log" 2>&1; then
    cat "$DIR/$name.log" >&2
    die "ray start ($name) failed; its output is above and in $DIR/$name.log"
  fi
}

up() {
  if [[ -f "$STATE" ]]; then
    read_state
    if group_alive "$HEAD_PGID"; then die "already up ($DIR): run 'cluster/local.sh down' first"; fi
  fi
  for p in "$PORT" "$DASHBOARD_PORT" "$CLIENT_PORT"; do
    port_free "$p" || die "port $p is in use: set RTRAIN_LOCAL_PORT / RTRAIN_LOCAL_DASHBOARD_PORT / RTRAIN_LOCAL_CLIENT_PORT"
  done
  own_dir
  start_node head --head --node-ip-address=127.0.0.1 --port="$PORT" --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" \
    --include-dashboard=true --ray-client-server-port="$CLIENT_PORT" --dashboard-agent-listen-port=0 \
    --num-cpus="$HEAD_CPUS" --num-gpus=0 --object-store-memory="$OBJECT_STORE" --temp-dir="$DIR" --disable-usage-stats
  start_node worker --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 --dashboard-agent-listen-port=0 \
    --num-cpus="$WORKER_CPUS" --num-gpus=0 --object-store-memory="$OBJECT_STORE" --temp-dir="$DIR" --disable-usage-stats
  chmod 700 "$DIR"  # ray start opens its temp dir to everyone; only this user needs it
  cat > "$STATE" <<EOF
HEAD_PGID=$(cat "$DIR/head.pgid")
WORKER_PGID=$(cat "$DIR/worker.pgid")
GCS_ADDRESS=127.0.0.1:$PORT
DASHBOARD=http://127.0.0.1:$DASHBOARD_PORT
EOF
  local nodes=0
  for _ in $(seq 1 60); do
    nodes=$(ray status --address="127.0.0.1:$PORT" 2>/dev/null | grep -c '^ *1 node_' || true)
    [[ "$nodes" -ge 2 ]] && break
    sleep 1
  done
  [[ "$nodes" -ge 2 ]] || die "only $nodes of 2 nodes came up; logs in $DIR (stop with 'cluster/local.sh down')"
  echo "local Ray cluster up: 2 nodes, $((HEAD_CPUS + WORKER_CPUS)) CPUs, temp dir $DIR"
  echo "dashboard: http://127.0.0.1:$DASHBOARD_PORT"
  echo "submit:    rtrain submit jobs/<job>.yaml --address http://127.0.0.1:$DASHBOARD_PORT"
}

our_pids() {  # the processes `up` started: both process groups, their descendants, anything inside $DIR
  python - "$DIR" "$@" <<'EOF'
import os, sys
root, groups = os.path.realpath(sys.argv[1]), {int(g) for g in sys.argv[2:] if g}
uid = os.getuid()
procs = {}
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    pid = int(name)
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        state, ppid, pgid = fields[0], int(fields[1]), int(fields[2])
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        cwd = os.readlink(f"/proc/{pid}/cwd") if os.path.exists(f"/proc/{pid}/cwd") else ""
        if os.stat(f"/proc/{pid}").st_uid != uid:  # never another user's process
            continue
    except (OSError, IndexError, ValueError):
        continue
    if state != "Z":
        procs[pid] = (ppid, pgid, cmd, cwd)
def in_cluster(cmd, cwd):  # a Ray process of this cluster, or a job running in its runtime_resources
    ray_process = "/ray/" in cmd or cmd.startswith("ray::")
    return (ray_process and root + "/" in cmd) or (cwd.startswith(root + "/") and "/runtime_resources/" in cwd)

ours = {pid for pid, (_, pgid, cmd, cwd) in procs.items() if pgid in groups or in_cluster(cmd, cwd)}
grew = True
while grew:
    children = {pid for pid, (ppid, *_rest) in procs.items() if ppid in ours} - ours
    grew = bool(children)
    ours |= children
ours.discard(os.getpid())
ours.discard(os.getppid())
print(" ".join(str(p) for p in sorted(ours)))
EOF
}

down() {
  [[ -f "$STATE" ]] || die "nothing to stop: $STATE not found (was 'up' run with the same RTRAIN_LOCAL_DIR / RTRAIN_LOCAL_PORT?)"
  read_state
  local pids
  pids=$(our_pids "$HEAD_PGID" "$WORKER_PGID")
  if [[ -n "$pids" ]]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 1 10); do  # ~5 s of grace, then SIGKILL (a throwaway cluster: nothing to save)
      pids=$(our_pids "$HEAD_PGID" "$WORKER_PGID")
      [[ -z "$pids" ]] && break
      sleep 0.5
    done
    if [[ -n "$pids" ]]; then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
    fi
  fi
  if [[ "${RTRAIN_LOCAL_KEEP_LOGS:-0}" == 1 ]]; then
    rm -f "$STATE"
    echo "local Ray cluster down; logs kept in $DIR"
  elif [[ -f "$MARKER" && ! -L "$DIR" ]]; then
    rm -rf "$DIR"
    echo "local Ray cluster down"
  else  # a folder `up` did not create: remove only the files it wrote; Ray's session folders stay
    rm -f "$STATE" "$DIR/head.log" "$DIR/worker.log" "$DIR/head.pgid" "$DIR/worker.pgid"
    echo "local Ray cluster down; $DIR was not created by 'up', so Ray's logs in it stay"
  fi
}

status() {
  [[ -f "$STATE" ]] || die "not up: $STATE not found"
  ray status --address="127.0.0.1:$PORT"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: cluster/local.sh up|down|status" ;;
esac
