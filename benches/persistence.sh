#!/usr/bin/env bash
# Persistence benchmark: SET requests/s with appendonly no, appendfsync everysec and
# appendfsync always, rust-edis (--role write) next to redis-server with the same settings,
# in the same run, alternating, medians of ROUNDS. Files go to a scratch directory.
#
#   benches/persistence.sh [requests] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
ROUNDS=${2:-3}
cargo build --release --quiet
BIN=$PWD/target/release/rust-edis
DIR=$(mktemp -d /tmp/rust-edis-persist-bench.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }

port=20000
declare -A PORT
for mode in no everysec always; do
    if [ $mode = no ]; then aof=no; fsync=everysec; else aof=yes; fsync=$mode; fi
    mkdir -p "$DIR/redis-$mode" "$DIR/edis-$mode"
    redis-server --port $port --bind 127.0.0.1 --dir "$DIR/redis-$mode" --save '' --appendonly $aof --appendfsync $fsync >/dev/null &
    pids+=($!); up $port; PORT[redis-$mode]=$port; port=$((port + 1))
    "$BIN" --role write --port $port --dir "$DIR/edis-$mode" --appendonly $aof --appendfsync $fsync --loglevel warning &
    pids+=($!); up $port; PORT[edis-$mode]=$port; port=$((port + 1))
done
rps() { redis-benchmark -p "$1" -t set -n "$N" -P "$2" -r 100000 -q 2>&1 | tr '\r' '\n' | awk -F': ' '/requests per second/ { split($2, a, " "); print a[1] }'; }
for P in 1 16; do
    for r in $(seq "$ROUNDS"); do
        for mode in no everysec always; do
            for s in redis edis; do echo "$s $mode $P $(rps ${PORT[$s-$mode]} $P)" >>"$DIR/results"; done
        done
    done
done
python3 - "$DIR/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    s, mode, p, rps = line.split()
    runs.setdefault((s, mode, int(p)), []).append(float(rps))
print(f"{'SET':<22} {'P':>3} {'redis-server':>13} {'rust-edis':>13} {'ratio':>6}")
for p in (1, 16):
    for mode, label in (("no", "appendonly no"), ("everysec", "appendfsync everysec"), ("always", "appendfsync always")):
        r, e = statistics.median(runs[("redis", mode, p)]), statistics.median(runs[("edis", mode, p)])
        print(f"{label:<22} {p:>3} {r:>13,.0f} {e:>13,.0f} {e / r:>6.2f}")
PY
