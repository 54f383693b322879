"""The two WebAuthn ceremonies, done by py_webauthn (decision 0013).

This is the only module that imports ``webauthn``: it builds the options the browser's
``navigator.credentials`` calls take, and verifies what comes back. Every check (origin,
RP id, challenge, user verification, signature, sign count) is the library's; this module
only says what to expect and turns the library's exceptions into ``PasskeyRejected``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.parse_authentication_credential_json import (
    parse_authentication_credential_json,
)
from webauthn.helpers.parse_registration_credential_json import (
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.passkeys import relying_party
from portal.passkeys.errors import PasskeyMalformed, PasskeyRejected

TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class NewCredential:
    credential_id: str  # base64url
    public_key: bytes
    sign_count: int
    backup_eligible: bool
    backup_state: bool
    transports: list[str]
    aaguid: str


@dataclass(frozen=True)
class Assertion:
    """A parsed, not yet verified, sign-in response."""

    credential_id: str
    user_handle: bytes | None
    parsed: AuthenticationCredential


@dataclass(frozen=True)
class Verified:
    sign_count: int
    backup_state: bool


def registration_options(*, challenge: bytes, handle: bytes, email: str, display_name: str,
                         existing: list[str]) -> str:
    """Return the JSON for ``navigator.credentials.create``: a discoverable credential, with
    user verification required, that is none of ``existing`` (base64url ids)."""
    options = generate_registration_options(
        rp_id=relying_party.rp_id(), rp_name=relying_party.rp_name(), user_name=email,
        user_id=handle, user_display_name=display_name or email, challenge=challenge,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(cid))
                             for cid in existing])
    return str(options_to_json(options))


def authentication_options(*, challenge: bytes) -> str:
    """Return the JSON for ``navigator.credentials.get``: no allow-list (discoverable
    credentials, so the page need not know who is signing in), user verification required."""
    options = generate_authentication_options(
        rp_id=relying_party.rp_id(), challenge=challenge, timeout=TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED)
    return str(options_to_json(options))


def verify_registration(raw: str, *, challenge: bytes) -> NewCredential:
    """Verify a ``credentials.create`` response; raise ``PasskeyMalformed``/``PasskeyRejected``."""
    credential = _parse(raw, parse_registration_credential_json)
    assert isinstance(credential, RegistrationCredential)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge,
            expected_rp_id=relying_party.rp_id(), expected_origin=relying_party.origin(),
            require_user_verification=True)
    except WebAuthnException as exc:
        raise PasskeyRejected(str(exc)) from None
    transports = [str(t.value) for t in (credential.response.transports or [])]
    return NewCredential(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up, transports=transports[:10],
        aaguid=str(verified.aaguid)[:36])


def parse_assertion(raw: str) -> Assertion:
    """Read a ``credentials.get`` response enough to find its passkey; verify nothing yet."""
    credential = _parse(raw, parse_authentication_credential_json)
    assert isinstance(credential, AuthenticationCredential)
    return Assertion(credential_id=bytes_to_base64url(credential.raw_id),
                     user_handle=credential.response.user_handle, parsed=credential)


def verify_assertion(assertion: Assertion, *, challenge: bytes, public_key: bytes,
                     sign_count: int) -> Verified:
    """Verify ``assertion`` against the stored key and counter; raise ``PasskeyRejected``."""
    try:
        verified = verify_authentication_response(
            credential=assertion.parsed, expected_challenge=challenge,
            expected_rp_id=relying_party.rp_id(), expected_origin=relying_party.origin(),
            credential_public_key=public_key, credential_current_sign_count=sign_count,
            require_user_verification=True)
    except WebAuthnException as exc:
        raise PasskeyRejected(str(exc)) from None
    return Verified(sign_count=verified.new_sign_count,
                    backup_state=verified.credential_backed_up)


def _parse(raw: str, parser: Any) -> object:
    try:
        json.loads(raw)
        return parser(raw)
    except (WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise PasskeyMalformed() from None

