#!/usr/bin/env bash
# Replication benchmark, rust-edis next to redis-server on this machine:
#  1. SET throughput through a primary with 0, 1 and 2 replicas attached (redis-benchmark,
#     50 clients, -P 16 and -P 1);
#  2. the time a new replica takes to full-sync 1,000,000 keys (from PSYNC to link up).
#
#   benches/replication.sh [requests] [keys]
#
# Needs redis-server, redis-cli and redis-benchmark. Everything listens on loopback and is
# stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
KEYS=${2:-1000000}
cargo build --release --quiet
BIN=$PWD/target/release/rust-edis
DIR=$(mktemp -d /tmp/rust-edis-repl-bench.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

up() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }
linked() { for _ in $(seq 6000); do redis-cli -p "$1" info replication 2>/dev/null | grep -q master_link_status:up && return; sleep 0.01; done; echo "replica on $1 never linked" >&2; exit 1; }
start_primary() { # kind port
    if [ "$1" = redis ]; then mkdir -p "$DIR/p$2"; redis-server --port "$2" --bind 127.0.0.1 --dir "$DIR/p$2" --save '' --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0 >/dev/null &
    else "$BIN" --role write --port "$2" --loglevel warning --dir "$DIR/p$2" & fi
    pids+=($!); up "$2"
}
start_replica() { # kind port primary-port
    if [ "$1" = redis ]; then mkdir -p "$DIR/r$2"; redis-server --port "$2" --bind 127.0.0.1 --dir "$DIR/r$2" --save '' --appendonly no --replicaof 127.0.0.1 "$3" >/dev/null &
    else "$BIN" --role read --port "$2" --replica-of "127.0.0.1:$3" --loglevel warning --dir "$DIR/r$2" & fi
    pids+=($!); up "$2"; linked "$2"
}
rps() { redis-benchmark -p "$1" -t set -n "$N" -P "$2" -r 100000 -q 2>&1 | tr '\r' '\n' | awk -F': ' '/requests per second/ { split($2, a, " "); print a[1] }'; }

echo "SET requests/s through the primary (-t set -n $N -r 100000, 50 clients)"
printf '%-10s %3s %9s %14s\n' server P replicas requests/s
for kind in redis edis; do
    base=$([ $kind = redis ] && echo 17000 || echo 18000)
    start_primary $kind $base
    for replicas in 0 1 2; do
        [ "$replicas" -ge 1 ] && start_replica $kind $((base + replicas)) $base
        for P in 16 1; do printf '%-10s %3s %9s %14s\n' $kind $P $replicas "$(rps $base $P)"; done
    done
    kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
done

echo
echo "Full sync of $KEYS keys into a new replica (PSYNC to link up)"
python3 - "$KEYS" >"$DIR/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%d" % i
    v = b"value:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
for kind in redis edis; do
    base=$([ $kind = redis ] && echo 17100 || echo 18100)
    start_primary $kind $base
    redis-cli -p $base --pipe <"$DIR/load.resp" >/dev/null
    t0=$(date +%s.%N)
    start_replica $kind $((base + 1)) $base
    t1=$(date +%s.%N)
    n=$(redis-cli -p $((base + 1)) dbsize)
    printf '%-10s full sync of %s keys: %.2f s\n' $kind "$n" "$(echo "$t1 - $t0" | bc -l)"
    kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=()
done
