#!/usr/bin/env python3
"""Idle-connection cost and connect speed, side by side in the same run.

    benches/connections.py N PORT:PID [PORT:PID ...]

For each server (a port and the pid whose RSS to read): opens N connections as fast as the
client can (blocking connects one after another, as a pool warming up does), reports the time
it took, the RSS growth per connection once they are open and idle, then after each sent one
PING and idled 3 s (time for idle buffers to be given back), then closes them. Run with
`ulimit -n` above N.
"""
import socket
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    n = int(sys.argv[1])
    for target in sys.argv[2:]:
        port, pid = (int(x) for x in target.split(":"))
        before = rss(pid)
        t = time.monotonic()
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
        opened = time.monotonic() - t
        # Every connection reached the server: one PING on the last one answers after all
        # were accepted (accept order), so RSS counts them all.
        socks[-1].sendall(b"PING\r\n")
        socks[-1].recv(16)
        time.sleep(1.0)
        idle = rss(pid)
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            s.recv(16)
        time.sleep(3.5)
        pinged = rss(pid)
        for s in socks:
            s.close()
        print(
            f"port {port}: open {n} in {opened:.2f}s; RSS per idle conn "
            f"{(idle - before) / n:,.0f} B; after a PING each and 3.5 s idle {(pinged - before) / n:,.0f} B"
        )
        time.sleep(1.0)


main()
