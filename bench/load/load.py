"""Fixed-rate mixed traffic against a Berth server (bench/load/run.sh).

Every request has a scheduled start (an open model: the schedule does not
wait for answers), and its latency counts from that scheduled start, so a
slow server's queueing is measured rather than hidden (no coordinated
omission). Prints p50/p99/max per route and every error; exits 1 on any.

Usage: load.py BASE_URL ADMIN_TOKEN USERS_JSON SECONDS
USERS_JSON: [[email, password, token], ...] of members for logins and reads.
"""

import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

base, admin_token, users_file, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
users = json.load(open(users_file))
url = urllib.parse.urlparse(base)

# Requests per second of each kind; about 37/s in all.
RATES = {
    "POST /api/v1/auth/login": 1,
    "GET /api/v1/me": 5,
    "GET /api/v1/templates": 2,
    "GET /api/v1/environments": 10,
    "GET /api/v1/environments/{name}": 10,
    "POST /api/v1/environments/preview": 5,
    "POST /api/v1/environments": 2,
    "DELETE /api/v1/environments/{name}": 2,
}
EXPECTED = {
    "POST /api/v1/auth/login": 200,
    "POST /api/v1/environments": 201,
    "DELETE /api/v1/environments/{name}": 202,
}

local = threading.local()
lock = threading.Lock()
latencies = {route: [] for route in RATES}
errors = []
created = []  # names created during the run, deleted in turn
run_id = os.environ["BENCH_RUN"]
counter = iter(range(10**9))


def connection():
    if getattr(local, "conn", None) is None:
        local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    return local.conn


def send(method, path, token=None, body=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = json.dumps(body) if body is not None else None
    for attempt in range(2):
        conn = connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, payload
        except (http.client.HTTPException, OSError):
            # A kept-alive connection the server closed: once more on a new one.
            conn.close()
            local.conn = None
            if attempt:
                raise


def request(route):
    """The request of `route`, as (method, path, token, body); None to skip."""
    user = random.choice(users)
    if route == "POST /api/v1/auth/login":
        return "POST", "/api/v1/auth/login", None, {"email": user[0], "password": user[1]}
    if route == "GET /api/v1/me":
        return "GET", "/api/v1/me", user[2], None
    if route == "GET /api/v1/templates":
        return "GET", "/api/v1/templates", user[2], None
    if route == "GET /api/v1/environments":
        return "GET", "/api/v1/environments?all=true", admin_token, None
    if route == "GET /api/v1/environments/{name}":
        return "GET", "/api/v1/environments/" + user[3], user[2], None
    if route == "POST /api/v1/environments/preview":
        return "POST", "/api/v1/environments/preview", user[2], {"name": "preview-" + run_id, "template": "small"}
    if route == "POST /api/v1/environments":
        name = "load-%s-%d" % (run_id, next(counter))
        return "POST", "/api/v1/environments", admin_token, {"name": name, "template": "small", "ttl": "1h"}
    if route == "DELETE /api/v1/environments/{name}":
        with lock:
            name = created.pop(0) if created else None
        if name is None:
            return None
        return "DELETE", "/api/v1/environments/" + name, admin_token, None
    raise ValueError(route)


def run(route, due):
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    planned = request(route)
    if planned is None:
        return
    method, path, token, body = planned
    try:
        status, payload = send(method, path, token, body)
    except Exception as e:  # noqa: BLE001 - every failure is reported
        status, payload = None, str(e).encode()
    took = time.monotonic() - due
    with lock:
        latencies[route].append(took)
        if status != EXPECTED.get(route, 200):
            errors.append((route, status, payload[:300]))
        elif route == "POST /api/v1/environments":
            created.append(body["name"])


# The schedule: each route's requests evenly spaced at its rate, all merged.
start = time.monotonic() + 0.5
schedule = sorted(
    (start + i / rate, route)
    for route, rate in RATES.items()
    for i in range(int(seconds * rate))
)
with ThreadPoolExecutor(max_workers=64) as pool:
    for due, route in schedule:
        # Hand each request to the pool shortly before it is due, so that the
        # pool's queue never holds the whole run.
        wait = due - time.monotonic() - 0.05
        if wait > 0:
            time.sleep(wait)
        pool.submit(run, route, due)
elapsed = time.monotonic() - start

total = sum(len(v) for v in latencies.values())
print(f"{total} requests in {elapsed:.1f} s ({total / elapsed:.1f}/s), {len(errors)} errors")
print(f"{'route':40} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
for route, values in latencies.items():
    if not values:
        continue
    values.sort()
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000  # noqa: E731
    print(f"{route:40} {len(values):6d} {pick(0.5):8.1f} {pick(0.99):8.1f} {values[-1] * 1000:8.1f}")
for route, status, payload in errors[:20]:
    print(f"error: {route}: {status} {payload!r}")
print("left to delete:", " ".join(created), file=sys.stderr)
sys.exit(1 if errors else 0)
