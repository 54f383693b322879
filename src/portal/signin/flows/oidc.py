"""Sign in with Google / Microsoft: from the button to a signed-in session.

``begin`` adds a fresh ``state``, ``nonce`` and PKCE verifier to this browser's pending
sign-ins (a signed cookie, ``portal.signin.oidc.pending``; nothing is stored on the server)
and returns the provider's authorization URL. ``complete`` takes the callback: it checks
the state belongs to this browser (and uses it up), trades the code for tokens, validates
the ID token, applies the provider's rules and the organization's policy, links the
external identity and ends in ``finish_sign_in``, the one exit of every way in. Every
refusal is a ``FederationError`` with a reason for the audit trail and a sentence for the
person; each one is recorded here (at most a bounded number per IP, see
``_record_failure``).

Transaction shape of a callback: first every network call (discovery, token endpoint,
JWKS), outside any transaction; then one ``transaction.atomic`` block that joins the
organization (auto-join), links the identity and calls ``finish_sign_in`` (session key
cycled once, previous session row ended, links revoked, audit row, session row). Either
all of it commits or none of it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from portal.accounts.models import (
    GoogleWorkspaceDomain,
    MicrosoftTenant,
    Organization,
    OrganizationDomain,
    User,
    domain_of,
)
from portal.accounts.services import (
    Eligibility,
    InvalidEmail,
    clean_email,
    eligibility,
    join_on_sign_in,
)
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.core.http import client_ip, safe_next
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import ExternalIdentity
from portal.signin.oidc import client as oidc_client
from portal.signin.oidc.errors import (
    AccountDisabled,
    ConsentBlocked,
    DomainNotRegistered,
    EmailNotVerified,
    FederationError,
    InvalidIdToken,
    MethodNotAllowed,
    MissingEmail,
    NotEligible,
    OrganizationDisabled,
    OrganizationMismatch,
    ProviderNotConfigured,
    ProviderRefused,
    SignInCancelled,
    SignInStoreUnavailable,
    SignInTooSlow,
    StaffUseEmailLink,
    StateMismatch,
    TenantNotRegistered,
    WorkspaceNotPinned,
)
from portal.signin.oidc.id_token import (
    Expected,
    TokenCheckFailed,
    resolve_issuer,
    validate_id_token,
)
from portal.signin.oidc.pending import PendingSignIn, PendingSignIns, mark_used, started_at, too_old
from portal.signin.oidc.providers import GOOGLE, LABELS, MICROSOFT, Provider, get_provider

# Google documents both spellings of its issuer; both mean the same account.
ISSUER_ALIASES = {"https://accounts.google.com": ("accounts.google.com",)}
# Error descriptions that mean "an administrator has not approved this app" (Entra ID):
# AADSTS65001 no consent yet, AADSTS90094/90095 admin consent required or requested.
CONSENT_CODES = ("AADSTS65001", "AADSTS90094", "AADSTS90095")
CONSENT_ERRORS = ("consent_required", "admin_policy_enforced")


@dataclass(frozen=True)
class Completed:
    """A finished federated sign-in."""

    user: User
    next_url: str
    provider: str
    linked: bool  # this sign-in linked the external identity for the first time
    joined: bool  # this sign-in made the person a member (auto-join)


@dataclass
class _Trace:
    """What we learned before a refusal, so its audit event names whom it concerned."""

    email: str = ""
    user: User | None = None
    organization: Organization | None = None
    next_url: str = "/"


def redirect_uri(provider_name: str) -> str:
    """Return the exact callback URL registered with the provider."""
    return settings.PORTAL_BASE_URL + reverse("signin:oidc_callback", args=[provider_name])


def _configured(name: str) -> Provider:
    provider = get_provider(name)
    if provider is None or not provider.configured:
        raise ProviderNotConfigured(LABELS.get(name, name))
    return provider


def _record_failure(request: HttpRequest, provider_name: str, error: FederationError,
                    trace: _Trace | None = None) -> None:
    """Write the refusal's audit row; from one IP, at most a bounded number per window.

    Refusals need no account and (since the pending sign-in lives in a cookie) store
    nothing else, so without a bound a script could write audit rows without end by
    fetching the start or callback URL. Within ``SIGNIN_RATE_LIMITS["oidc_failures_ip"]``
    each refusal is recorded; the first one past it says that later ones from this address
    are not, until the window ends. The refusal itself is the same either way.
    """
    trace = trace or _Trace()
    extra: dict[str, Any] = {}
    rate = ratelimit.Rate.parse(settings.SIGNIN_RATE_LIMITS["oidc_failures_ip"])
    # One more than the limit is admitted: that last row is the one saying "and no more".
    budget = ratelimit.Rate(rate.limit + 1, rate.window)
    try:
        decision = ratelimit.hit("oidc_failure_audit", client_ip(request), budget,
                                 metered=False)
    except ratelimit.RateLimitUnavailable:
        decision = None  # nothing to count with: record, as before the bound existed
    if decision is not None:
        if not decision.allowed:
            return
        if decision.count == budget.limit:
            extra["further_failures_unrecorded"] = True
    record_event(Tag.OIDC_FAILED, request=request, email=trace.email or error.email,
                 user=trace.user or error.user,
                 organization=trace.organization or error.organization,
                 reason=error.reason, provider=provider_name, **error.detail, **extra)


# --- begin ---------------------------------------------------------------------------------

def begin(request: HttpRequest, provider_name: str, next_url: str | None,
          pending: PendingSignIns) -> str:
    """Add a new sign-in to this browser's ``pending`` ones; return the provider's URL.

    Nothing is written on the server: the caller sends ``pending`` back in its cookie.
    """
    try:
        provider = _configured(provider_name)
        discovery = oidc_client.fetch_discovery(provider)
    except FederationError as error:
        error.next_url = safe_next(next_url)
        _record_failure(request, provider_name, error)
        raise
    entry = pending.start(provider.name, safe_next(next_url))
    return oidc_client.authorization_url(provider, discovery,
                                         redirect_uri=redirect_uri(provider.name),
                                         state=entry.state, nonce=entry.nonce,
                                         code_verifier=entry.verifier)


# --- complete ------------------------------------------------------------------------------

def complete(request: HttpRequest, provider_name: str, pending: PendingSignIns) -> Completed:
    """Finish the sign-in the provider sent back; return who signed in and where to go.

    The sign-in is taken out of ``pending`` whatever the outcome; the caller sends
    ``pending`` back in its cookie, so a reload of the callback finds nothing.
    """
    trace = _Trace()
    try:
        return _complete(request, provider_name, pending, trace)
    except FederationError as error:
        error.next_url = trace.next_url  # the sign-in page keeps where the person was going
        _record_failure(request, provider_name, error, trace)
        raise


def _complete(request: HttpRequest, provider_name: str, pending: PendingSignIns,
              trace: _Trace) -> Completed:
    provider = _configured(provider_name)
    entry = _take_pending(pending, provider, request.GET.get("state", ""))
    trace.next_url = safe_next(entry.next_url)
    error = request.GET.get("error", "")
    if error:
        raise _provider_refusal(provider, error, request.GET.get("error_description", ""))
    code = request.GET.get("code", "")
    if not code:
        raise ProviderRefused(provider.label, reason="no_code")
    discovery = oidc_client.fetch_discovery(provider)
    _check_response_issuer(provider, discovery, request.GET.get("iss"))
    tokens = oidc_client.exchange_code(provider, discovery, code=code,
                                       redirect_uri=redirect_uri(provider.name),
                                       code_verifier=entry.verifier)
    claims, issuer = _verified_claims(provider, discovery, tokens, entry.nonce)
    return _sign_in(request, provider, claims, issuer, trace.next_url, trace)


def _take_pending(pending: PendingSignIns, provider: Provider, state: str) -> PendingSignIn:
    """Return (and use up) the sign-in this browser started with ``state``.

    The entry leaves the pending sign-ins before anything else happens and the state is
    marked used, so a callback URL works once: reloading it, or replaying it later with a
    copy of the old cookie, finds nothing. A ``state`` this browser never issued (a
    login-CSRF attempt: someone else's code pushed into our callback) finds nothing too.
    """
    entry = pending.take(state)
    if entry is None or entry.provider != provider.name:
        started = started_at(state) if state else None
        # Our own state, but no cookie holds it any more: after ten minutes that is
        # most likely a person who took too long (the cookie expired), so say that.
        if started is not None and too_old(started):
            raise SignInTooSlow(provider.label)
        raise StateMismatch(provider.label, state_present=bool(state))
    if too_old(entry.started):
        raise SignInTooSlow(provider.label)
    try:
        first_use = mark_used(entry.state)
    except oidc_client.CACHE_ERRORS:
        raise SignInStoreUnavailable(provider.label) from None
    if not first_use:
        raise StateMismatch(provider.label, state_present=True, replayed=True)
    return entry


def _check_response_issuer(provider: Provider, discovery: dict[str, Any],
                           issuer: str | None) -> None:
    """Refuse a code that another provider issued (RFC 9207, the "mix-up" attack).

    Where the provider says it names itself in authorization responses, the name must be
    its own. Microsoft's multi-tenant issuer is a template, so there the ID token's issuer
    check (with the token's tenant) does this job.
    """
    template = str(discovery["issuer"])
    if not discovery.get("authorization_response_iss_parameter_supported"):
        return
    if "{tenantid}" in template:
        return
    if issuer != template:
        raise InvalidIdToken(provider.label, reason="response_wrong_issuer")


def _provider_refusal(provider: Provider, error: str, description: str) -> FederationError:
    detail = {"error": error[:64], "error_description": description[:200]}
    if error in CONSENT_ERRORS or any(code in description for code in CONSENT_CODES):
        return ConsentBlocked(provider.label, **detail)
    if error == "access_denied":
        return SignInCancelled(provider.label, **detail)
    return ProviderRefused(provider.label, **detail)


def _verified_claims(provider: Provider, discovery: dict[str, Any], tokens: dict[str, Any],
                     nonce: str) -> tuple[dict[str, Any], str]:
    """Validate the ID token; return its claims and the issuer to key the identity by."""
    raw = tokens.get("id_token")
    if not isinstance(raw, str):
        raise InvalidIdToken(provider.label, reason="id_token_missing")
    template = str(discovery["issuer"])
    expected = Expected(issuer=template, client_id=provider.client_id, nonce=nonce,
                        also_issuers=ISSUER_ALIASES.get(template, ()))

    def keys(refresh: bool) -> dict[str, Any]:
        return oidc_client.fetch_jwks(provider, str(discovery["jwks_uri"]), refresh=refresh)

    try:
        claims = validate_id_token(raw, keys=keys, expected=expected, now=now().timestamp())
        if provider.name == MICROSOFT:
            # Entra identities are keyed by tenant + object id; both must be there, and the
            # tenant must be a GUID even when discovery names one fixed tenant.
            resolve_issuer("{tenantid}", claims)
            if not isinstance(claims.get("oid"), str) or not claims["oid"]:
                raise TokenCheckFailed("malformed", "oid is missing")
    except TokenCheckFailed as failed:
        # The failed check's wording (times, the aud it saw) helps staff; it holds no secret.
        raise InvalidIdToken(provider.label, reason=f"id_token_{failed.check}",
                             check=str(failed)[:200]) from None
    # Aliases normalise to the discovery issuer, so one account never gets two keys.
    return claims, resolve_issuer(template, claims)


def _subject(provider: Provider, claims: dict[str, Any]) -> str:
    """Return the identity's subject; see docs/decisions/0003-oidc-identity-keys.md."""
    if provider.name == MICROSOFT:
        return f"{str(claims['tid']).lower()}:{claims['oid']}"
    return str(claims["sub"])


def _claimed_email(provider: Provider, claims: dict[str, Any]) -> str:
    raw = claims.get("email")
    if provider.name == MICROSOFT and not raw:
        # Work accounts without a mailbox carry only their UPN here.
        upn = claims.get("preferred_username")
        raw = upn if isinstance(upn, str) and "@" in upn else ""
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        return clean_email(raw)
    except InvalidEmail:
        return ""


def _email_verified(claims: dict[str, Any]) -> bool:
    value = claims.get("email_verified")
    return value is True or value == "true"


def _registered_tenant(provider: Provider, claims: dict[str, Any]) -> Organization:
    """Return the organization that registered this Entra tenant, or refuse.

    This runs before the token's ``email`` is looked at. Microsoft does not verify that
    claim: anyone who controls some tenant can put any address in it. Trusting it outside a
    tenant an organization registered is the nOAuth account takeover (CVE-2023-36871).
    """
    tid = str(claims["tid"]).lower()
    tenant = MicrosoftTenant.objects.select_related("organization").filter(tenant_id=tid).first()
    if tenant is None:
        raise TenantNotRegistered(provider.label, tid=tid)
    return tenant.organization


def _check_google_domain(provider: Provider, claims: dict[str, Any], email: str,
                         organization: Organization) -> None:
    """Require a Workspace account of ``organization``: by pinned ``hd`` or verified domain.

    Only the ``hd`` claim of the signed ID token counts; the ``hd`` request parameter is a
    hint anyone can edit. Without ``hd`` Google is not authoritative for a non-Gmail
    address (a consumer account can be made with any address and kept after leaving).
    An organization that pinned Workspace domains has named its Workspaces: a token from
    any other one is refused, whatever address it carries. Only an organization that
    pinned none is admitted by its verified email domains.
    """
    hd = claims.get("hd")
    if not isinstance(hd, str) or not hd:
        raise DomainNotRegistered(provider.label, reason="google_not_workspace")
    hd = hd.strip().lower()
    pinned = GoogleWorkspaceDomain.objects.filter(domain=hd).first()
    if pinned is not None:
        if pinned.organization_id != organization.pk:
            raise OrganizationMismatch(provider.label, hd=hd)
        return
    if GoogleWorkspaceDomain.objects.filter(organization=organization).exists():
        raise WorkspaceNotPinned(provider.label, hd=hd)
    if email and OrganizationDomain.objects.filter(
            organization=organization, domain=domain_of(email), verified=True).exists():
        return
    raise DomainNotRegistered(provider.label, hd=hd)


def _policy_refusal(provider: Provider, verdict: Eligibility, email: str) -> FederationError:
    if verdict.reason == "user_disabled":
        return AccountDisabled(provider.label)
    if verdict.reason == "organization_disabled":
        return OrganizationDisabled(provider.label)
    if verdict.reason == "method_not_allowed":
        return MethodNotAllowed(provider.label)
    if verdict.reason == "no_organization":
        return StaffUseEmailLink(provider.label, email=email)
    return NotEligible(provider.label, email=email, reason=verdict.reason)


def _sign_in(request: HttpRequest, provider: Provider, claims: dict[str, Any], issuer: str,
             next_url: str, trace: _Trace) -> Completed:
    claimed = _claimed_email(provider, claims)
    trace.email = claimed
    tenant_org: Organization | None = None
    if provider.name == GOOGLE and not _email_verified(claims):
        raise EmailNotVerified(provider.label)
    if provider.name == MICROSOFT:
        tenant_org = _registered_tenant(provider, claims)

    subject = _subject(provider, claims)
    # After the first sign-in the identity is found by (issuer, subject), never by email:
    # an address can change hands, the provider's account id does not.
    link = ExternalIdentity.objects.select_related("user").filter(
        issuer=issuer, subject=subject).first()
    if link is not None:
        email = link.user.email
        trace.user = link.user
    elif claimed:
        email = claimed
    else:
        raise MissingEmail(provider.label)
    trace.email = email

    verdict = eligibility(email, provider.name)
    trace.user = verdict.user or trace.user
    trace.organization = verdict.organization
    if not verdict.allowed:
        raise _policy_refusal(provider, verdict, email)
    organization = verdict.organization
    if organization is None:  # eligibility allows no one without an organization here
        raise StaffUseEmailLink(provider.label, email=email)
    if provider.name == GOOGLE:
        _check_google_domain(provider, claims, claimed, organization)
    elif tenant_org is not None and tenant_org.pk != organization.pk:
        raise OrganizationMismatch(provider.label, tid=str(claims["tid"]).lower())

    with transaction.atomic():
        user = verdict.user or join_on_sign_in(email, organization)
        identity, linked = ExternalIdentity.objects.get_or_create(
            issuer=issuer, subject=subject,
            defaults={"user": user, "provider": provider.name, "email_at_link": claimed})
        if identity.user_id != user.pk:
            # Only reachable if two first sign-ins of one account raced to different users.
            raise OrganizationMismatch(provider.label, reason="identity_conflict")
        identity.last_used_at = now()
        identity.save(update_fields=["last_used_at"])
        finish_sign_in(request, user, provider.name, event=Tag.OIDC_SUCCEEDED,
                       organization=organization, provider=provider.name, first_link=linked,
                       joined=verdict.joins)
    return Completed(user=user, next_url=next_url, provider=provider.name, linked=linked,
                     joined=verdict.joins)
