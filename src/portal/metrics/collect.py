"""Read the figures ``/metrics`` shows, at scrape time, and shape them for Prometheus.

Two sources, one shape (``Counts``):

- counters (sign-ins by method and outcome, link requests, rate-limit refusals by limit,
  delivery outcomes and latency) from the Redis hash ``portal.metrics.counters`` keeps
  when ``REDIS_URL`` is set; otherwise from the tables the events leave behind: the audit
  trail (grouped by tag, one query on the indexed ``tag`` column) and the outbox. Those
  table reads grow with the history kept, which is fine on the one-machine embedded
  default and is why production counts in Redis (decision 0026);
- gauges (messages waiting by status, age of the oldest) always from the outbox, with the
  ``status`` index, as ``/healthz`` reads them.

The numbers never pass through process memory between scrapes, so every web process
answers the same figures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from portal.audit.models import AuthEvent
from portal.core.clock import now
from portal.core.health import WAITING
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.metrics import counters
from portal.metrics.counters import DELIVERY_BUCKETS, KEY, SEP

Status = OutboundMessage.Status
FINAL_STATUSES = (Status.SENT, Status.FAILED, Status.EXPIRED, Status.CANCELLED)


@dataclass
class Counts:
    """Every counter ``/metrics`` shows, whatever it was read from."""

    sign_ins: Counter[tuple[str, str]] = field(default_factory=Counter)  # (method, outcome)
    link_requests: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # limit name
    mail: Counter[str] = field(default_factory=Counter)  # outcome of a delivery run
    # Deliveries per latency bucket (upper bound as text, "+Inf" last), not cumulative.
    delivery_buckets: Counter[str] = field(default_factory=Counter)
    delivery_seconds: float = 0.0

    def add(self, name: str, value: float) -> None:
        """Add one field of the Redis hash (``counters.field``) to these counts."""
        family, *labels = name.split(SEP)
        if family == "sign_ins" and len(labels) == 2:
            self.sign_ins[(labels[0], labels[1])] += int(value)
        elif family == "link_requests":
            self.link_requests += int(value)
        elif family == "refusals" and labels:
            self.refusals[labels[0]] += int(value)
        elif family == "mail" and labels:
            self.mail[labels[0]] += int(value)
        elif family == "delivery_bucket" and labels:
            self.delivery_buckets[labels[0]] += int(value)
        elif family == "delivery_sum":
            self.delivery_seconds += value


@dataclass(frozen=True)
class Queue:
    """The outbox right now: messages waiting by status, and the oldest one's age."""

    waiting: dict[str, int]
    oldest: timedelta | None


class Unavailable(Exception):
    """Redis holds the counts and cannot be read: answer an error, not zeros."""


def counts_from_redis(client: redis.Redis) -> Counts:
    try:
        raw = client.hgetall(KEY)
    except redis.RedisError as exc:
        raise Unavailable(str(exc)) from exc
    counts = Counts()
    for name, value in raw.items():
        counts.add(name.decode() if isinstance(name, bytes) else str(name), float(value))
    return counts


def counts_from_tables() -> Counts:
    """Read the counters from the audit trail and the outbox (the embedded default).

    The same events as Redis would have counted, by the same rule
    (``counters.classify``), except that a rate limit's refusals are only those the
    audit trail kept: under a flood it keeps a bounded number of refusal rows.
    """
    counts = Counts()
    rows = (AuthEvent.objects.filter(tag__in=[t.value for t in counters.METERED_TAGS])
            .values("tag", method=KeyTextTransform("method", "detail"),
                    provider=KeyTextTransform("provider", "detail"),
                    stage=KeyTextTransform("stage", "detail"),
                    limit=KeyTextTransform("limit", "detail"))
            .order_by().annotate(n=Count("id")))
    for row in rows:
        name = counters.classify(row["tag"], row)
        if name is not None:
            counts.add(name, row["n"])
    by_status = (OutboundMessage.objects.filter(status__in=FINAL_STATUSES)
                 .values("status").order_by().annotate(n=Count("id")))
    for row in by_status:
        counts.mail[row["status"]] += row["n"]
    counts.mail["retrying"] += DeliveryAttempt.objects.filter(
        result=DeliveryAttempt.Result.TRANSIENT).count()
    latency = ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())
    sent = OutboundMessage.objects.filter(status=Status.SENT, sent_at__isnull=False)
    bounds = [0.0, *DELIVERY_BUCKETS]
    found = sent.aggregate(
        total=Sum(latency), all=Count("id"),
        **{f"b{i}": Count("id", filter=Q(sent_at__lte=F("created_at") + timedelta(
            seconds=bound))) for i, bound in enumerate(bounds[1:])})
    below = 0
    for i, bound in enumerate(bounds[1:]):
        within = found[f"b{i}"]
        counts.delivery_buckets[repr(bound)] = within - below
        below = within
    counts.delivery_buckets["+Inf"] = found["all"] - below
    total = found["total"]
    counts.delivery_seconds = total.total_seconds() if total is not None else 0.0
    return counts


def read_queue() -> Queue:
    rows = (OutboundMessage.objects.filter(status__in=WAITING).values("status").order_by()
            .annotate(n=Count("id"), oldest=Min("created_at")))
    waiting: dict[str, int] = {str(status): 0 for status in WAITING}
    oldest = None
    for row in rows:
        waiting[row["status"]] = row["n"]
        if row["oldest"] is not None and (oldest is None or row["oldest"] < oldest):
            oldest = row["oldest"]
    return Queue(waiting, None if oldest is None else max(now() - oldest, timedelta(0)))


def read_counts() -> Counts:
    client = counters.redis_client()
    return counts_from_redis(client) if client is not None else counts_from_tables()


def families(counts: Counts, queue: Queue) -> Iterator[Metric]:
    """Yield the metric families of ``counts`` and ``queue``, names and help as documented
    in docs/operations.md ("/metrics")."""
    sign_ins = CounterMetricFamily(
        "portal_sign_ins", "Sign-ins finished (success) and uses of a way in refused "
        "(failure), by method.", labels=["method", "outcome"])
    for (method, outcome), value in sorted(counts.sign_ins.items()):
        sign_ins.add_metric([method, outcome], value)
    yield sign_ins
    yield CounterMetricFamily("portal_link_requests", "Sign-in links asked for and "
                              "accepted (refused ones count as rate-limit refusals).",
                              value=counts.link_requests)
    refusals = CounterMetricFamily(
        "portal_rate_limit_refusals", "Attempts refused by a rate limit, by the limit that "
        "refused (the one whose wait is longest).", labels=["limit"])
    for limit, value in sorted(counts.refusals.items()):
        refusals.add_metric([limit], value)
    yield refusals
    mail = CounterMetricFamily(
        "portal_mail_deliveries", "Delivery runs of the worker, by outcome: sent, retrying "
        "(a temporary failure), failed (given up), expired, cancelled.", labels=["outcome"])
    for outcome in sorted(counters.MAIL_OUTCOMES):
        mail.add_metric([outcome], counts.mail.get(outcome, 0))
    yield mail
    cumulative, buckets = 0, []
    for bound in [*map(repr, DELIVERY_BUCKETS), "+Inf"]:
        cumulative += counts.delivery_buckets.get(bound, 0)
        buckets.append((bound, cumulative))
    yield HistogramMetricFamily(
        "portal_mail_delivery_seconds", "Time from an email's queueing to the relay "
        "accepting it.", buckets=buckets, sum_value=counts.delivery_seconds)
    waiting = GaugeMetricFamily("portal_outbox_waiting", "Emails waiting to be delivered, "
                                "by status.", labels=["status"])
    for status, value in sorted(queue.waiting.items()):
        waiting.add_metric([status], value)
    yield waiting
    oldest = queue.oldest.total_seconds() if queue.oldest is not None else 0.0
    yield GaugeMetricFamily("portal_outbox_oldest_waiting_seconds", "Age of the oldest "
                            "email still waiting to be delivered; 0 when none waits.",
                            value=oldest if math.isfinite(oldest) else 0.0)


class PortalCollector(Collector):
    """Read everything at scrape time; registered in a registry of its own per scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from families(read_counts(), read_queue())
