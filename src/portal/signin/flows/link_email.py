"""The sign-in link email, rendered by the mail worker at send time (rules 1, 2, 3, 5).

The worker, not the web request, decides whether an address gets a link: that is what
makes the web response identical for every address. The secret and the short code are
derived here, just before the SMTP conversation, from a random seed drawn at the first
attempt (so a retried email carries the same ones); only the seed, the secret's hash and
the code's HMAC are stored, and the rendered body lives in memory until it is handed to
the relay.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import strip_spaces_between_tags

from portal.accounts.models import User
from portal.accounts.services import eligibility
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.http import describe_agent
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

    @staticmethod
    def _refusal(sign_in: SignInRequest) -> Cancel | None:
        # Judged as of the moment the link would have a minute of life left: one that
        # could only arrive dead is not sent (rule 5).
        problem = sign_in.problem(now() + MIN_LIFE_ON_SEND)
        if isinstance(problem, LinkExpired):
            record_event(Tag.LINK_EXPIRED_UNSENT, email=sign_in.email,
                         reason="queued_too_long", sign_in_request=sign_in.pk)
            return Cancel("expired", expired=True)
        if problem is not None:
            return Cancel(problem.kind)  # used, replaced or revoked while it waited
        verdict = eligibility(sign_in.email, "email")
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
    link = settings.PORTAL_BASE_URL + reverse("signin:link", args=[token])
    context = {
        "brand": brand,
        "link": link,
        # Grouped in threes ("123 456"): easier to read and to type; the form accepts both.
        "code": f"{code[:3]} {code[3:]}",
        "email": sign_in.email,
        "expires_at": sign_in.expires_at,
        "minutes": round((sign_in.expires_at - sign_in.created_at) / timedelta(minutes=1)),
        "requested_at": sign_in.created_at,
        "requested_from": describe_agent(sign_in.user_agent),
        "requested_ip": sign_in.ip or "an unknown address",
        "from_email": settings.DEFAULT_FROM_EMAIL,
    }
    return Rendered(
        subject=f"Your {brand} sign-in link",
        text=render_to_string("signin/email/link.txt", context),
        html=strip_spaces_between_tags(render_to_string("signin/email/link.html", context)),
    )
