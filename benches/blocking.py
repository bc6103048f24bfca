#!/usr/bin/env python3
"""Blocked clients through one endpoint (a proxy, --role all or a write shard):

    benches/blocking.py PORT [clients] [password]

Opens CLIENTS connections (default 1,000) that each BLPOP a key of their own, then, while
they wait, measures SET/GET round trips on another connection (p50/p99), then pushes one
value to each key and checks that every client got exactly its value, none lost or
duplicated. Last, a BLPOP with a 0.5 s timeout: how late its nil comes.

Start an eight-process cluster with scripts/local-cluster.sh and a proxy in front of it
(`rust-edis --role proxy --info 127.0.0.1:BASE --cluster-secret-file ...`), or
`cargo run --release` for --role all on 6379.
"""
import asyncio
import statistics
import sys
import time


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


async def reply(reader):
    line = await reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b"-", b":"):
        return line[:-2].decode()
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else (await reader.readexactly(n + 2))[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [await reply(reader) for _ in range(n)]
    if kind == b"_":
        return None
    raise ValueError(line)


async def connect(port, password):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    if password:
        w.write(enc("AUTH", password))
        assert await reply(r) == "+OK"
    return r, w


async def main():
    port = int(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    password = sys.argv[3] if len(sys.argv) > 3 else None
    run = str(int(time.time() * 1000))
    conns = [await connect(port, password) for _ in range(clients)]
    for i, (_, w) in enumerate(conns):
        w.write(enc("BLPOP", f"bench:{run}:{i}", 0))
        await w.drain()
    waits = [asyncio.ensure_future(reply(r)) for r, _ in conns]
    await asyncio.sleep(0.5)
    r, w = await connect(port, password)
    rtts = []
    for i in range(2000):
        t = time.perf_counter()
        w.write(enc("SET", f"bench:{run}:other:{i % 100}", "v"))
        assert await reply(r) == "+OK"
        w.write(enc("GET", f"bench:{run}:other:{i % 100}"))
        assert await reply(r) == "v"
        rtts.append((time.perf_counter() - t) / 2 * 1000)
    rtts.sort()
    print(f"{clients} clients blocked; SET/GET meanwhile: p50 {statistics.median(rtts):.3f} ms, "
          f"p99 {rtts[int(len(rtts) * 0.99)]:.3f} ms, max {rtts[-1]:.3f} ms")
    started = time.perf_counter()
    for i in range(clients):
        w.write(enc("RPUSH", f"bench:{run}:{i}", f"value-{i}"))
    for i in range(clients):
        await reply(r)
    got = await asyncio.wait_for(asyncio.gather(*waits), 30)
    took = time.perf_counter() - started
    wrong = [(i, g) for i, g in enumerate(got) if g != [f"bench:{run}:{i}", f"value-{i}"]]
    left = 0
    for i in range(clients):
        w.write(enc("LLEN", f"bench:{run}:{i}"))
        left += int((await reply(r))[1:])
    print(f"pushed {clients} values: {clients - len(wrong)} clients got exactly theirs, "
          f"{len(wrong)} wrong, {left} left in lists, all served in {took * 1000:.0f} ms")
    for i, g in wrong[:5]:
        print("  wrong:", i, g)
    t = time.perf_counter()
    w.write(enc("BLPOP", f"bench:{run}:never", 0.5))
    nil = await reply(r)
    late = (time.perf_counter() - t - 0.5) * 1000
    print(f"BLPOP with a 0.5 s timeout answered {nil!r} {late:.1f} ms after the timeout")
    for _, cw in conns:
        cw.close()
    sys.exit(1 if wrong or left or nil is not None else 0)


asyncio.run(main())
