#!/usr/bin/env bash
# Memory per element, rust-edis write shard against redis-server 7.0, same data, same run:
# resident memory growth and used_memory after loading each data set into a fresh pair.
#
#   benches/memory.sh [case ...]
#
# Cases (default: all):
#   strings   1,000,000 keys with 64-byte values
#   hashes    100,000 hashes of 10 fields, 16-byte fields and values
#   bighash   one hash of 1,000,000 fields (16-byte fields and values)
#   sets      100,000 sets of 10 integers
#   bigzset   one sorted set of 1,000,000 members (16-byte members)
#   lists     100,000 lists of 10 items of 16 bytes
#   biglist   one list of 1,000,000 items of 16 bytes
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${*:-strings hashes bighash sets bigzset lists biglist}
cargo build --release --quiet
DIR=$(mktemp -d /tmp/rust-edis-mem.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; exit 1; }
rss() { awk '/VmRSS/ { print $2 * 1024 }' "/proc/$1/status"; }
gen() { # case -> RESP commands on stdout; prints the element count on fd 3
    python3 - "$1" 3>"$DIR/count" <<'PY'
import os, sys
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
case = sys.argv[1]
n = 0
if case == "strings":
    for i in range(1_000_000):
        cmd(b"SET", b"key:%012d" % i, b"v" * 64); n += 1
elif case == "hashes":
    for i in range(100_000):
        args = [b"HSET", b"hash:%010d" % i]
        for f in range(10):
            args += [b"field:%010d" % f, b"value:%010d" % (i + f)]
        cmd(*args); n += 10
elif case == "bighash":
    for c in range(1000):
        args = [b"HSET", b"bighash"]
        for f in range(c * 1000, c * 1000 + 1000):
            args += [b"field:%010d" % f, b"value:%010d" % f]
        cmd(*args); n += 1000
elif case == "sets":
    for i in range(100_000):
        cmd(b"SADD", b"set:%010d" % i, *[b"%d" % (i * 10 + j) for j in range(10)]); n += 10
elif case == "bigzset":
    for c in range(1000):
        args = [b"ZADD", b"bigzset"]
        for m in range(c * 1000, c * 1000 + 1000):
            args += [b"%d" % (m * 7 % 1_000_003), b"member:%09d" % m]
        cmd(*args); n += 1000
elif case == "lists":
    for i in range(100_000):
        cmd(b"RPUSH", b"list:%010d" % i, *[b"item:%011d" % (i * 10 + j) for j in range(10)]); n += 10
elif case == "biglist":
    for c in range(1000):
        cmd(b"RPUSH", b"biglist", *[b"item:%011d" % m for m in range(c * 1000, c * 1000 + 1000)]); n += 1000
os.write(3, b"%d" % n)
PY
}
printf '%-9s %-10s %12s %14s %18s\n' case server "rss growth" "bytes/element" "used_memory/elem"
for c in $CASES; do
    gen "$c" >"$DIR/load.resp"
    n=$(cat "$DIR/count")
    declare -A per
    for s in redis rust-edis; do
        rm -rf "$DIR/$s"; mkdir -p "$DIR/$s"
        if [ "$s" = redis ]; then
            redis-server --port 22000 --bind 127.0.0.1 --dir "$DIR/$s" --save '' --appendonly no >/dev/null & pid=$!; port=22000
        else
            ./target/release/rust-edis --role write --port 22001 --dir "$DIR/$s" --loglevel warning & pid=$!; port=22001
        fi
        pids+=($pid)
        up $port
        before=$(rss "$pid")
        redis-cli -p "$port" --pipe <"$DIR/load.resp" >/dev/null
        sleep 0.5
        after=$(rss "$pid")
        used=$(redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
        per[$s]=$(echo "($after - $before) / $n" | bc -l)
        printf '%-9s %-10s %12s %14.1f %18.1f\n' "$c" "$s" "$((after - before))" "${per[$s]}" "$(echo "$used / $n" | bc -l)"
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
    printf '%-9s %-10s %41.2f\n' "$c" "ratio" "$(echo "${per[rust-edis]} / ${per[redis]}" | bc -l)"
done
