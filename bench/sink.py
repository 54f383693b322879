"""The benchmark's mail relay: an SMTP sink that tells the load driver what arrived, and when.

It accepts every message (aiosmtpd on loopback), keeps none, and publishes one JSON line per
recipient on the Redis channel ``bench:mail``: the address, the arrival time (``time.time()``,
the same clock the driver reads) and the plain-text body, from which the driver takes the
sign-in link or code. Both the portal's worker and the peer send here.

    python bench/sink.py --port 2525 --redis-url redis://127.0.0.1:6379/3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from email import message_from_bytes, policy
from typing import Any

import redis
from aiosmtpd.smtp import SMTP

CHANNEL = "bench:mail"


class Publisher:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrived = time.time()
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        for rcpt in envelope.rcpt_tos:
            self.client.publish(CHANNEL, json.dumps({"to": rcpt.lower(), "t": arrived,
                                                     "text": text}))
        self.count += 1
        return "250 2.0.0 OK"


async def serve(port: int, redis_url: str) -> None:
    handler = Publisher(redis.Redis.from_url(redis_url))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="bench-sink"),
                                      host="127.0.0.1", port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    print(f"sink stopped after {handler.count} messages", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.redis_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
