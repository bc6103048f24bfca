#!/usr/bin/env python3
"""Send the same commands to a real redis-server and to rust-edis; print every reply that
differs, byte for byte. A development aid: Redis 7 is the reference for replies.

    scripts/compare-with-redis.py REDIS_PORT EDIS_PORT [FILE]

FILE holds one command per line in redis-cli syntax (quotes allowed, "\\xNN" for a byte); lines starting with
'#' are comments. A line starting with '~ ' compares its reply's elements in any order (set
members, whose order is the hash table's); a line starting with '! ' is sent to both and its
replies are not compared (HELLO 3, whose reply names the server). Both servers are FLUSHALLed first. Replies that legitimately differ
(run ids, times, client ids) should not be in the file.
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


def main():
    rport, eport = int(sys.argv[1]), int(sys.argv[2])
    lines = open(sys.argv[3]).read().splitlines() if len(sys.argv) > 3 else sys.stdin.read().splitlines()
    conns = []
    for port in (rport, eport):
        s = socket.create_connection(("127.0.0.1", port))
        f = s.makefile("rb")
        s.sendall(encode(["FLUSHALL"]))
        read_reply(f)
        conns.append((s, f))
    diffs = 0
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        any_order = line.startswith("~ ")
        unchecked = line.startswith("! ")
        args = shlex.split(line[2:] if any_order or unchecked else line)
        replies = []
        for s, f in conns:
            s.sendall(encode(args))
            r = read_reply(f)
            replies.append(unordered(r) if any_order else r)
        if not unchecked and replies[0] != replies[1]:
            diffs += 1
            print(f"DIFF {line}\n  redis: {replies[0]!r}\n  edis:  {replies[1]!r}")
    print(f"{diffs} differences in {len([l for l in lines if l.strip() and not l.startswith('#')])} commands")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
