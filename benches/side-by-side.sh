#!/usr/bin/env bash
# Side-by-side load benchmark: redis-benchmark against redis-server and rust-edis on this
# machine, in the same run, printed with the ratio rust-edis / redis-server.
#
#   benches/side-by-side.sh [requests] [tests] [rounds]
#
# Tests are redis-benchmark's -t names, plus `evalsha`: EVALSHA of a script doing INCR and
# GET on one key (issue 17's benchmark), e.g. `benches/side-by-side.sh 200000 evalsha 3`.
#
# The servers are measured alternately, ROUNDS times each, and the median is printed: on a
# shared or virtual machine, speed drifts between runs more than between the two servers.
#
# Needs redis-server and redis-benchmark (apt-get install redis-server redis-tools). Both
# servers listen on loopback only and are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
TESTS=${2:-set,get,incr,mset}
ROUNDS=${3:-3}
REDIS_PORT=${REDIS_PORT:-16379}
EDIS_PORT=${EDIS_PORT:-16380}

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark: apt-get install redis-server redis-tools" >&2
    exit 2
}
cargo build --release --quiet
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$(mktemp -d)" --save '' --appendonly no --daemonize no >/dev/null &
REDIS_PID=$!
./target/release/rust-edis --role write --port "$EDIS_PORT" --loglevel warning --dir "$(mktemp -d)" &
EDIS_PID=$!
trap 'kill $REDIS_PID $EDIS_PID 2>/dev/null || true' EXIT INT TERM
for port in "$REDIS_PORT" "$EDIS_PORT"; do
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

SCRIPT="redis.call('INCR', KEYS[1]); return redis.call('GET', KEYS[1])"
run() { # port pipeline -> "TEST<tab>rps" lines
    local plain
    plain=$(echo "$TESTS" | tr ',' '\n' | grep -vx evalsha | paste -sd, -)
    if [ -n "$plain" ]; then
        redis-benchmark -p "$1" -t "$plain" -n "$N" -P "$2" -q 2>&1 | tr '\r' '\n' \
            | awk -F': ' '/requests per second/ { split($2, a, " "); print $1 "\t" a[1] }'
    fi
    if echo "$TESTS" | tr ',' '\n' | grep -qx evalsha; then
        local sha
        sha=$(redis-cli -p "$1" script load "$SCRIPT")
        redis-benchmark -p "$1" -n "$N" -P "$2" -q evalsha "$sha" 1 key 2>&1 | tr '\r' '\n' \
            | awk -F': ' '/requests per second/ { split($2, a, " "); print "EVALSHA\t" a[1] }'
    fi
}
OUT=$(mktemp -d)
for P in 16 1; do
    for round in $(seq "$ROUNDS"); do
        run "$REDIS_PORT" "$P" >"$OUT/redis-$P-$round"
        run "$EDIS_PORT" "$P" >"$OUT/edis-$P-$round"
    done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(server, p):
    runs = {}
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{server}-{p}-{r}"):
            name, rps = line.rstrip("\n").split("\t")
            runs.setdefault(name, []).append(float(rps))
    return {k: statistics.median(v) for k, v in runs.items()}
print(f"{'test':<16} {'P':>3} {'redis-server':>13} {'rust-edis':>13} {'ratio':>6}   (medians of {rounds} alternating runs)")
for p in (16, 1):
    r, e = load("redis", p), load("edis", p)
    for name in r:
        print(f"{name:<16} {p:>3} {r[name]:>13,.0f} {e.get(name, 0):>13,.0f} {e.get(name, 0) / r[name]:>6.2f}")
PY
rm -rf "$OUT"
