#!/usr/bin/env python3
"""Pub/Sub and client-side caching at scale, against running servers (any Redis endpoint:
a write shard, `--role all`, a proxy, or redis-server for comparison). Raw sockets, no client
library, so what is measured is the server.

    benches/pubsub.py cache PORT [OPS] [resp2]
        A client-side cache (CLIENT TRACKING ON, a local map emptied by invalidations; with
        resp2, RESP2 and REDIRECT to a connection subscribed to __redis__:invalidate) and a
        second client writing: OPS random reads and writes (1 in 4) over 100 keys. After each
        write's reply, if the key was cached, its invalidation is awaited; every later read,
        from the cache or the server, must give the written value. Prints stale reads, missing
        invalidations and the cache hit ratio.

    benches/pubsub.py fanin SUB_PORT PUB_PORT PUB_PORT PUB_PORT [N]
        One subscriber on SUB_PORT; three publishers, one per PUB_PORT, N messages each
        (pipelined). Prints lost, duplicated and out-of-order messages per publisher.
"""
import io
import random
import socket
import sys
import threading
import time


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def parse(f):
    """One frame from a file-like object: (type byte, value). Raises on a partial frame."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise EOFError
    t, body = line[:1], line[1:-2]
    if t in b"+-":
        return t, body
    if t in b":":
        return t, int(body)
    if t == b"_":
        return t, None
    if t in b"$=":
        n = int(body)
        if n < 0:
            return t, None
        data = f.read(n + 2)
        if len(data) < n + 2:
            raise EOFError
        return t, data[:-2]
    if t in b"*>~%":
        n = int(body)
        if n < 0:
            return t, None
        n = n * 2 if t == b"%" else n
        return t, [parse(f)[1] for _ in range(n)]
    raise ValueError(line)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, *args):
        self.s.sendall(encode(args))

    def frame(self, timeout=10.0):
        """(type, value) of the next frame, or None after `timeout` seconds."""
        deadline = time.time() + timeout
        while True:
            if self.buf:
                f = io.BytesIO(self.buf)
                try:
                    r = parse(f)
                    self.buf = self.buf[f.tell():]
                    return r
                except EOFError:
                    pass
            # At least one look at the socket, however short the wait.
            left = max(deadline - time.time(), 0.0005)
            if time.time() > deadline + 0.001:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                return None
            if not d:
                raise ConnectionError("closed")
            self.buf += d

    def call(self, *args):
        self.send(*args)
        return self.frame()


def cache(port, ops, resp2):
    reader, writer = Conn(port), Conn(port)
    inv = reader
    if resp2:
        inv = Conn(port)
        _, cid = inv.call("CLIENT", "ID")
        inv.call("SUBSCRIBE", "__redis__:invalidate")
        assert reader.call("CLIENT", "TRACKING", "ON", "REDIRECT", cid)[1] == b"OK"
    else:
        reader.call("HELLO", "3")
        assert reader.call("CLIENT", "TRACKING", "ON")[1] == b"OK"
    local, truth = {}, {}
    stats = {"reads": 0, "hits": 0, "stale": 0, "missing": 0, "pushes": 0}

    def invalidated(value):
        stats["pushes"] += 1
        if value is None:
            local.clear()
        else:
            for k in value:
                local.pop(k, None)

    def take(conn, t, v):
        """Handles a frame that is not a reply; returns whether it was one of those."""
        if t == b">" and v and v[0] == b"invalidate":
            invalidated(v[1])
            return True
        if conn is inv and resp2 and t == b"*" and v and v[0] == b"message":
            invalidated(v[2])
            return True
        return False

    def reply(*args):
        reader.send(*args)
        while True:
            t, v = reader.frame()
            if not take(reader, t, v):
                return v

    rng = random.Random(7)
    prefix = b"cache:%d:" % int(time.time() * 1000)  # keys of this run only
    for i in range(ops):
        key = prefix + b"%d" % rng.randrange(100)
        if rng.randrange(4) == 0:
            value = b"v%d" % i
            assert writer.call("SET", key, value)[1] == b"OK"
            truth[key] = value
            deadline = time.time() + 5
            while key in local and time.time() < deadline:
                got = inv.frame(deadline - time.time())
                if got:
                    take(inv, *got)
            if key in local:
                stats["missing"] += 1
                local.pop(key)
        else:
            # Pushes already here are taken first (a RESP2 redirect's come on another socket).
            if resp2:
                while (got := inv.frame(0)) is not None:
                    take(inv, *got)
            stats["reads"] += 1
            if key in local:
                stats["hits"] += 1
                v = local[key]
            else:
                v = reply("GET", key)
                local[key] = v
            if v != truth.get(key):
                stats["stale"] += 1
    ratio = stats["hits"] / max(1, stats["reads"])
    mode = "RESP2 + REDIRECT" if resp2 else "RESP3"
    print(f"cache {mode} on :{port}: {ops} ops, {stats['reads']} reads, stale {stats['stale']}, "
          f"missing invalidations {stats['missing']}, pushes {stats['pushes']}, hit ratio {ratio:.3f}")
    return stats["stale"] + stats["missing"]


def fanin(sub_port, pub_ports, n):
    sub = Conn(sub_port)
    sub.call("SUBSCRIBE", "fanin")
    names = [f"p{i}" for i in range(len(pub_ports))]

    def publish(port, name):
        c = Conn(port)
        batch = 1000
        for start in range(0, n, batch):
            c.s.sendall(b"".join(encode(["PUBLISH", "fanin", f"{name}:{i}"]) for i in range(start, min(n, start + batch))))
            for _ in range(start, min(n, start + batch)):
                c.frame()

    started = time.time()
    threads = [threading.Thread(target=publish, args=(p, name)) for p, name in zip(pub_ports, names)]
    for t in threads:
        t.start()
    seen = {name: [] for name in names}
    total = 0
    while total < n * len(names):
        got = sub.frame(10)
        if got is None:
            break
        _, v = got
        name, i = v[2].decode().split(":")
        seen[name].append(int(i))
        total += 1
    for t in threads:
        t.join()
    # Anything beyond what was sent is a duplicate.
    extra = 0
    while sub.frame(0.5) is not None:
        extra += 1
    elapsed = time.time() - started
    bad = extra
    for name in names:
        got = seen[name]
        lost = n - len(set(got))
        dup = len(got) - len(set(got))
        disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
        bad += lost + dup + disorder
        print(f"{name}: received {len(got)}, lost {lost}, duplicated {dup}, out of order {disorder}")
    print(f"fanin: {total} messages in {elapsed:.2f}s, {extra} beyond what was sent")
    return bad


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "cache":
        bad = cache(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10000, "resp2" in sys.argv[4:])
    elif mode == "fanin":
        ports = [int(p) for p in sys.argv[3:6]]
        bad = fanin(int(sys.argv[2]), ports, int(sys.argv[6]) if len(sys.argv) > 6 else 100000)
    else:
        sys.exit(__doc__)
    sys.exit(1 if bad else 0)
