#!/usr/bin/env python3
"""One big SET, then DEL, against a fresh server (issue 16: memory that comes back).

    benches/big_value.py ROLE [MB] [PORT]       ROLE: write | all | redis

Starts the server (release build for write/all; `save ""`), sends SET big <MB MB> in 1 MB
writes, waits, DELs it, then reports used_memory before, after the SET and after the DEL (and
how long it took to come back within 50 MB), and the process's peak RSS (VmHWM) as a multiple
of the value's size. Under 2x is the target; redis-server is about 1.02x.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

role = sys.argv[1]
size = (int(sys.argv[2]) if len(sys.argv) > 2 else 512) << 20
port = int(sys.argv[3]) if len(sys.argv) > 3 else 7390
binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "rust-edis")
d = tempfile.mkdtemp()
if role == "redis":
    args = ["redis-server", "--port", str(port), "--save", "", "--dir", d]
else:
    with open(f"{d}/bench.conf", "w") as f:
        f.write('save ""\n')
    args = [binary, "--role", role, "--port", str(port), "--dir", d, "--config", f"{d}/bench.conf"]
    if role == "all":
        args += ["--info", f"127.0.0.1:{port + 1}"]
p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)


def call(s, *words):
    s.sendall(b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
    return s.recv(1 << 20)


def used(s):
    # Through --role all's proxy the first INFO may come before the map: retry briefly.
    for _ in range(50):
        m = re.search(rb"used_memory:(\d+)", call(s, b"INFO", b"memory"))
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise SystemExit("no used_memory in INFO")


def status(field):
    with open(f"/proc/{p.pid}/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1)) * 1024


try:
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.1)
    # Up once a write is routed (for --role all, once the proxy has the map).
    for _ in range(100):
        if call(s, b"SET", b"warm", b"1") == b"+OK\r\n":
            break
        time.sleep(0.1)
    u0 = used(s)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % size)
    chunk = b"x" * (1 << 20)
    left = size
    while left:
        n = min(left, len(chunk))
        s.sendall(chunk[:n])
        left -= n
    s.sendall(b"\r\n")
    assert s.recv(100) == b"+OK\r\n"
    time.sleep(2)
    u1 = used(s)
    assert call(s, b"DEL", b"big") == b":1\r\n"
    start, back = time.time(), None
    while time.time() - start < 10:
        if used(s) - u0 < 50 << 20:
            back = time.time() - start
            break
        time.sleep(0.1)
    peak = status("VmHWM")
    print(
        f"{role}: used_memory {u0 >> 20} MB, after SET {u1 >> 20} MB, after DEL {used(s) >> 20} MB "
        f"(within 50 MB of the start after {'never' if back is None else f'{back:.1f} s'}); "
        f"peak RSS {peak >> 20} MB = {peak / size:.2f}x the value"
    )
finally:
    p.terminate()
    p.wait()
