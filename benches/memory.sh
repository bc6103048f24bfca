#!/usr/bin/env bash
# Memory per key: resident memory growth after loading 1,000,000 keys with 64-byte values into
# one rust-edis write shard and into redis-server, same data, same run.
#
#   benches/memory.sh [keys]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-1000000}
cargo build --release --quiet
DIR=$(mktemp -d /tmp/rust-edis-mem.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; exit 1; }
rss() { awk '/VmRSS/ { print $2 * 1024 }' "/proc/$1/status"; }
python3 - "$KEYS" >"$DIR/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
value = b"v" * 64
for i in range(int(sys.argv[1])):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$64\r\n%s\r\n" % (len(k), k, value))
PY
mkdir -p "$DIR/redis"
redis-server --port 22000 --bind 127.0.0.1 --dir "$DIR/redis" --save '' --appendonly no >/dev/null & pids+=($!); R=$!
./target/release/rust-edis --role write --port 22001 --dir "$DIR/edis" --loglevel warning & pids+=($!); E=$!
up 22000; up 22001
printf '%-14s %12s %12s %14s %16s\n' server "rss before" "rss after" "bytes/key" "used_memory/key"
for s in redis:22000:$R rust-edis:22001:$E; do
    IFS=: read -r name port pid <<<"$s"
    before=$(rss "$pid")
    redis-cli -p "$port" --pipe <"$DIR/load.resp" >/dev/null
    sleep 0.5
    after=$(rss "$pid")
    used=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
    printf '%-14s %12s %12s %14.1f %16.1f\n' "$name" "$before" "$after" "$(echo "($after - $before) / $KEYS" | bc -l)" "$(echo "$used / $KEYS" | bc -l)"
done
