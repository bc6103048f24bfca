#!/usr/bin/env bash
# The side-by-side load benchmark, one command from a fresh clone:
#
#   benches/load.sh [requests] [rounds]
#
# For a quicker look while working on one path, TARGETS and TESTS narrow the run, e.g.
#   TARGETS="twemproxy cluster" TESTS=set,get benches/load.sh 20000 3
#
# Starts on loopback, in one run: a rust-edis write shard (--role write); redis-server; the
# rust-edis cluster (--role all: 3 write shards, 1 read shard each, the proxy, in one process,
# the proxy calling its shards directly); the same cluster as eight processes (info, 3 write,
# 3 read, --role proxy: every hop over TCP); and twemproxy (Debian's nutcracker) over 3
# redis-servers. Each is driven by redis-benchmark
# (-c 50 -d 64 -r 100000; set, get, incr, mset; -P 1 and -P 16), alternating targets over
# ROUNDS rounds, and the medians are printed: requests/s, p50/p99 latency, and server CPU
# per request (user+system time of the server processes, from /proc, divided by requests).
# Ratios: rust-edis write shard / redis-server, rust-edis cluster / twemproxy, and the
# eight-process cluster / twemproxy.
#
# Cores: on a machine with 2 or more cores, every server runs on core 0 and redis-benchmark on
# core 1 (taskset), so each side has the same one-core budget and the client does not steal
# from the servers. It installs redis-server, redis-tools and nutcracker with apt-get when they
# are missing, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
ROUNDS=${2:-3}
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v nutcracker >/dev/null || need+=(nutcracker)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    (service redis-server stop; service nutcracker stop) >/dev/null 2>&1 || true
fi
cargo build --release --quiet
BIN=$PWD/target/release/rust-edis
DIR=$(mktemp -d /tmp/rust-edis-load.XXXXXX)
if [ "$(nproc)" -ge 2 ]; then SERVER="taskset -c 0"; CLIENT="taskset -c 1"; PIN="servers on core 0, redis-benchmark on core 1"
else SERVER=""; CLIENT=""; PIN="one core: not pinned"; fi
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
up() { for _ in $(seq 300); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; echo "port $1 never came up" >&2; exit 1; }

declare -A PORT PIDS
start_redis() { mkdir -p "$DIR/r$1"; $SERVER redis-server --port "$1" --bind 127.0.0.1 --dir "$DIR/r$1" --save '' --appendonly no >/dev/null 2>&1 & LAST=$!; pids+=($LAST); }
start_redis 21000; PORT[redis]=21000; PIDS[redis]=$LAST; up 21000
PORT[edis]=21001; $SERVER "$BIN" --role write --port 21001 --dir "$DIR/edis" --loglevel warning & pids+=($!); PIDS[edis]=$!; up 21001
t=""; for p in 21011 21012 21013; do start_redis $p; t="$t $LAST"; up $p; done
cat >"$DIR/nutcracker.yml" <<YML
load:
  listen: 127.0.0.1:21010
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:21011:1
   - 127.0.0.1:21012:1
   - 127.0.0.1:21013:1
YML
$SERVER nutcracker -c "$DIR/nutcracker.yml" -o "$DIR/nutcracker.log" & pids+=($!); PORT[twemproxy]=21010; PIDS[twemproxy]="$! $t"
sleep 0.3
(cd "$DIR" && exec $SERVER "$BIN" --port 21020 --info 127.0.0.1:21021 --loglevel warning --dir "$DIR/cluster" >/dev/null) & pids+=($!)
PORT[cluster]=21020; PIDS[cluster]=$!; up 21020
for _ in $(seq 100); do redis-cli -p 21020 set warm 1 2>/dev/null | grep -q OK && break; sleep 0.1; done
# The same cluster as separate processes: info on 21030, write shards 21031-3, read shards
# 21034-6, the proxy on 21039.
sep=()
$SERVER "$BIN" --role info --port 21030 --write-shards 3 --dir "$DIR/sep/info" --loglevel warning & pids+=($!); sep+=($!)
# Members prove themselves with the cluster secret info creates at its first start.
for _ in $(seq 100); do [ -s "$DIR/sep/info/cluster.secret" ] && break; sleep 0.05; done
SECRET=(--cluster-secret-file "$DIR/sep/info/cluster.secret")
for i in 1 2 3; do
    $SERVER "$BIN" --role write --port $((21030 + i)) --info 127.0.0.1:21030 --dir "$DIR/sep/w$i" "${SECRET[@]}" --loglevel warning & pids+=($!); sep+=($!)
done
for i in 1 2 3; do
    $SERVER "$BIN" --role read --port $((21033 + i)) --info 127.0.0.1:21030 --dir "$DIR/sep/r$i" "${SECRET[@]}" --loglevel warning & pids+=($!); sep+=($!)
done
$SERVER "$BIN" --role proxy --port 21039 --info 127.0.0.1:21030 "${SECRET[@]}" --loglevel warning & pids+=($!); sep+=($!)
PORT[separate]=21039; PIDS[separate]="${sep[*]}"; up 21039
for _ in $(seq 100); do redis-cli -p 21039 set warm 1 2>/dev/null | grep -q OK && break; sleep 0.1; done

cpu() { # total user+system clock ticks of the given pids
    local sum=0; for p in $*; do set -- $(awk '{print $14, $15}' /proc/$p/stat); sum=$((sum + $1 + $2)); done; echo $sum
}
TESTS=${TESTS:-set,get,incr,mset}
NTESTS=$(echo "$TESTS" | tr ',' '\n' | wc -l)
for P in 1 16; do for r in $(seq "$ROUNDS"); do for name in ${TARGETS:-redis edis twemproxy cluster separate}; do
    before=$(cpu ${PIDS[$name]})
    $CLIENT redis-benchmark -p "${PORT[$name]}" -c 50 -d 64 -r 100000 -n "$N" -P "$P" -t "$TESTS" --csv 2>/dev/null \
        | tr -d '"' | awk -F, -v s=$name -v p=$P 'NR > 1 { gsub(/ /, "_", $1); print s, p, $1, $2, $5, $7 }' >"$DIR/run"
    after=$(cpu ${PIDS[$name]})
    # The server CPU of this run, shared over its tests by request count (equal here).
    awk -v t=$((after - before)) -v n=$((N * NTESTS)) -v hz=$(getconf CLK_TCK) '{ printf "%s %.2f\n", $0, t / hz * 1e6 / n }' "$DIR/run" >>"$DIR/results"
done; done; done
echo "rust-edis load benchmark: $N requests per test, $ROUNDS rounds, -c 50 -d 64 -r 100000; $PIN"
python3 - "$DIR/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    s, p, test, rps, p50, p99, cpu = line.split()
    test = test.replace("_", " ")
    rows.setdefault((s, int(p), test), []).append((float(rps), float(p50), float(p99), float(cpu)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(4)) for k, v in rows.items()}
names = [("redis", "redis-server"), ("edis", "rust-edis write"), ("twemproxy", "twemproxy x3"), ("cluster", "rust-edis --role all"), ("separate", "8 processes, --role proxy")]
tests = sorted({k[2] for k in med}, key=lambda t: ["SET", "GET", "INCR"].index(t) if t in ("SET", "GET", "INCR") else 9)
print(f"{'test':<15}{'P':>3}  " + "".join(f"{n:>34}" for _, n in names) + f"{'edis/redis':>12}{'all/twem':>10}{'8proc/twem':>12}")
print(f"{'':<18}" + "".join(f"{'req/s  p50  p99 ms  us cpu/req':>34}" for _ in names))
for p in (1, 16):
    for t in tests:
        cells = []
        for key, _ in names:
            rps, p50, p99, cpu = med.get((key, p, t), (0, 0, 0, 0))
            cells.append(f"{rps:>11,.0f} {p50:>5.2f} {p99:>5.2f} {cpu:>9.1f}")
        r = lambda k: med.get((k, p, t), (0,))[0]
        ratio = lambda a, b: f"{r(a) / r(b):.2f}" if r(a) and r(b) else "-"
        print(f"{t:<15}{p:>3}  " + "".join(f"{c:>34}" for c in cells)
              + f"{ratio('edis', 'redis'):>12}{ratio('cluster', 'twemproxy'):>10}{ratio('separate', 'twemproxy'):>12}")
PY
