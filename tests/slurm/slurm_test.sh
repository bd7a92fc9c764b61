#!/usr/bin/env bash
# Slurm for real: a one-node Slurm cluster from Debian's packages (slurmctld, slurmd, slurm-client,
# munge) on loopback, configured here in a temporary directory, runs the README's recipe
# (section "Beyond one machine"):
#
#   sbatch --array=0-N --wrap "pbt worker --store URI --experiment NAME"
#
# against a PostgreSQL store, after `pbt create`. One array task is cancelled mid-run (scancel
# JOBID_TASK); the run must still finish with every member at the budget and one score point per
# member and step. Where Slurm cannot start (packages missing, no permission, a daemon that does not
# come up in time) the test is skipped (exit 77) and says why; it never fails for that.
#
# Usage: slurm_test.sh PBT_BINARY SOURCE_DIR
# PostgreSQL: PBT_TEST_POSTGRES_URI when set (scripts/test.sh sets it), else a throwaway server
# started here with scripts/pg-server.sh.
set -euo pipefail

PBT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SRC=$(cd "$2" && pwd)
SKIP=77
WAIT_UP=60     # seconds for a daemon to come up
WAIT_RUN=150   # seconds for the whole run, from sbatch until the array has drained

skip() { echo "SKIP: $*"; exit "$SKIP"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

for b in munged slurmctld slurmd sbatch squeue scancel scontrol sinfo; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
    skip "$b not found (install Debian's slurmctld slurmd slurm-client munge: scripts/setup.sh)"
done
export PATH="$(dirname "$PBT"):$PATH:/usr/sbin"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/pbt-slurm.XXXXXX")
chmod 700 "$DIR"
PIDS=()
PG_DIR=""
keep_logs=""

cleanup() {
  local rc=$?
  # Jobs first (their workers, given a bounded while to stop), then the daemons, newest first.
  if [ -n "${JOB:-}" ]; then
    scancel "$JOB" >/dev/null 2>&1 || true
    for _ in $(seq 60); do [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  # A worker left behind by a daemon that went first: this run's workers name its own schema.
  if [ -n "${SCHEMA:-}" ]; then
    for p in $(pgrep -f -- "schema=$SCHEMA" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  fi
  if [ -n "$PG_DIR" ]; then
    "$SRC/scripts/pg-server.sh" stop "$PG_DIR" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "$SKIP" ]; then
    for f in "$DIR"/*.log "$DIR"/slurm-*.out; do
      [ -f "$f" ] || continue
      echo "---- $f (last 30 lines)"; tail -n 30 "$f"
    done
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- munge: its own key, socket, pid, log and seed files.
dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge.key"
SOCK="$DIR/munge.sock"
/usr/sbin/munged -F --force --key-file="$DIR/munge.key" --socket="$SOCK" --pid-file="$DIR/munged.pid" \
  --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed" >"$DIR/munged.out.log" 2>&1 &
PIDS+=($!)
for _ in $(seq $((WAIT_UP * 10))); do [ -S "$SOCK" ] && break; kill -0 "${PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
[ -S "$SOCK" ] || skip "munged did not come up: $(tail -n 3 "$DIR/munged.log" "$DIR/munged.out.log" 2>/dev/null | tr '\n' ' ')"

# ---- slurm.conf: one node, loopback, no cgroups, no accounting.
HOST=$(hostname -s)
USER_NAME=$(id -un)
CPUS=4  # more than a 2-core machine has (config_overrides): four workers run at once
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
mkdir -p "$DIR/state" "$DIR/spool"
export SLURM_CONF="$DIR/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=pbttest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1 State=UNKNOWN
PartitionName=pbt Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i -f "$SLURM_CONF" >"$DIR/slurmctld.out.log" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$DIR/slurmd.out.log" 2>&1 &
PIDS+=($!)

node_up=""
for _ in $(seq $((WAIT_UP * 2))); do
  for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || skip "a Slurm daemon exited at start: $(tail -n 3 "$DIR"/slurm*.log | tr '\n' ' ')"
  done
  state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
  case "$state" in idle* | mix* | alloc*) node_up=yes; break ;; esac
  sleep 0.5
done
[ -n "$node_up" ] || skip "the Slurm node did not come up within ${WAIT_UP}s (state '${state:-}'): $(tail -n 3 "$DIR"/slurm*.log | tr '\n' ' ')"
echo "slurm: node $HOST up (ctld :$CTLD_PORT, slurmd :$SLURMD_PORT)"

# ---- PostgreSQL: a schema of its own on the tests' server, or a throwaway server.
if [ -z "${PBT_TEST_POSTGRES_URI:-}" ]; then
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pbt-slurm-pg.XXXXXX")
  port=$(free_port)
  "$SRC/scripts/pg-server.sh" start "$PG_DIR" "$port" >/dev/null ||
    fail "could not start a PostgreSQL server (scripts/pg-server.sh); set PBT_TEST_POSTGRES_URI"
  PBT_TEST_POSTGRES_URI="postgresql://postgres@127.0.0.1:$port/postgres"
fi
SCHEMA="slurm_$(date +%s)_$$"
case "$PBT_TEST_POSTGRES_URI" in *\?*) URI="$PBT_TEST_POSTGRES_URI&schema=$SCHEMA" ;; *) URI="$PBT_TEST_POSTGRES_URI?schema=$SCHEMA" ;; esac

# ---- The experiment: the toy, held mid-run by a pause file until one task has been cancelled.
NAME=slurm
POP=6
STEPS=30
TASKS=4
cat >"$DIR/$NAME.toml" <<EOF
name = "$NAME"
seed = 7
population = $POP

[trainable]
kind = "toy"
sleep_ms = 100
pause_after = 4                # each worker trains 4 steps, then waits while the pause file exists
pause_file = "$DIR/pause"

[budget]
steps = $STEPS

[ready]
interval = 4
eval_every = 1

[exploit]
strategy = "truncation"

[explore]
strategy = "perturb"

[space.h0]
low = 0.0
high = 1.0

[space.h1]
low = 0.0
high = 1.0

[workers]
count = 1
lease_seconds = 3.0

[store]
uri = "$URI"
EOF
cd "$DIR"
touch "$DIR/pause"
pbt create "$NAME.toml" --run "$DIR/run" >"$DIR/create.log" 2>&1 || fail "pbt create: $(cat "$DIR/create.log")"

# ---- The README's recipe, as written there.
out=$(sbatch --array=0-$((TASKS - 1)) --wrap "pbt worker --store $URI --experiment $NAME") ||
  fail "sbatch: $out"
JOB=$(echo "$out" | awk '/Submitted batch job/ {print $4}')
[ -n "$JOB" ] || fail "no job id in sbatch's answer: $out"
echo "slurm: submitted array job $JOB ($TASKS tasks)"
DEADLINE=$((SECONDS + WAIT_RUN))

# Status as JSON; python3 reads it.
status_json() { pbt status --store "$URI" --experiment "$NAME" --json 2>/dev/null; }
held_members() {
  status_json | python3 -c '
import json, sys
print(sum(m["held_by"] is not None for m in json.load(sys.stdin)["members"]))' 2>/dev/null || echo 0
}

# Every task runs a worker that holds a member (paused mid-run): cancel task 1, wait until it has
# left the queue, then let the others go on. Its member's lease expires and another worker resumes it.
VICTIM="${JOB}_1"
cancelled=""
while [ "$SECONDS" -lt "$DEADLINE" ]; do
  running=$(squeue -h -j "$JOB" -t RUNNING -o %i 2>/dev/null | wc -l)
  if [ "$running" -eq "$TASKS" ] && [ "$(held_members)" -ge "$TASKS" ]; then
    scancel "$VICTIM" || fail "scancel $VICTIM"
    cancelled=yes
    break
  fi
  sleep 0.5
done
[ -n "$cancelled" ] || fail "the $TASKS tasks never all ran holding members within ${WAIT_RUN}s: $(squeue -j "$JOB")"
gone=""
while [ "$SECONDS" -lt "$DEADLINE" ]; do
  [ -z "$(squeue -h -j "$VICTIM" 2>/dev/null)" ] && { gone=yes; break; }
  sleep 0.5
done
[ -n "$gone" ] || fail "$VICTIM still in the queue ${WAIT_RUN}s after sbatch"
echo "slurm: cancelled $VICTIM mid-run ($(held_members) members still held)"
rm -f "$DIR/pause"

# The array drains: every task ends (the workers exit once every member is at the budget).
drained=""
while [ "$SECONDS" -lt "$DEADLINE" ]; do
  [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && { drained=yes; break; }
  sleep 0.5
done
[ -n "$drained" ] || fail "job $JOB still in the queue after ${WAIT_RUN}s: $(squeue -j "$JOB")"

# Task states (kept by slurmctld for MinJobAge): the victim cancelled, the others completed.
for t in $(seq 0 $((TASKS - 1))); do
  st=$(scontrol show job "${JOB}_$t" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1)
  if [ "$t" -eq 1 ]; then
    [ "$st" = "JobState=CANCELLED" ] || fail "task ${JOB}_1: $st, expected CANCELLED"
  else
    [ "$st" = "JobState=COMPLETED" ] || fail "task ${JOB}_$t: $st, expected COMPLETED; its output: $(cat "$DIR/slurm-${JOB}_$t.out")"
  fi
done

# ---- Nothing lost: every member done at the budget, one score point per member and step.
status_json >"$DIR/status.json" || fail "pbt status --json failed"
pbt export --store "$URI" --experiment "$NAME" --what scores --format jsonl >"$DIR/scores.jsonl" 2>"$DIR/export.log" ||
  fail "pbt export: $(cat "$DIR/export.log")"
python3 - "$DIR/status.json" "$DIR/scores.jsonl" "$POP" "$STEPS" <<'EOF'
import collections, json, sys
status = json.load(open(sys.argv[1]))
scores = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
pop, steps = int(sys.argv[3]), int(sys.argv[4])
members = status["members"]
if len(members) != pop:
    sys.exit(f"FAIL: {len(members)} members, expected {pop}")
for m in members:
    if m["step"] != steps or not m["done"] or m["failed"]:
        sys.exit(f"FAIL: member {m['id']} not done at the budget ({steps}): step {m['step']}, done {m['done']}, failed {m['failed']}")
seen = collections.Counter((p["member"], p["step"]) for p in scores)
want = collections.Counter((m, s) for m in range(pop) for s in range(1, steps + 1))
if seen != want:
    sys.exit(f"FAIL: score points not one per member and step: missing {sorted((want - seen).keys())}, extra {sorted((seen - want).elements())}")
print(f"status: all {pop} members done at step {steps}; {len(scores)} score points, one per member and step")
EOF
echo "PASS"
