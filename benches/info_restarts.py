#!/usr/bin/env python3
"""SIGKILL and restart info N times on a running cluster while a client writes through the
proxy (issue 12's acceptance 4). After each restart: every read shard's primary in INFO
replication must equal its primary in CLUSTER NODES, and 1,000 keys written after the restart
must all read back through the proxy's default replica reads within 2 s.

usage: info_restarts.py BIN INFO_PORT INFO_DIR PROXY_PORT [rounds] [info password]
(needs redis-py: pip install redis)"""
import os, signal, subprocess, sys, threading, time
import redis

bin_, info_port, info_dir, proxy_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 20
password = sys.argv[6] if len(sys.argv) > 6 else None

def info_pid():
    out = subprocess.run(["pgrep", "-f", "--", f"--role info --port {info_port} "], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]

def nodes():
    """CLUSTER NODES as redis-py parses it: {"host:port@bus": {"node_id", "flags", "master_id", ...}}."""
    return redis.Redis(port=info_port, password=password).cluster("NODES")

stop = False
writes = [0, 0]
def writer():
    c = redis.Redis(port=proxy_port, socket_timeout=5)
    n = 0
    while not stop:
        try:
            c.set(f"bg{n % 1000}", n)
            writes[0] += 1
        except redis.RedisError:
            writes[1] += 1
            time.sleep(0.01)
        n += 1
threading.Thread(target=writer, daemon=True).start()

worst = 0.0
for r in range(rounds):
    for pid in info_pid():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.05)
    args = [bin_, "--role", "info", "--port", str(info_port), "--dir", info_dir]
    if password:
        args += ["--requirepass", password]
    subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(f"{info_dir}.log", "a"), start_new_session=True)
    deadline = time.time() + 10
    while True:
        try:
            text = nodes()
            if redis.Redis(port=info_port, password=password).cluster("INFO")["cluster_state"] == "ok":
                break
        except redis.RedisError:
            pass
        assert time.time() < deadline, "info never came back"
        time.sleep(0.02)
    by_id = {n["node_id"]: int(addr.split(":")[1].split("@")[0]) for addr, n in text.items()}
    mismatched = 0
    for addr, n in text.items():
        if "slave" in n["flags"]:
            actual = redis.Redis(port=by_id[n["node_id"]]).info("replication")["master_port"]
            if actual != by_id[n["master_id"]]:
                mismatched += 1
    w = redis.Redis(port=proxy_port)
    p = w.pipeline(transaction=False)
    for i in range(1000):
        p.set(f"r{r}:{i}", i)
    p.execute()
    t0 = time.time()
    while True:
        rd = redis.Redis(port=proxy_port)  # a connection that did not write them
        p = rd.pipeline(transaction=False)
        for i in range(1000):
            p.get(f"r{r}:{i}")
        got = p.execute()
        missing = sum(1 for i, v in enumerate(got) if v != str(i).encode())
        if missing == 0 or time.time() - t0 > 2:
            break
        time.sleep(0.01)
    took = time.time() - t0
    worst = max(worst, took)
    print(f"round {r + 1}: primaries mismatched {mismatched}, missing {missing}/1000, read back in {took * 1000:.0f} ms")
    if mismatched or missing:
        sys.exit(1)
stop = True
print(f"ok: {rounds} rounds, background writes {writes[0]} acknowledged, {writes[1]} errors, slowest read-back {worst * 1000:.0f} ms")
