#!/usr/bin/env bash
# Before/after on the same machine in one go: two rust-edis binaries, each started as
# --role all and as eight processes (info, 3 write, 3 read, --role proxy), driven in
# alternating rounds by redis-benchmark (-c 50 -d 64 -r 100000). Prints medians of
# requests/s and of server CPU per request (user+system time of all the target's processes,
# from /proc), with after/before ratios. On this kind of shared machine throughput swings
# ±20% between rounds; CPU per request is the steadier measure.
#
#   benches/ab.sh BEFORE_BIN AFTER_BIN [requests] [rounds]
#
# Build the "before" binary from another checkout, e.g.
#   git worktree add /tmp/before <rev> && (cd /tmp/before && cargo build --release)
#   benches/ab.sh /tmp/before/target/release/rust-edis target/release/rust-edis 100000 3
# TESTS (default set,get) and PIPES (default "1 16") narrow the run. Servers run on core 0,
# redis-benchmark on core 1, as in load.sh. Keys are written once before the rounds, so GETs
# find values.
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2"); N=${3:-100000}; ROUNDS=${4:-3}
TESTS=${TESTS:-set,get}; PIPES=${PIPES:-1 16}
command -v redis-benchmark >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; }
DIR=$(mktemp -d /tmp/rust-edis-ab.XXXXXX)
if [ "$(nproc)" -ge 2 ]; then SERVER="taskset -c 0"; CLIENT="taskset -c 1"; else SERVER=""; CLIENT=""; fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 300); do redis-cli -p "$1" set warm 1 2>/dev/null | grep -q OK && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }
declare -A PORT PIDS
start() { # name bin base
    local name=$1 bin=$2 base=$3 sep=()
    (cd "$DIR" && exec $SERVER "$bin" --port "$base" --info 127.0.0.1:$((base + 1)) --loglevel warning --dir "$DIR/$name-all" >/dev/null) & pids+=($!)
    PORT[$name-all]=$base; PIDS[$name-all]=$!; up "$base"
    local i=$((base + 10))
    $SERVER "$bin" --role info --port $i --write-shards 3 --dir "$DIR/$name-sep/info" --loglevel warning & pids+=($!); sep+=($!)
    # Members prove themselves with the secret info creates (binaries from issue 12 on).
    local sec=()
    if "$bin" --help | grep -q cluster-secret-file; then
        for _ in $(seq 100); do [ -s "$DIR/$name-sep/info/cluster.secret" ] && break; sleep 0.05; done
        sec=(--cluster-secret-file "$DIR/$name-sep/info/cluster.secret")
    fi
    for k in 1 2 3; do $SERVER "$bin" --role write --port $((i + k)) --info 127.0.0.1:$i --dir "$DIR/$name-sep/w$k" "${sec[@]}" --loglevel warning & pids+=($!); sep+=($!); done
    for k in 1 2 3; do $SERVER "$bin" --role read --port $((i + 3 + k)) --info 127.0.0.1:$i --dir "$DIR/$name-sep/r$k" "${sec[@]}" --loglevel warning & pids+=($!); sep+=($!); done
    for _ in $(seq 100); do redis-cli -p $i cluster info 2>/dev/null | grep -q cluster_state:ok && break; sleep 0.1; done
    $SERVER "$bin" --role proxy --port $((i + 9)) --info 127.0.0.1:$i "${sec[@]}" --loglevel warning & pids+=($!); sep+=($!)
    PORT[$name-sep]=$((i + 9)); PIDS[$name-sep]="${sep[*]}"; up $((i + 9))
}
cpu() { # total user+system clock ticks of the given pids
    local sum=0; for p in $*; do set -- $(awk '{print $14, $15}' /proc/$p/stat); sum=$((sum + $1 + $2)); done; echo $sum
}
start before "$BEFORE" 22000
start after "$AFTER" 22100
for t in all sep; do for b in before after; do
    $CLIENT redis-benchmark -p "${PORT[$b-$t]}" -c 50 -d 64 -r 100000 -n 200000 -t set -q >/dev/null 2>&1
done; done
NTESTS=$(echo "$TESTS" | tr ',' '\n' | wc -l)
for P in $PIPES; do for r in $(seq "$ROUNDS"); do for t in all sep; do for b in before after; do
    c0=$(cpu ${PIDS[$b-$t]})
    $CLIENT redis-benchmark -p "${PORT[$b-$t]}" -c 50 -d 64 -r 100000 -n "$N" -P "$P" -t "$TESTS" --csv 2>/dev/null \
        | tr -d '"' | awk -F, -v b=$b -v t=$t -v p=$P 'NR > 1 { print b, t, p, $1, $2 }' >"$DIR/run"
    c1=$(cpu ${PIDS[$b-$t]})
    awk -v c=$((c1 - c0)) -v n=$((N * NTESTS)) -v hz=$(getconf CLK_TCK) '{ printf "%s %.3f\n", $0, c / hz * 1e6 / n }' "$DIR/run" >>"$DIR/results"
done; done; done; done
cp "$DIR/results" /tmp/ab-last-results 2>/dev/null || true
echo "before: $BEFORE"; echo "after:  $AFTER"; echo "$N requests per test, $ROUNDS rounds, medians"
python3 - "$DIR/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    b, t, p, test, rps, cpu = line.split()
    rows.setdefault((t, int(p), test, b), []).append((float(rps), float(cpu)))
keys = sorted({k[:3] for k in rows})
print(f"{'target':<14}{'P':>3} {'test':<6}{'before req/s':>14}{'after req/s':>13}{'ratio':>7}{'before us/req':>15}{'after us/req':>14}{'ratio':>7}")
for t, p, test in keys:
    med = lambda b, i: statistics.median(x[i] for x in rows.get((t, p, test, b), [(0, 0)]))
    bf, af, bc, ac = med("before", 0), med("after", 0), med("before", 1), med("after", 1)
    name = "--role all" if t == "all" else "8 processes"
    print(f"{name:<14}{p:>3} {test:<6}{bf:>14,.0f}{af:>13,.0f}{af / bf if bf else 0:>7.2f}{bc:>15.2f}{ac:>14.2f}{ac / bc if bc else 0:>7.2f}")
PY
