#!/usr/bin/env python3
"""Send the same commands to a real redis-server and to rust-edis; print every reply that
differs, byte for byte. A development aid: Redis 7 is the reference for replies.

    scripts/compare-with-redis.py REDIS_PORT EDIS_PORT [FILE]

FILE holds one command per line in redis-cli syntax (quotes allowed, "\\xNN" for a byte); lines starting with
'#' are comments. A line starting with '~ ' compares its reply's elements in any order (set
members, whose order is the hash table's); a line starting with '! ' is sent to both and its
replies are not compared (HELLO 3, whose reply names the server). Both servers are FLUSHALLed first. Replies that legitimately differ
(run ids, times, client ids) should not be in the file.

Several connections: a line starting with '@N ' runs on connection N (1 by default, others
opened on first use). A line starting with '& ' (after any '@N ') takes every frame that
arrives within a short wait after the reply (SUBSCRIBE's confirmations, pushes), and a line
'@N ?' compares what connection N received meanwhile (messages, invalidations). '$IDN' in a
command is connection N's client id on each server.
"""
import shlex
import socket
import sys


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        # \xNN in a quoted argument is that byte, as redis-cli reads it.
        a = a.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1") if "\\x" in a else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    if not line:
        return b"<closed>"
    t = line[:1]
    if t in b"+-:_#,(":
        return line
    if t in b"$=!":
        n = int(line[1:-2])
        return line if n < 0 else line + f.read(n + 2)
    if t in b"*~>%|":
        n = int(line[1:-2])
        if n < 0:
            return line
        n = n * 2 if t in b"%|" else n
        return line + b"".join(read_reply(f) for _ in range(n))
    return line


def unordered(reply):
    """An aggregate reply as its header and its elements sorted (map entries kept in pairs)."""
    import io
    f = io.BytesIO(reply)
    line = f.readline()
    t = line[:1]
    if t not in b"*~%":
        return reply
    n = int(line[1:-2])
    if n < 0:
        return reply
    items = [read_reply(f) for _ in range(n * (2 if t == b"%" else 1))]
    if t == b"%":
        items = [items[i] + items[i + 1] for i in range(0, len(items), 2)]
    return line + b"".join(sorted(items))


class Conn:
    """A connection whose frames can be read with a deadline, whole or not at all."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def frame(self, timeout=None):
        import io
        while True:
            if self.buf:
                f = io.BytesIO(self.buf)
                try:
                    r = read_reply(f)
                    # A partial frame reads short: take it only once it is whole.
                    if complete(self.buf[: f.tell()]):
                        self.buf = self.buf[f.tell():]
                        return r
                except (ValueError, IndexError):
                    pass
            self.s.settimeout(timeout)
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return None
            if not d:
                return b"<closed>"
            self.buf += d

    def all(self, wait):
        out = b""
        while True:
            r = self.frame(wait)
            if r is None or r == b"<closed>":
                return out + (r or b"")
            out += r


def complete(b):
    """Whether b is exactly one whole RESP frame."""
    import io
    f = io.BytesIO(b)
    try:
        r = read_reply(f)
    except (ValueError, IndexError):
        return False
    return f.tell() == len(b) and r.endswith(b"\r\n") and len(r) == len(b)


def main():
    rport, eport = int(sys.argv[1]), int(sys.argv[2])
    lines = open(sys.argv[3]).read().splitlines() if len(sys.argv) > 3 else sys.stdin.read().splitlines()
    conns = {}

    def conn(n, i):
        if (n, i) not in conns:
            c = conns[(n, i)] = Conn((rport, eport)[i])
            c.s.sendall(encode(["CLIENT", "ID"]))
            c.id = c.frame(5)[1:-2].decode()
        return conns[(n, i)]

    for i in (0, 1):
        c = conn(1, i)
        c.s.sendall(encode(["FLUSHALL"]))
        c.frame()
    diffs = 0
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        n = 1
        body = line
        if body.startswith("@"):
            head, _, body = body.partition(" ")
            n = int(head[1:])
        any_order = body.startswith("~ ")
        unchecked = body.startswith("! ")
        every = body.startswith("& ")
        if any_order or unchecked or every:
            body = body[2:]
        replies = []
        for i in (0, 1):
            c = conn(n, i)
            if body.strip() == "?":
                replies.append(c.all(0.05))
                continue
            args = shlex.split(body)
            for j, a in enumerate(args):
                if a.startswith("$ID"):
                    args[j] = conn(int(a[3:]), i).id
            c.s.sendall(encode(args))
            r = c.frame(5)
            if every:
                r += c.all(0.05)
            replies.append(unordered(r) if any_order else r)
        if not unchecked and replies[0] != replies[1]:
            diffs += 1
            print(f"DIFF {line}\n  redis: {replies[0]!r}\n  edis:  {replies[1]!r}")
    print(f"{diffs} differences in {len([l for l in lines if l.strip() and not l.startswith('#')])} commands")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
