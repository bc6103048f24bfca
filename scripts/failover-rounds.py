#!/usr/bin/env python3
"""Failover under load, as issue 18's first acceptance line asks, on a multi-process cluster
from the release build: info, 3 write shards with 2 read shards each, a proxy. Writers (three
per shard, through the proxy) call WAIT 1 1000 after each SET and keep what WAIT confirmed.
Each round SIGKILLs the current primary of one shard, measures the time from that shard's
first error to its first success, starts the killed process again with its --dir and waits
until it is back as a read shard. At the end: every confirmed write is read back, and every
shard's read shards have their primary's DEBUG DIGEST.

    scripts/failover-rounds.py [rounds] [node-timeout-ms] [base-port]

EXTRA="--appendonly yes" adds flags to every shard. With MANUAL=1, each round sends CLUSTER FAILOVER to a read shard of the shard instead of
killing its primary, and the writers count every acknowledged SET (no WAIT): none may be
lost, and the old primary stays up as a read shard.

Needs redis-py (pip install redis). Prints one line per round and a summary; exits 1 if a
confirmed write is missing, a digest differs, or a window exceeds node-timeout + 2 s.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis
from redis.crc import key_slot

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
TIMEOUT_MS = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
BASE = int(sys.argv[3]) if len(sys.argv) > 3 else 7400
MANUAL = os.environ.get("MANUAL") == "1"
# More flags for every shard, e.g. EXTRA="--appendonly yes --appendfsync always".
EXTRA = os.environ.get("EXTRA", "").split()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "rust-edis")
RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]
WRITERS_PER_SHARD = 3

subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
DIR = tempfile.mkdtemp(prefix="rust-edis-failover.")
procs = {}  # port -> (args, Popen)


def start(port, args):
    log = open(os.path.join(DIR, f"{port}.log"), "ab")
    procs[port] = (args, subprocess.Popen([BIN, "--port", str(port)] + args, stdout=log, stderr=log))


def stop_all():
    for _, p in procs.values():
        if p.poll() is None:
            p.kill()
    for _, p in procs.values():
        p.wait()


def client(port):
    return redis.Redis(port=port, socket_timeout=5, decode_responses=True)


def wait_for(what, cond, seconds=30):
    until = time.time() + seconds
    while time.time() < until:
        try:
            if cond():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"failover-rounds: timed out waiting for {what}")


def nodes():
    """CLUSTER NODES at info as {port: (flags, master-id, id)}."""
    out = {}
    for line in client(BASE).execute_command("CLUSTER", "NODES").splitlines():
        f = line.split()
        port = int(f[1].split("@")[0].rsplit(":", 1)[1])
        out[port] = (f[2], f[3], f[0])
    return out


def primary_of(shard):
    for r in client(BASE).execute_command("CLUSTER", "SLOTS"):
        if r[0] == RANGES[shard][0]:
            return int(r[2][1]), len(r) - 3
    return None, 0


def healthy():
    """Every shard has a live primary and two live, synced read shards."""
    if "cluster_state:ok" not in client(BASE).execute_command("CLUSTER", "INFO"):
        return False
    return all(primary_of(s)[1] == 2 for s in range(3))


try:
    start(BASE, ["--role", "info", "--write-shards", "3", "--dir", f"{DIR}/info", "--node-timeout", str(TIMEOUT_MS)])
    wait_for("the cluster secret", lambda: os.path.getsize(f"{DIR}/info/cluster.secret") > 0)
    member = ["--info", f"127.0.0.1:{BASE}", "--cluster-secret-file", f"{DIR}/info/cluster.secret",
              "--enable-debug-command", "yes"] + EXTRA
    for i in range(1, 4):
        start(BASE + i, ["--role", "write", "--dir", f"{DIR}/w{i}"] + member)
    wait_for("three write shards", lambda: "cluster_state:ok" in client(BASE).execute_command("CLUSTER", "INFO"))
    for i in range(1, 7):
        start(BASE + 100 + i, ["--role", "read", "--dir", f"{DIR}/r{i}"] + member)
    start(BASE + 100, ["--role", "proxy"] + member)
    wait_for("two synced read shards per write shard", healthy)
    wait_for("the proxy", lambda: client(BASE + 100).ping())

    # Writers: SET, then WAIT 1 1000; a write counts as confirmed when WAIT says 1 or more.
    confirmed = [[] for _ in range(3 * WRITERS_PER_SHARD)]
    events = [[] for _ in range(3)]  # per shard: (started, ended, ok)
    done = threading.Event()

    def writer(w):
        shard = w // WRITERS_PER_SHARD
        lo, hi = RANGES[shard]
        tag = next(f"s{shard}w{w}t{i}" for i in range(10**6) if lo <= key_slot(f"s{shard}w{w}t{i}".encode()) <= hi)
        c = client(BASE + 100)
        n = 0
        while not done.is_set():
            key = f"{{{tag}}}:{n}"
            began = time.time()
            try:
                c.set(key, n)
                acked = 1 if MANUAL else c.execute_command("WAIT", 1, 1000)
                events[shard].append((began, time.time(), True))
                if acked >= 1:
                    confirmed[w].append((key, str(n)))
            except (redis.RedisError, OSError):
                events[shard].append((began, time.time(), False))
                time.sleep(0.01)
            n += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(3 * WRITERS_PER_SHARD)]
    for t in threads:
        t.start()
    time.sleep(1)

    windows, outages, slowests = [], [], []
    for rnd in range(ROUNDS):
        shard = rnd % 3
        victim, _ = primary_of(shard)
        args, p = procs[victim]
        killed = time.time()
        if MANUAL:
            vid = nodes()[victim][2]
            replica = next(port for port, (flags, master, _) in nodes().items() if master == vid and flags == "slave")
            client(replica).execute_command("CLUSTER", "FAILOVER")
        else:
            p.send_signal(signal.SIGKILL)
            p.wait()
        wait_for(f"round {rnd}: a new primary for shard {shard}", lambda: primary_of(shard)[0] not in (None, victim))
        new_primary, _ = primary_of(shard)
        # The error window: the shard's first error after the kill to its first success
        # after that; the outage: the kill to the end of the first success of a write begun
        # after it (a write that hangs instead of failing counts there).
        def measured():
            ev = [e for e in list(events[shard]) if e[1] >= killed]
            back = next((end for began, end, ok in ev if ok and began > killed), None)
            if back is None:
                return None
            first_err = next((end for _, end, ok in ev if not ok), None)
            err_window = 0.0 if first_err is None else next(
                (end - first_err for _, end, ok in ev if ok and end > first_err), 0.0)
            return err_window, back - killed
        wait_for(f"round {rnd}: writes to shard {shard} succeed again", lambda: measured() is not None)
        w, outage = measured()
        windows.append(w)
        outages.append(outage)
        # The slowest write of the shard meanwhile (one held by a paused primary counts).
        slowest = max((end - began for began, end, _ in list(events[shard]) if end >= killed), default=0)
        slowests.append(slowest)
        # The killed process again, same arguments and --dir: it must come back a read shard.
        if not MANUAL:
            start(victim, args)
        wait_for(
            f"round {rnd}: {victim} back as a read shard",
            lambda: nodes().get(victim, ("", "", ""))[0] == "slave" and healthy(),
        )
        print(f"round {rnd + 1:2}: {'failed over' if MANUAL else 'killed'} {victim} (shard {shard}), {new_primary} took over; "
              f"error window {w * 1000:.0f} ms, outage {outage * 1000:.0f} ms, slowest write {slowest * 1000:.0f} ms; "
              f"{victim} is a read shard again",
              flush=True)

    done.set()
    for t in threads:
        t.join()
    total = sum(len(c) for c in confirmed)
    proxy = client(BASE + 100)
    missing = 0
    for writes in confirmed:
        for i in range(0, len(writes), 500):
            batch = writes[i:i + 500]
            got = proxy.mget([k for k, _ in batch])
            missing += sum(1 for (k, v), g in zip(batch, got) if g != v)
    # Every read shard ends with its primary's data.
    time.sleep(1.5)
    digests_ok = True
    for shard in range(3):
        primary, _ = primary_of(shard)
        want = client(primary).execute_command("DEBUG", "DIGEST")
        pid = nodes()[primary][2]
        for port, (flags, master, _) in nodes().items():
            if master == pid:
                got = client(port).execute_command("DEBUG", "DIGEST")
                if got != want:
                    digests_ok = False
                    print(f"shard {shard}: {port} digest {got} != primary {primary} {want}")
    ms = sorted(w * 1000 for w in windows)
    out = sorted(o * 1000 for o in outages)
    how = "acknowledged writes (CLUSTER FAILOVER)" if MANUAL else "writes confirmed by WAIT"
    print(f"{ROUNDS} rounds, node-timeout {TIMEOUT_MS} ms: {total} {how}, {missing} missing; "
          f"error window median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms; "
          f"outage (kill to first write begun after it done) median {statistics.median(out):.0f} ms, "
          f"max {out[-1]:.0f} ms; slowest write {max(slowests) * 1000:.0f} ms; read shards' digests {'equal to their primary' if digests_ok else 'DIFFER'}")
    bad = missing > 0 or not digests_ok or max(ms[-1], out[-1]) > TIMEOUT_MS + 2000
    sys.exit(1 if bad else 0)
finally:
    stop_all()
    if os.environ.get("KEEP") is None:
        shutil.rmtree(DIR, ignore_errors=True)
    else:
        print(f"files and logs kept in {DIR}")
