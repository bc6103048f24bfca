#!/usr/bin/env bash
# PUBLISH throughput with one subscriber attached, rust-edis write shard against redis-server
# on the same machine, alternating rounds: redis-benchmark -n N PUBLISH chan hello at -P 1 and
# -P 16, a redis-cli SUBSCRIBE reading every message. Prints medians and edis/redis ratios,
# and checks the subscriber received every message of each round.
#
#   benches/publish.sh [requests] [rounds]
#
# Servers run on core 0; redis-benchmark and the subscriber on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}; ROUNDS=${2:-5}
command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; }
cargo build --release --quiet
BIN=$(realpath target/release/rust-edis)
DIR=$(mktemp -d /tmp/rust-edis-publish.XXXXXX)
if [ "$(nproc)" -ge 2 ]; then SERVER="taskset -c 0"; CLIENT="taskset -c 1"; else SERVER=""; CLIENT=""; fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }
$SERVER redis-server --port 16390 --save "" --appendonly no --dir "$DIR" >/dev/null & pids+=($!)
(cd "$DIR" && exec $SERVER "$BIN" --role write --port 16391 --dir "$DIR/edis" --loglevel warning >/dev/null) & pids+=($!)
up 16390; up 16391
declare -A RESULTS
for round in $(seq "$ROUNDS"); do
    for target in redis:16390 edis:16391; do
        name=${target%%:*}; port=${target##*:}
        for p in 1 16; do
            out="$DIR/sub-$name-$p"
            $CLIENT redis-cli -p "$port" subscribe chan >"$out" & sub=$!
            until [ "$(redis-cli -p "$port" pubsub numsub chan | tail -1)" = 1 ]; do sleep 0.01; done
            rps=$($CLIENT redis-benchmark -p "$port" -n "$N" -c 50 -P "$p" -q PUBLISH chan hello | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
            # Every message reached the subscriber (3 lines each after the confirmation).
            want=$((3 * N + 3))
            for _ in $(seq 200); do [ "$(wc -l <"$out")" -ge "$want" ] && break; sleep 0.05; done
            got=$(wc -l <"$out")
            kill "$sub" 2>/dev/null; wait "$sub" 2>/dev/null || true
            [ "$got" -ge "$want" ] || echo "round $round $name -P $p: subscriber got $(( (got - 3) / 3 )) of $N messages" >&2
            RESULTS[$name-$p]="${RESULTS[$name-$p]:-} $rps"
        done
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "PUBLISH with one subscriber, $N requests, $ROUNDS rounds, medians (req/s)"
for p in 1 16; do
    r=$(echo "${RESULTS[redis-$p]}" | median); e=$(echo "${RESULTS[edis-$p]}" | median)
    printf -- "-P %-3s redis %10.0f  edis %10.0f  edis/redis %.2f   (rounds: redis%s; edis%s)\n" "$p" "$r" "$e" "$(echo "$e / $r" | bc -l)" "${RESULTS[redis-$p]}" "${RESULTS[edis-$p]}"
done
