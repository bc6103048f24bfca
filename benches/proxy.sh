#!/usr/bin/env bash
# Proxy benchmark: redis-benchmark against, in the same run on this machine,
#   1. one redis-server,
#   2. twemproxy (nutcracker) in front of 3 redis-servers,
#   3. rust-edis --role all: its proxy in front of 3 write shards (1 read shard each),
# with -P 1 and -P 16, medians of alternating rounds.
#
#   benches/proxy.sh [requests] [rounds]
#
# Needs redis-server, redis-benchmark and nutcracker (apt-get install redis-server
# redis-tools nutcracker). Everything listens on loopback and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
ROUNDS=${2:-3}
TESTS=set,get,incr,mset
cargo build --release --quiet
DIR=$(mktemp -d /tmp/rust-edis-proxy-bench.XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }

redis() { mkdir -p "$DIR/r$1"; redis-server --port "$1" --bind 127.0.0.1 --dir "$DIR/r$1" --save '' --appendonly no >/dev/null & pids+=($!); up "$1"; }
redis 19000
for p in 19001 19002 19003; do redis $p; done
cat >"$DIR/nutcracker.yml" <<YML
bench:
  listen: 127.0.0.1:19010
  hash: fnv1a_64
  distribution: ketama
  redis: true
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:19001:1
   - 127.0.0.1:19002:1
   - 127.0.0.1:19003:1
YML
nutcracker -c "$DIR/nutcracker.yml" -o "$DIR/nutcracker.log" & pids+=($!)
sleep 0.5
(cd "$DIR" && exec "$OLDPWD/target/release/rust-edis" --port 19020 --info 127.0.0.1:19021 --loglevel warning --dir "$DIR/edis" >/dev/null) & pids+=($!)
up 19020
for _ in $(seq 100); do redis-cli -p 19020 set warm 1 2>/dev/null | grep -q OK && break; sleep 0.1; done

run() { # port pipeline -> "TEST<tab>rps"
    redis-benchmark -p "$1" -t "$TESTS" -n "$N" -P "$2" -r 100000 -q 2>&1 | tr '\r' '\n' \
        | awk -F': ' '/requests per second/ { split($2, a, " "); print $1 "\t" a[1] } /rror/ { print "ERROR\t" $0 > "/dev/stderr" }'
}
for P in 1 16; do
    for r in $(seq "$ROUNDS"); do
        for name in redis:19000 twemproxy:19010 rust-edis:19020; do
            run "${name#*:}" "$P" >"$DIR/${name%%:*}-$P-$r"
        done
    done
done
python3 - "$DIR" "$ROUNDS" <<'PY'
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(name, p):
    runs = {}
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{name}-{p}-{r}"):
            test, rps = line.rstrip("\n").split("\t")
            runs.setdefault(test, []).append(float(rps))
    return {k: statistics.median(v) for k, v in runs.items()}
print(f"{'test':<16} {'P':>3} {'redis-server':>13} {'twemproxy x3':>13} {'rust-edis':>13} {'vs redis':>9} {'vs twem':>8}")
for p in (1, 16):
    r, t, e = load("redis", p), load("twemproxy", p), load("rust-edis", p)
    for test in r:
        ev, tv = e.get(test, 0), t.get(test, 0)
        print(f"{test:<16} {p:>3} {r[test]:>13,.0f} {tv:>13,.0f} {ev:>13,.0f} {ev / r[test]:>9.2f} {ev / tv if tv else 0:>8.2f}")
PY
