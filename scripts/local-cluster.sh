#!/usr/bin/env bash
# Starts a local cluster from the release build: info, write shards and read shards, each in
# its own process on loopback, with their files under a scratch directory. Ctrl-C stops all.
#
#   scripts/local-cluster.sh [write-shards] [read-shards-per-write-shard] [base-port]
#
# Info listens on BASE, write shards on BASE+1.., read shards on BASE+101.., and a proxy (the
# endpoint for redis-cli and clients) on BASE+100. Every process must come up and answer, or
# the script says which did not and stops the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
WRITES=${1:-3}
READS=${2:-1}
BASE=${3:-7000}
DIR=$(mktemp -d /tmp/rust-edis-cluster.XXXXXX)
cargo build --release --quiet
BIN=./target/release/rust-edis
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$DIR"' EXIT INT TERM

$BIN --role info --port "$BASE" --write-shards "$WRITES" --dir "$DIR/info" --loglevel warning &
pids+=($!)
# Info creates the cluster secret at its first start; every member is given it.
for _ in $(seq 100); do [ -s "$DIR/info/cluster.secret" ] && break; sleep 0.05; done
SECRET=(--cluster-secret-file "$DIR/info/cluster.secret")
for i in $(seq "$WRITES"); do
    $BIN --role write --port $((BASE + i)) --info "127.0.0.1:$BASE" --dir "$DIR/write$i" "${SECRET[@]}" --loglevel warning &
    pids+=($!)
done
for i in $(seq $((WRITES * READS))); do
    $BIN --role read --port $((BASE + 100 + i)) --info "127.0.0.1:$BASE" --dir "$DIR/read$i" "${SECRET[@]}" --loglevel warning &
    pids+=($!)
done
$BIN --role proxy --port $((BASE + 100)) --info "127.0.0.1:$BASE" "${SECRET[@]}" --loglevel warning &
pids+=($!)
# Every process alive and answering PING, else say which one and stop.
ports=("$BASE" $(seq $((BASE + 1)) $((BASE + WRITES))) $((BASE + 100)) $(seq $((BASE + 101)) $((BASE + 100 + WRITES * READS))))
for port in "${ports[@]}"; do
    up=""
    for _ in $(seq 100); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then up=1; break; fi
        sleep 0.1
    done
    if [ -z "$up" ]; then
        echo "local-cluster: nothing answers on port $port (see the errors above); stopping" >&2
        exit 1
    fi
done
for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "local-cluster: process $pid exited (see the errors above); stopping" >&2
        exit 1
    fi
done
ok=""
for _ in $(seq 100); do
    redis-cli -p "$BASE" cluster info 2>/dev/null | grep -q cluster_state:ok && { ok=1; break; }
    sleep 0.1
done
if [ -z "$ok" ]; then
    echo "local-cluster: the cluster never reached cluster_state:ok; stopping" >&2
    exit 1
fi
echo "info on 127.0.0.1:$BASE; write shards on $((BASE + 1))..$((BASE + WRITES)); read shards on $((BASE + 101))..$((BASE + 100 + WRITES * READS))"
echo "proxy on 127.0.0.1:$((BASE + 100))   <- point redis-cli, clients and redis-benchmark here"
echo "also: redis-cli -c -p $((BASE + 1))    or    redis-cli -p $BASE cluster nodes"
wait
