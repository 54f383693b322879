"""Load driver for complete sign-ins: ask, wait for the email at the sink, use it, signed in.

A separate process (the benchmark's virtualenv: aiohttp, redis) that starts journeys at a
fixed rate (open loop: a slow server does not slow the arrivals) for a fixed time, then
waits a bounded time for the last ones, and prints one JSON object: how many journeys
finished, the rate they finished at, and percentiles of the journey time and of the email
latency (from sending the form to the sink's receipt of the message, same clock).

The portal's journey is what a browser does: GET /signin/, POST the address, GET "Check your
inbox", then (the email has arrived) GET the link with the binding cookie, which signs in
and redirects home, GET the home page. The peer's (django-allauth's login by code) has the
same shape: GET and POST /accounts/login/code/, GET the code page, POST the code from the
email, GET the home page. Both fetch five pages with cookies kept per journey.

    python bench/journeys.py --system portal --base http://127.0.0.1:8080 --rate 50 \
        --seconds 15 --first 20000 --redis-url redis://127.0.0.1:6379/3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import redis.asyncio as aioredis

CHANNEL = "bench:mail"
MAIL_TIMEOUT = 30.0
MAX_IN_FLIGHT = 3000
LINK = re.compile(r"/signin/link/([A-Za-z0-9_-]{43})/")
PEER_CODE = re.compile(r"^\s*([A-Z0-9]{3,5}-[A-Z0-9]{3,5}|[A-Z0-9]{6,10})\s*$", re.MULTILINE)


class Failed(Exception):
    """A journey went wrong: the step, and what came back."""


@dataclass
class Browser:
    """One journey's cookies (kept by hand: the portal's are Secure, and this is HTTP)."""

    http: aiohttp.ClientSession
    base: str
    origin: str
    cookies: dict[str, str] = field(default_factory=dict)

    async def fetch(self, method: str, path: str, expect: int, data: dict[str, str] | None = None,
                    ) -> tuple[int, str, str]:
        headers = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 bench"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if data is not None:
            headers["Origin"] = self.origin
        async with self.http.request(method, self.base + path, data=data, headers=headers,
                                     allow_redirects=False) as response:
            body = await response.text()
            for name, morsel in SimpleCookie(
                    "\n".join(response.headers.getall("Set-Cookie", []))).items():
                if morsel["max-age"] == "0" or not morsel.value or morsel.value == '""':
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
            if response.status != expect:
                raise Failed(f"{method} {path}: {response.status}")
            return response.status, response.headers.get("Location", ""), body

    def csrf(self) -> str:
        for name, value in self.cookies.items():
            if name.endswith("csrftoken"):
                return value
        raise Failed("no CSRF cookie")


class Mailbox:
    """Futures by address, resolved by the sink's messages on the Redis channel."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[tuple[float, str]]] = {}

    def expect(self, address: str) -> asyncio.Future[tuple[float, str]]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[address] = future
        return future

    async def listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            mail = json.loads(message["data"])
            future = self.waiting.pop(mail["to"], None)
            if future is not None and not future.done():
                future.set_result((float(mail["t"]), mail["text"]))


async def portal_journey(browser: Browser, mailbox: Mailbox, address: str) -> float:
    await browser.fetch("GET", "/signin/", 200)
    mail = mailbox.expect(address)
    asked = time.time()
    _, location, _ = await browser.fetch("POST", "/signin/", 302, {
        "csrfmiddlewaretoken": browser.csrf(), "email": address, "next": "/"})
    if "check-inbox" not in location:
        raise Failed(f"asked, sent to {location}")
    await browser.fetch("GET", "/signin/check-inbox/", 200)
    arrived, text = await asyncio.wait_for(mail, MAIL_TIMEOUT)
    found = LINK.search(text)
    if not found:
        raise Failed("no link in the email")
    _, location, _ = await browser.fetch("GET", f"/signin/link/{found.group(1)}/", 302)
    if location != "/":
        raise Failed(f"link sent to {location}")
    await browser.fetch("GET", "/", 200)
    return arrived - asked


async def peer_journey(browser: Browser, mailbox: Mailbox, address: str) -> float:
    await browser.fetch("GET", "/accounts/login/code/", 200)
    mail = mailbox.expect(address)
    asked = time.time()
    _, location, _ = await browser.fetch("POST", "/accounts/login/code/", 302, {
        "csrfmiddlewaretoken": browser.csrf(), "email": address})
    if "confirm" not in location:
        raise Failed(f"asked, sent to {location}")
    await browser.fetch("GET", "/accounts/login/code/confirm/", 200)
    arrived, text = await asyncio.wait_for(mail, MAIL_TIMEOUT)
    found = PEER_CODE.search(text)
    if not found:
        raise Failed("no code in the email")
    _, location, _ = await browser.fetch("POST", "/accounts/login/code/confirm/", 302, {
        "csrfmiddlewaretoken": browser.csrf(), "code": found.group(1)})
    if location != "/":
        raise Failed(f"code sent to {location}")
    await browser.fetch("GET", "/", 200)
    return arrived - asked


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    journey = portal_journey if args.system == "portal" else peer_journey
    domain = "bench.example" if args.system == "portal" else "peer.example"
    prefix = "b" if args.system == "portal" else "p"
    client = aioredis.Redis.from_url(args.redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    mailbox = Mailbox()
    listener = asyncio.create_task(mailbox.listen(pubsub))
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    durations: list[float] = []
    email: list[float] = []
    failures: dict[str, int] = {}
    finished: list[float] = []
    origin = args.base.replace("http://", "https://")

    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        async def one(n: int) -> None:
            started = time.monotonic()
            browser = Browser(http, args.base, origin)
            try:
                latency = await journey(browser, mailbox, f"{prefix}{args.first + n}@{domain}")
            except (TimeoutError, Failed, aiohttp.ClientError) as error:
                kind = str(error) or type(error).__name__
                failures[kind] = failures.get(kind, 0) + 1
                return
            finished.append(time.monotonic())
            durations.append(finished[-1] - started)
            email.append(latency)

        tasks: set[asyncio.Task[None]] = set()
        total = int(args.rate * args.seconds)
        begin = time.monotonic()
        dropped = 0
        last_report = begin
        for n in range(total):
            due = begin + n / args.rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if len(tasks) >= MAX_IN_FLIGHT:
                dropped += 1
                continue
            task = asyncio.create_task(one(n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if args.progress and time.monotonic() - last_report >= 1:
                last_report = time.monotonic()
                print(f"\r    {args.system} {args.rate}/s: started {n + 1}/{total}, "
                      f"signed in {len(durations)}, waiting {len(tasks)}   ",
                      end="", file=sys.stderr, flush=True)
        window = time.monotonic() - begin
        if tasks:
            await asyncio.wait(tasks, timeout=args.drain)
        for task in list(tasks):
            task.cancel()
        if args.progress:
            print("\r" + " " * 78 + "\r", end="", file=sys.stderr, flush=True)
    listener.cancel()
    await pubsub.aclose()
    await client.aclose()
    # Finishing as fast as they were started means keeping up; finishing spread over longer
    # than the arrivals took means falling behind.
    spread = (max(finished) - min(finished)) if finished else window
    return {
        "system": args.system, "offered_per_s": args.rate, "seconds": args.seconds,
        "started": total - dropped, "dropped": dropped, "signed_in": len(durations),
        "failed": sum(failures.values()), "failures": failures,
        "unfinished": total - dropped - len(durations) - sum(failures.values()),
        "signed_in_per_s": len(durations) / max(spread, window),
        "journey_p50_s": percentile(durations, 0.50), "journey_p95_s": percentile(durations, 0.95),
        "journey_p99_s": percentile(durations, 0.99),
        "email_p50_s": percentile(email, 0.50), "email_p95_s": percentile(email, 0.95),
        "email_p99_s": percentile(email, 0.99), "email_max_s": max(email) if email else None,
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=["portal", "peer"], required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    args.rate = max(0.5, min(args.rate, 2000.0))
    args.seconds = max(1.0, min(args.seconds, 120.0))
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
