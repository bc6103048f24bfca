#!/usr/bin/env python3
"""A cache under maxmemory, against running servers side by side (rust-edis and redis-server,
or any endpoints): each is set to `maxmemory MB` and POLICY, then driven with the same
pipelined workload: SETS writes of 1 KB values to keys drawn uniformly from KEYS, and one GET
per write that picks the hottest 20% of the keys 80% of the time. Prints, per server, the GET
hit ratio, the highest used_memory seen (sampled every batch) against maxmemory, and
evicted_keys.

    benches/evict.py PORT[,PORT...] [MB] [POLICY] [SETS] [KEYS]

e.g. benches/evict.py 16379,16381 100 allkeys-lru 2000000 1000000
"""
import random
import socket
import sys
import time


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def reply(self):
        line = self.f.readline()
        t = line[:1]
        if t == b"$":
            n = int(line[1:-2])
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            return [self.reply() for _ in range(int(line[1:-2]))]
        if t == b"-":
            raise RuntimeError(line)
        return line[1:-2]

    def call(self, *args):
        self.s.sendall(encode(args))
        return self.reply()


def info(conn, field):
    text = conn.call("INFO", "all").decode()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":")[1])
    return 0


def run(port, mb, policy, sets, keys):
    c = Conn(port)
    c.call("FLUSHALL")
    c.call("CONFIG", "SET", "maxmemory", f"{mb}mb")
    c.call("CONFIG", "SET", "maxmemory-policy", policy)
    c.call("CONFIG", "RESETSTAT")
    limit = mb << 20
    rng = random.Random(42)
    hot = keys // 5
    value = b"v" * 1024
    hits = gets = 0
    peak = 0
    batch = 500
    started = time.time()
    for start in range(0, sets, batch):
        out = []
        for _ in range(batch):
            out.append(encode(["SET", b"key:%d" % rng.randrange(keys), value]))
            k = rng.randrange(hot) if rng.random() < 0.8 else hot + rng.randrange(keys - hot)
            out.append(encode(["GET", b"key:%d" % k]))
        c.s.sendall(b"".join(out))
        for i in range(2 * batch):
            r = c.reply()
            if i % 2:
                gets += 1
                hits += r is not None
        if (start // batch) % 20 == 0:
            peak = max(peak, info(c, "used_memory"))
    peak = max(peak, info(c, "used_memory"))
    evicted = info(c, "evicted_keys")
    elapsed = time.time() - started
    print(f":{port} {policy} maxmemory {mb} MB: GET hit ratio {hits / gets:.4f}, peak used_memory "
          f"{peak / (1 << 20):.1f} MB ({peak / limit:.3f} of maxmemory), evicted_keys {evicted}, "
          f"{2 * sets / elapsed:,.0f} ops/s")
    c.call("CONFIG", "SET", "maxmemory", "0")
    c.call("FLUSHALL")
    return hits / gets, peak / limit


if __name__ == "__main__":
    ports = [int(p) for p in sys.argv[1].split(",")]
    mb = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    policy = sys.argv[3] if len(sys.argv) > 3 else "allkeys-lru"
    sets = int(sys.argv[4]) if len(sys.argv) > 4 else 2_000_000
    keys = int(sys.argv[5]) if len(sys.argv) > 5 else 1_000_000
    for port in ports:
        run(port, mb, policy, sets, keys)
