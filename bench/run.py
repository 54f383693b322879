"""``make bench``: the portal beside its ceiling and a peer, on one loopback stack, in one run.

Starts the bench stack (bench/stack.py), then measures, each from a separate load process:
single endpoints with wrk (bench/lua/portal.lua) at a ladder of offered rates and flat out,
complete sign-ins with the asyncio driver (bench/journeys.py), the portal and the peer
alternating at each rate, the worker's throughput with 1 and 2 processes
(bench/outbox_throughput.py), and the one-click link (a token lookup that consumes) with
10,000 and 1,000,000 stored sign-in requests. Writes docs/benchmarks.json, then
docs/benchmarks.md and docs/img/benchmarks.png from it (bench/report.py), and drops every
bench_* database it made. Every step is bounded; everything talks to 127.0.0.1.

    BENCH_QUICK=1 make bench     # every step briefly (a minute or two): checks the harness
    BENCH_REDIS_URL=redis://127.0.0.1:6379/3 make bench
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from stack import APP_PYTHON, BENCH_PYTHON, PG, ROOT, Stack, create_database, drop_database

LUA = ROOT / "bench" / "lua" / "portal.lua"
CSRF = "benchcsrfbenchcsrfbenchcsrf12345"  # 32 letters and digits: a CSRF secret's shape
COOKIES = {"session": "__Host-portal_session", "csrf": "__Host-csrftoken",
           "binding": "__Host-portal_signin_binding", "ticket": "__Secure-portal_signin_ticket"}
WRK_THREADS = 2
WRK = shutil.which("wrk") or "/usr/bin/wrk"
GIT = shutil.which("git") or "/usr/bin/git"


@dataclass(frozen=True)
class Profile:
    """How long and how hard each step runs."""

    rates: tuple[int, ...]  # offered requests/s for the paced wrk steps
    step_seconds: int
    max_seconds: int
    connections: int
    journey_rates: tuple[int, ...]
    journey_seconds: int
    portal_users: int
    peer_users: int
    links_per_phase: int
    small_table: int
    big_table: int
    outbox_messages: int
    drain_seconds: int


FULL = Profile(rates=(50, 100, 200, 400), step_seconds=8, max_seconds=10, connections=16,
               journey_rates=(5, 10, 25, 50, 100, 150, 200), journey_seconds=15,
               portal_users=60_000, peer_users=12_000, links_per_phase=12_000,
               small_table=10_000, big_table=1_000_000, outbox_messages=400,
               drain_seconds=30)
QUICK = Profile(rates=(50, 200), step_seconds=2, max_seconds=3, connections=16,
                journey_rates=(5, 20), journey_seconds=3,
                portal_users=4_000, peer_users=500, links_per_phase=1_200,
                small_table=10_000, big_table=50_000, outbox_messages=40,
                drain_seconds=10)


class Progress:
    """One line per step, with the time so far and the load average."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.began = total, 0, time.monotonic()

    def step(self, text: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.began
        print(f"[{self.done:2d}/{self.total}] {elapsed / 60:5.1f} min  load "
              f"{os.getloadavg()[0]:4.1f}  {text}", flush=True)


def wrk(stack: Stack, system: str, path: str, *, rate: int | None, seconds: int,
        connections: int, env: dict[str, str]) -> dict[str, Any]:
    """Run wrk once against ``system``; return its JSON line plus rates and load."""
    delay = 0 if rate is None else int(connections * 1000 / rate)
    full_env = {**os.environ, "BENCH_DELAY_MS": str(delay), "BENCH_THREADS": str(WRK_THREADS),
                "BENCH_CSRF": CSRF, "BENCH_CSRF_COOKIE": COOKIES["csrf"],
                "BENCH_ORIGIN": stack.origin(system), **env}
    before = os.getloadavg()[0]
    done = subprocess.run([WRK, "-t", str(WRK_THREADS), "-c", str(connections),
                           "-d", f"{seconds}s", "--timeout", "10s", "-s", str(LUA),
                           stack.base(system) + path], env=full_env, capture_output=True,
                          text=True, timeout=seconds + 60, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["offered_per_s"] = rate
    result["achieved_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors",
                                               "status_errors", "timeouts"))
    result["load_average"] = max(before, os.getloadavg()[0])
    return result


def ladder(stack: Stack, profile: Profile, progress: Progress, name: str, system: str,
           path: str, env: dict[str, str], lines: list[str] | None = None) -> dict[str, Any]:
    """Every paced rate, then flat out; one-use lines (links, tickets) are never reused."""
    steps = []
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-lines-"))
    reached = float(profile.rates[0])
    for rate in (*profile.rates, None):
        seconds = profile.step_seconds if rate else profile.max_seconds
        step_env = dict(env)
        if lines is not None:
            # More than the step can use: its rate, or half again what the last step reached.
            can = min(rate or 1e9, 1.5 * reached + 50)
            want = min(len(lines) if rate is None else len(lines) // 2,
                       int(can * seconds * 1.2) + 50)  # paced: leave half for flat out
            chunk, lines[:] = lines[:want], lines[want:]
            file = folder / f"{name}-{rate}.txt"
            file.write_text("\n".join(chunk) + "\n")
            step_env["BENCH_FILE"] = str(file)
        result = wrk(stack, system, path, rate=rate, seconds=seconds,
                     connections=profile.connections, env=step_env)
        steps.append(result)
        reached = result["achieved_per_s"]
        progress.step(f"{name:<28} offered {rate or 'max':>4}/s: {result['achieved_per_s']:7.1f}"
                      f"/s  p50 {result['p50_us'] / 1000:6.1f} ms  p99 "
                      f"{result['p99_us'] / 1000:6.1f} ms  unexpected {result['unexpected']}")
    return {"name": name, "system": system, "path": path, "steps": steps, "max": steps[-1]}


def session_cookie(stack: Stack, token_line: str) -> str:
    """Sign in once with a ready link; return the session cookie it gives."""
    token, binding = token_line.split()
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports["portal"], timeout=30)
    connection.request("GET", f"/signin/link/{token}/",
                       headers={"Cookie": f"{COOKIES['binding']}={binding}"})
    response = connection.getresponse()
    response.read()
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, rest = header.partition("=")
        if name == COOKIES["session"]:
            return f"{name}={rest.split(';')[0]}"
    raise SystemExit(f"no session from a ready link ({response.status})")


def links(stack: Stack, first: int, count: int, *, tickets: bool = False) -> list[str]:
    out = Path(tempfile.mkdtemp(prefix="portal-bench-links-")) / "links.txt"
    stack.portal("bench/seed_portal.py", "links", str(first), str(count), str(out),
                 *(["--tickets"] if tickets else []))
    return out.read_text().splitlines()


def lookup_query(stack: Stack) -> dict[str, Any]:
    """The link's lookup query alone, timed inside one process (bench/seed_portal.py)."""
    found: dict[str, Any] = json.loads(stack.portal("bench/seed_portal.py", "lookup", "500"))
    return found


def journeys(stack: Stack, profile: Profile, progress: Progress,
             first: int) -> list[dict[str, Any]]:
    """Complete sign-ins at each rate, the portal and the peer alternating."""
    results: list[dict[str, Any]] = []
    given = {"portal": first, "peer": 0}
    stopped: set[str] = set()
    for rate in profile.journey_rates:
        for system in ("portal", "peer"):
            if system in stopped:
                continue
            done = subprocess.run(
                [str(BENCH_PYTHON), "bench/journeys.py", "--system", system,
                 "--base", stack.base(system), "--rate", str(rate),
                 "--seconds", str(profile.journey_seconds), "--first", str(given[system]),
                 "--redis-url", stack.redis_url, "--drain", str(profile.drain_seconds),
                 *(["--progress"] if sys.stderr.isatty() else [])],
                cwd=ROOT, capture_output=True, text=True,
                timeout=profile.journey_seconds + 120, check=False)
            if done.returncode != 0:
                raise SystemExit(f"journeys failed:\n{done.stdout}\n{done.stderr}")
            result = json.loads(done.stdout.splitlines()[-1])
            given[system] += int(rate * profile.journey_seconds)
            results.append(result)
            email = result["email_p95_s"]
            progress.step(f"complete sign-ins {system:<6} offered {rate:>4}/s: "
                          f"{result['signed_in_per_s']:6.1f}/s  email p95 "
                          f"{'-' if email is None else f'{email * 1000:.0f} ms'}  failed "
                          f"{result['failed']}+{result['unfinished']}")
            # A rate it could not keep up with: the higher ones only take longer to fail.
            if result["signed_in"] < 0.9 * rate * profile.journey_seconds:
                stopped.add(system)
        time.sleep(2)  # let the queues settle between rates
    return results


def outbox_throughput(profile: Profile) -> dict[str, Any]:
    """The worker engineer's script, as it is: JSON with --json, else its text."""
    url = create_database("bench_outbox")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BENCH_DATABASE_URL": url}
    argv = [str(APP_PYTHON), "bench/outbox_throughput.py", "--messages",
            str(profile.outbox_messages), "--database-url", url]
    try:
        done = subprocess.run([*argv, "--json"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        if done.returncode == 0:
            start = done.stdout.find("{")
            parsed: dict[str, Any] = json.loads(done.stdout[start:])
            return {"source": "outbox_throughput.py --json", "result": parsed}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        text = done.stdout
        found = {key: re.search(pattern, text) for key, pattern in
                 {"one": r"1 worker:\s+([0-9.]+)", "two": r"2 workers:\s+([0-9.]+)"}.items()}
        return {"source": "outbox_throughput.py (text)", "text": text.strip(),
                "result": {key: float(m.group(1)) for key, m in found.items() if m}}
    finally:
        drop_database("bench_outbox")


def git(*args: str) -> str:
    done = subprocess.run([GIT, *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=30)
    return done.stdout.strip()


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    profile = QUICK if quick else FULL
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    out = Path(os.environ.get("BENCH_OUT", str(ROOT / "docs")))
    ladders = 10
    progress = Progress(ladders * (len(profile.rates) + 1) + 2 * len(profile.journey_rates)
                        + 5)
    started = dt.datetime.now(dt.UTC)
    meta = {"commit": git("rev-parse", "--short", "HEAD"),
            "branch": git("branch", "--show-current"),
            "subject": git("log", "-1", "--format=%s"),
            "dirty": bool(git("status", "--porcelain")),
            # What the commit is, when it is not simply a branch (say, a throwaway merge).
            "note": os.environ.get("BENCH_NOTE", ""),
            "started": started.isoformat(timespec="seconds"), "quick": quick,
            "cpus": os.cpu_count(), "load_average_start": os.getloadavg(),
            "profile": profile.__dict__, "gunicorn_workers": 2}
    results: dict[str, Any] = {"meta": meta, "endpoints": {}, "lookup": {}}
    stack = Stack(redis_url)
    try:
        stack.prepare(profile.portal_users, profile.peer_users)
        progress.step(f"databases ready: {profile.portal_users} people (portal), "
                      f"{profile.peer_users} (peer)")
        stack.start()
        progress.step(f"stack up: nginx, 3 x gunicorn (2 workers), worker, sink; {stack.folder}")
        n = profile.links_per_phase
        # Users: [0, n) one-click links at 10k, [n, 2n) tickets, [2n, 3n) links at 1M,
        # [3n, ...) complete sign-ins.
        bound_small = links(stack, 0, n)
        rows = stack.portal("bench/seed_portal.py", "fill", str(profile.small_table)).strip()
        progress.step(f"sign-in requests stored: {rows} (VACUUM ANALYZE done)")
        signed_in = session_cookie(stack, bound_small.pop())
        e = results["endpoints"]
        e["hello"] = ladder(stack, profile, progress, "hello (ceiling)", "hello", "/",
                            {"BENCH_MODE": "get", "BENCH_EXPECT": "200"})
        e["signin_page"] = ladder(stack, profile, progress, "sign-in page", "portal", "/signin/",
                                  {"BENCH_MODE": "get", "BENCH_EXPECT": "200"})
        e["signed_in_page"] = ladder(stack, profile, progress, "signed-in page (home)", "portal",
                                     "/", {"BENCH_MODE": "get", "BENCH_EXPECT": "200",
                                           "BENCH_COOKIE": signed_in})
        e["signed_in_list"] = ladder(stack, profile, progress, "signed-in page (/requests/)",
                                     "portal", "/requests/",
                                     {"BENCH_MODE": "get", "BENCH_EXPECT": "200",
                                      "BENCH_COOKIE": signed_in})
        plain = bound_small.pop().split()[0]
        e["link_plain"] = ladder(stack, profile, progress, "link, no binding cookie", "portal",
                                 "/signin/link/", {"BENCH_MODE": "link_plain",
                                                   "BENCH_TOKEN": plain,
                                                   "BENCH_EXPECT": "^/signin/confirm/$"})
        e["link_bound"] = ladder(stack, profile, progress, "link + binding (10k rows)",
                                 "portal", "/signin/link/",
                                 {"BENCH_MODE": "link_bound", "BENCH_EXPECT": "^/$",
                                  "BENCH_BINDING_COOKIE": COOKIES["binding"]}, bound_small)
        results["lookup"]["small"] = {"rows": int(rows), "result": e["link_bound"]["max"],
                                      "query": lookup_query(stack)}
        tickets = links(stack, n, n, tickets=True)
        e["confirm"] = ladder(stack, profile, progress, "confirm POST", "portal",
                              "/signin/confirm/", {"BENCH_MODE": "confirm", "BENCH_EXPECT": "^/$",
                                                   "BENCH_TICKET_COOKIE": COOKIES["ticket"]},
                              tickets)
        e["request_link"] = ladder(stack, profile, progress, "request a link (POST)", "portal",
                                   "/signin/", {"BENCH_MODE": "request",
                                                "BENCH_EXPECT": "check%-inbox"})
        e["peer_request"] = ladder(stack, profile, progress, "peer: request a code", "peer",
                                   "/accounts/login/code/",
                                   {"BENCH_MODE": "peer_request", "BENCH_CSRF_COOKIE": "csrftoken",
                                    "BENCH_EXPECT": "/accounts/login/code/confirm/"})
        results["journeys"] = journeys(stack, profile, progress, 3 * n)
        results["worker"] = outbox_throughput(profile)
        progress.step(f"worker throughput: {json.dumps(results['worker']['result'])[:90]}")
        bound_big = links(stack, 2 * n, n)
        rows = stack.portal("bench/seed_portal.py", "fill", str(profile.big_table)).strip()
        progress.step(f"sign-in requests stored: {rows} (VACUUM ANALYZE done)")
        e["link_bound_big"] = ladder(stack, profile, progress,
                                     f"link + binding ({int(rows) // 1000}k rows)", "portal",
                                     "/signin/link/",
                                     {"BENCH_MODE": "link_bound", "BENCH_EXPECT": "^/$",
                                      "BENCH_BINDING_COOKIE": COOKIES["binding"]}, bound_big)
        results["lookup"]["big"] = {"rows": int(rows), "result": e["link_bound_big"]["max"],
                                    "query": lookup_query(stack)}
    finally:
        stack.stop()
    meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta["load_average_end"] = os.getloadavg()
    meta["database"] = f"{PG}/bench_* (created and dropped by the run)"
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    report.write(results, out)
    print(f"wrote {out / 'benchmarks.md'}, benchmarks.json and img/benchmarks.png "
          f"in {(time.monotonic() - progress.began) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
