#!/usr/bin/env python3
"""redis-py's Lock and a token-bucket rate limiter, as client libraries use scripts (issue 17's
first acceptance line). Run it against redis-server and against rust-edis (a write shard,
--role all, a proxy) and compare the output: every line should be the same.

    scripts/lock-and-bucket.py PORT

Per lock: acquired, a second client refused, extend, TTL extended, reacquire, TTL reset, a
blocked client got it after release (and waited), a second release refused. The bucket's
decisions are printed and digested (same timestamps on both servers, so same decisions).
"""
import sys, threading, time, redis
port = int(sys.argv[1])
r = redis.Redis(port=port)
out = []
for name in ["lock:a", "lock:b", "lock:c", "lock:{x}1"]:
    r.delete(name)
    l = r.lock(name, timeout=5, blocking_timeout=0.1)
    got = l.acquire()
    l2 = redis.Redis(port=port).lock(name, timeout=5, blocking_timeout=0.2)
    second = l2.acquire()
    ext = l.extend(5)
    ttl_ok = 5000 < r.pttl(name) <= 10000
    reacq = l.reacquire()
    ttl_back = 4000 < r.pttl(name) <= 5000
    # a second client blocked until release
    waited = {}
    def waiter():
        t = time.time()
        l3 = redis.Redis(port=port).lock(name, timeout=5, blocking_timeout=5)
        waited["got"] = l3.acquire()
        waited["after"] = time.time() - t
        l3.release()
    th = threading.Thread(target=waiter); th.start()
    time.sleep(0.3)
    l.release()
    th.join()
    try:
        l.release(); rel2 = "no error"
    except redis.exceptions.LockError as e:
        rel2 = type(e).__name__
    out.append((name, got, second, ext, ttl_ok, reacq, ttl_back, waited["got"], round(waited["after"], 1) >= 0.3, rel2))
for o in out: print(o)
# token bucket: same decisions as redis given the same script and same timestamps
bucket = r.register_script("""
local key, rate, cap, now, want = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(s[1]) or cap
local ts = tonumber(s[2]) or now
tokens = math.min(cap, tokens + (now - ts) * rate)
local ok = 0
if tokens >= want then tokens = tokens - want ok = 1 end
redis.call('HSET', key, 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', key, 60000)
return {ok, tostring(tokens)}
""")
decisions = []
for user in ["u1", "u2", "u3"]:
    r.delete("bucket:" + user)
    for i in range(40):
        now = 1000 + i * 0.05
        decisions.append(tuple(bucket(keys=["bucket:" + user], args=[2, 5, now, 1])))
print(decisions[:12])
import hashlib
print("bucket digest", hashlib.sha1(repr(decisions).encode()).hexdigest(), sum(d[0] for d in decisions))
