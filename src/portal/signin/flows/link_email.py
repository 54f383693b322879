"""The sign-in link email, rendered by the mail worker at send time (rules 1, 2, 3, 5).

The worker, not the web request, decides whether an address gets a link: that is what
makes the web response identical for every address. The secret and the short code are
derived here, just before the SMTP conversation, from a random seed drawn at the first
attempt (so a retried email carries the same ones); only the seed, the secret's hash and
the code's HMAC are stored, and the rendered body lives in memory until it is handed to
the relay.

The worker may render a batch of these emails at once (``render_many``: the sign-in
requests locked in one query, the people looked up in another, the secrets stored in a
third) and record a batch's deliveries at once (``delivered_many``); each decision is the
one ``render`` and ``delivered`` make for a single email.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import strip_spaces_between_tags

from portal.accounts.models import User
from portal.accounts.services import eligibility, find_users
from portal.audit.services import event as audit_event
from portal.audit.services import record_event, record_events
from portal.audit.tags import Tag
from portal.core.bulk import update_each
from portal.core.clock import now
from portal.core.http import describe_agent
from portal.core.moments import format_moment, zone_for
from portal.mail.models import OutboundMessage
from portal.mail.renderers import Cancel, Rendered
from portal.signin import tokens
from portal.signin.errors import LinkExpired
from portal.signin.flows.magic_link import MIN_LIFE_ON_SEND
from portal.signin.models import SignInRequest, SignInRequestQuerySet

# What ``render`` learnt, kept on the message object the worker hands to ``delivered`` and
# ``failed`` of the same attempt, so they write their row and audit row without reading
# the request again: (request id, address, person with their organization loaded).
_FACTS = "_signin_link_facts"


def _requests_of(message: OutboundMessage) -> SignInRequestQuerySet:
    # Requests name their message; messages queued before that (payload only) still work.
    pk = message.payload.get("sign_in_request")
    return SignInRequest.objects.filter(pk=pk) if pk else SignInRequest.objects.filter(
        message_id=message.pk)


def _requests_for(messages: Sequence[OutboundMessage],
                  queryset: SignInRequestQuerySet) -> dict[int, SignInRequest]:
    """Return the sign-in request of each message, by message id, in one query (id order).

    Requests name their message; messages queued before that carry the request's id in
    their payload, and are still found.
    """
    by_payload = {message.payload.get("sign_in_request"): message.pk for message in messages
                  if message.payload.get("sign_in_request")}
    ids = [message.pk for message in messages]
    found: dict[int, SignInRequest] = {}
    for sign_in in queryset.filter(Q(message_id__in=ids) | Q(pk__in=list(by_payload))
                                   ).order_by("pk"):
        message_pk = sign_in.message_id if sign_in.message_id in ids else by_payload.get(
            sign_in.pk)
        if message_pk is not None:
            found[message_pk] = sign_in
    return found


def _sign_in_of(message: OutboundMessage) -> SignInRequest:
    sign_in = _requests_of(message).select_for_update().first()
    if sign_in is None:
        raise Cancel("sign_in_request_missing")
    return sign_in


def _facts_of(message: OutboundMessage) -> tuple[int, str, User | None]:
    facts: tuple[int, str, User | None] | None = getattr(message, _FACTS, None)
    if facts is None:  # not rendered by this process (the hooks are called alone)
        sign_in = _requests_of(message).with_person().first()
        if sign_in is None:
            raise Cancel("sign_in_request_missing")
        facts = (sign_in.pk, sign_in.email, sign_in.user)
    return facts


def _secrets_of(sign_in: SignInRequest) -> tuple[str, str]:
    """Return the link secret and code of ``sign_in``, the same on every attempt.

    The first render draws the seed; every later one (a retry after a 451, a relay outage,
    a worker that died, perhaps after the relay had the first copy) derives the same link
    and code from it, so a second copy works like the first (decision 0008). Only the
    secret's SHA-256 and the code's HMAC are stored beside the seed, which is useless
    without SECRET_KEY (rule 3, rule 11). The code's failed tries are left as they are: a
    re-sent code must not buy a guesser five more (NIST SP 800-63B-4).
    """
    if not sign_in.link_seed:
        sign_in.link_seed = tokens.generate_seed()
    token = tokens.token_from_seed(sign_in.link_seed)
    code = tokens.code_from_seed(sign_in.link_seed)
    # Rewritten each time so they always match what is sent, even after a SECRET_KEY
    # rotation (then an earlier copy's link and code stop working).
    sign_in.token_hash = tokens.hash_token(token)
    sign_in.code_hmac = tokens.hmac_code(sign_in.pk, code)
    return token, code


# Requests of emails rendered and not yet delivered that one worker process keeps.
RENDERED_KEPT = 1000


class LinkEmail:
    """Renderer registered as ``signin.link`` (see ``portal.mail.renderers``)."""

    def render(self, message: OutboundMessage) -> Rendered:
        # Refusals are recorded and committed first, then raised: raising inside the
        # atomic block would roll back the very record of why nothing was sent.
        with transaction.atomic():
            sign_in = _sign_in_of(message)
            refusal = self._refusal(sign_in)
            if refusal is None:
                token, code = _secrets_of(sign_in)
                sign_in.save(update_fields=["link_seed", "token_hash", "code_hmac", "user"])
                setattr(message, _FACTS, (sign_in.pk, sign_in.email, sign_in.user))
        if refusal is not None:
            raise refusal
        return render_link_email(sign_in, token, code)

    def prepare(self) -> None:
        _templates()

    def render_many(self, messages: Sequence[OutboundMessage]) -> dict[int, Rendered | Cancel]:
        """``render`` for several messages, in the worker's transaction, in three queries.

        The sign-in requests are locked in id order (so two workers never wait on each
        other in a circle), the people looked up together, and the secrets of every
        request that gets a link stored in one statement; refusals are recorded as
        ``render`` records them, each before its ``Cancel`` is returned.
        """
        found = _requests_for(messages, SignInRequest.objects.select_for_update())
        people = find_users([sign_in.email for sign_in in found.values()])
        results: dict[int, Rendered | Cancel] = {}
        minted: list[tuple[int, SignInRequest, str, str]] = []
        for message in messages:
            message_pk = message.pk
            sign_in = found.get(message_pk)
            if sign_in is None:
                results[message_pk] = Cancel("sign_in_request_missing")
                continue
            refusal = self._refusal(sign_in, people)
            if refusal is not None:
                results[message_pk] = refusal
                continue
            token, code = _secrets_of(sign_in)
            minted.append((message_pk, sign_in, token, code))
        update_each([sign_in for _, sign_in, _, _ in minted],
                    ["link_seed", "token_hash", "code_hmac", "user"])
        for message_pk, sign_in, token, code in minted:
            results[message_pk] = render_link_email(sign_in, token, code)
            self._remember(message_pk, sign_in)
        return results

    def _remember(self, message_pk: int, sign_in: SignInRequest) -> None:
        """Keep the request a rendered email belongs to for ``delivered_many`` (bounded)."""
        cache = self.__dict__.setdefault("_rendered", {})
        if len(cache) >= RENDERED_KEPT:
            cache.clear()  # emails rendered long ago and never delivered: looked up again
        cache[message_pk] = sign_in

    @staticmethod
    def _refusal(sign_in: SignInRequest, people: dict[str, Any] | None = None) -> Cancel | None:
        """Say why ``sign_in`` gets no link (recording it), or None if it gets one.

        ``people`` are the people of a batch when the caller looked them up already
        (``find_users``, by address); by default the address is looked up here.
        """
        # Judged as of the moment the link would have a minute of life left: one that
        # could only arrive dead is not sent (rule 5).
        problem = sign_in.problem(now() + MIN_LIFE_ON_SEND)
        if isinstance(problem, LinkExpired):
            record_event(Tag.LINK_EXPIRED_UNSENT, email=sign_in.email,
                         reason="queued_too_long", sign_in_request=sign_in.pk)
            return Cancel("expired", expired=True)
        if problem is not None:
            return Cancel(problem.kind)  # used, replaced or revoked while it waited
        verdict = (eligibility(sign_in.email, "email") if people is None
                   else eligibility(sign_in.email, "email", user=people.get(sign_in.email)))
        sign_in.user = verdict.user
        if not verdict.allowed:
            # Rule 2: no link. The inbox owner hears nothing; the asker saw the same page.
            sign_in.delivery = SignInRequest.Delivery.DECLINED
            sign_in.decline_reason = verdict.reason
            sign_in.save(update_fields=["delivery", "decline_reason", "user"])
            record_event(Tag.LINK_DECLINED, email=sign_in.email, user=verdict.user,
                         organization=verdict.organization, reason=verdict.reason,
                         sign_in_request=sign_in.pk)
            return Cancel(verdict.reason)
        return None

    def delivered(self, message: OutboundMessage) -> None:
        pk, email, user = _facts_of(message)
        with transaction.atomic():
            SignInRequest.objects.filter(pk=pk).update(
                delivery=SignInRequest.Delivery.SENT, sent_at=now())
            record_event(Tag.LINK_SENT, email=email, user=user, sign_in_request=pk,
                         message_id=message.message_id)

    def delivered_many(self, messages: Sequence[OutboundMessage]) -> None:
        """``delivered`` for a batch: one update of the requests, one insert of the events."""
        cache = self.__dict__.get("_rendered", {})
        found: dict[int, SignInRequest] = {}
        for message in messages:
            sign_in = cache.pop(message.pk, None)
            if sign_in is not None:
                found[message.pk] = sign_in  # rendered by this process, person loaded
        missing = [message for message in messages if message.pk not in found]
        if missing:
            found.update(_requests_for(missing, SignInRequest.objects.select_related(
                "user__membership__organization")))
        moment = now()
        SignInRequest.objects.filter(pk__in=[s.pk for s in found.values()]).update(
            delivery=SignInRequest.Delivery.SENT, sent_at=moment)
        events = []
        for message in messages:
            sign_in = found.get(message.pk)
            if sign_in is None:
                continue
            events.append(audit_event(Tag.LINK_SENT, email=sign_in.email, user=sign_in.user,
                                    sign_in_request=sign_in.pk,
                                    message_id=message.message_id))
        record_events(*events)

    def expired(self, message: OutboundMessage) -> None:
        sign_in = _sign_in_of(message)
        record_event(Tag.LINK_EXPIRED_UNSENT, email=sign_in.email, reason="queued_too_long",
                     sign_in_request=sign_in.pk)

    def failed(self, message: OutboundMessage, error: str) -> None:
        pk, email, user = _facts_of(message)
        with transaction.atomic():
            SignInRequest.objects.filter(pk=pk).update(
                delivery=SignInRequest.Delivery.UNDELIVERED)
            record_event(Tag.LINK_DELIVERY_FAILED, email=email, user=user,
                         reason="delivery_failed", sign_in_request=pk, error=error[:500])


def render_link_email(sign_in: SignInRequest, token: str, code: str) -> Rendered:
    brand = settings.PORTAL_BRAND
    # Times in the recipient's own zone (theirs, else their organization's, else UTC).
    zone = zone_for(sign_in.user)
    link = settings.PORTAL_BASE_URL + reverse("signin:link", args=[token])
    context = {
        "brand": brand,
        "link": link,
        # Grouped in threes ("123 456"): easier to read and to type; the form accepts both.
        "code": f"{code[:3]} {code[3:]}",
        "email": sign_in.email,
        "expires_at": format_moment(sign_in.expires_at, zone),
        "minutes": round((sign_in.expires_at - sign_in.created_at) / timedelta(minutes=1)),
        "requested_at": format_moment(sign_in.created_at, zone),
        "requested_from": describe_agent(sign_in.user_agent),
        "requested_ip": sign_in.ip or "an unknown address",
        "from_email": settings.DEFAULT_FROM_EMAIL,
    }
    text, html = _templates()
    return Rendered(
        subject=f"Your {brand} sign-in link",
        text=text.render(context),
        html=strip_spaces_between_tags(html.render(context)),
    )


@cache
def _templates() -> tuple[Any, Any]:
    """The email's two templates, compiled once per process (the worker's ``prepare``)."""
    return get_template("signin/email/link.txt"), get_template("signin/email/link.html")
