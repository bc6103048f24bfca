#!/usr/bin/env python3
"""Clients that pipeline reads and never read the replies, against one server (issue 16).

    benches/slow_readers.py PORT PID [CLIENTS] [GETS] [SECONDS] [LIMIT]

Sets `client-output-buffer-limit normal LIMIT` (default "10mb 5mb 10"; "-" keeps the
server's), stores a 100 KB value, then CLIENTS connections each send GETS pipelined GETs of
it as fast as their sockets take them and never read. Meanwhile another process PINGs
without pause: reports the RSS growth of PID, the PING latency (99.9th percentile and worst)
against the same process's PINGs to the idle server just before, and how many of the readers
the server closed. (The idle worst is the machine's floor: on a 2-core VM an idle
redis-server's worst PING over a few seconds is 6-12 ms.)
"""
import multiprocessing
import socket
import sys
import time

import redis

port, pid = int(sys.argv[1]), int(sys.argv[2])
clients = int(sys.argv[3]) if len(sys.argv) > 3 else 30
gets = int(sys.argv[4]) if len(sys.argv) > 4 else 200_000
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 20
limit = sys.argv[6] if len(sys.argv) > 6 else "normal 10mb 5mb 10"


def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def pinger(port, seconds, ready, result):
    """PINGs `port` for `seconds` on its own connection; puts (p99.9, worst) in ms."""
    c = redis.Redis(port=port)
    c.ping()
    ready.set()
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        c.ping()
        times.append(time.perf_counter() - t)
    times.sort()
    result.put((times[int(len(times) * 0.999)] * 1000, times[-1] * 1000))


def ping_while(port, seconds):
    """Starts a pinger process and waits until it pings; returns a function that waits for
    and returns its result."""
    ready, result = multiprocessing.Event(), multiprocessing.Queue()
    p = multiprocessing.Process(target=pinger, args=(port, seconds, ready, result))
    p.start()
    ready.wait()
    return lambda: (result.get(), p.join())[0]


idle = ping_while(port, 3)()
r = redis.Redis(port=port)
if limit != "-":
    r.config_set("client-output-buffer-limit", limit)
r.set("slow:v", b"v" * 100 * 1024)
before = rss()
cmd = b"*2\r\n$3\r\nGET\r\n$6\r\nslow:v\r\n"
socks = []
for _ in range(clients):
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    socks.append([s, gets * len(cmd), False])
chunk = cmd * 1000
loaded = ping_while(port, seconds)
peak, start = before, time.monotonic()
while time.monotonic() - start < seconds:
    for entry in socks:
        s, left, closed = entry
        if closed or left == 0:
            continue
        try:
            n = s.send(chunk[: min(len(chunk), left)])
            entry[1] -= n
        except BlockingIOError:
            pass
        except OSError:
            entry[2] = True
    peak = max(peak, rss())
    time.sleep(0.01)
busy = loaded()
closed = 0
for s, _, was_closed in socks:
    # A closed connection shows as a reset or end of stream on reading.
    try:
        s.setblocking(False)
        data = s.recv(1 << 20)
        closed += was_closed or data == b""
    except BlockingIOError:
        closed += was_closed
    except OSError:
        closed += 1
print(
    f"port {port}: {clients} readers x {gets} GETs, {seconds:.0f} s: RSS +{(peak - before) / 1e6:.0f} MB peak, "
    f"PING p99.9/worst {busy[0]:.2f}/{busy[1]:.2f} ms (idle before: {idle[0]:.2f}/{idle[1]:.2f} ms), "
    f"{closed} of {clients} closed by the server"
)
for s, _, _ in socks:
    s.close()
