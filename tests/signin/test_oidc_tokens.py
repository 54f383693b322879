"""The ID-token validator, with tokens signed here by joserfc: every check must bite."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from portal.signin.oidc.id_token import Expected, TokenCheckFailed, validate_id_token

ISSUER = "https://accounts.example"
TEMPLATE = "https://login.example/{tenantid}/v2.0"
TENANT = "6f1c2e3a-0b4d-4e5f-8a9b-1c2d3e4f5a6b"
CLIENT = "portal-client"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_800_000_000

KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1", "alg": "RS256", "use": "sig"})
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "key-2", "alg": "RS256", "use": "sig"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "key-x", "alg": "RS256"})


def jwks(*keys: RSAKey) -> dict[str, Any]:
    return KeySet(list(keys)).as_dict(private=False)


class Loader:
    """A JWKS loader that serves ``before`` until refreshed, then ``after``; counts calls."""

    def __init__(self, before: dict[str, Any], after: dict[str, Any] | None = None) -> None:
        self.before, self.after = before, after or before
        self.refreshes = 0

    def __call__(self, refresh: bool) -> dict[str, Any]:
        if refresh:
            self.refreshes += 1
            return self.after
        return self.before


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": CLIENT, "sub": "248289761001", "iat": NOW - 5,
            "exp": NOW + 3600, "nonce": NONCE, "email": "alice@northwind.example"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, alg: str = "RS256") -> str:
    header = {"alg": alg, "typ": "JWT"}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return jwt.encode(header, payload, key, algorithms=[alg])


def check(token: str, *, loader: Loader | None = None, now: float = NOW,
          issuer: str = ISSUER, nonce: str = NONCE, aliases: tuple[str, ...] = ()) -> dict:
    expected = Expected(issuer=issuer, client_id=CLIENT, nonce=nonce, also_issuers=aliases)
    return validate_id_token(token, keys=loader or Loader(jwks(KEY)), expected=expected,
                             now=now)


def refused(check_name: str, token: str, **kwargs: Any) -> None:
    with pytest.raises(TokenCheckFailed) as failed:
        check(token, **kwargs)
    assert failed.value.check == check_name


def test_a_well_formed_token_is_accepted() -> None:
    assert check(sign(claims()))["email"] == "alice@northwind.example"


def test_a_token_signed_by_an_unknown_key_is_refused_after_one_refetch() -> None:
    loader = Loader(jwks(KEY))
    refused("unknown_key", sign(claims(), STRANGER), loader=loader)
    assert loader.refreshes == 1


def test_a_rotated_key_is_found_by_refetching_the_jwks_once() -> None:
    loader = Loader(jwks(KEY), jwks(KEY, ROTATED))
    assert check(sign(claims(), ROTATED), loader=loader)["sub"] == "248289761001"
    assert loader.refreshes == 1


def test_a_known_kid_does_not_refetch_the_jwks() -> None:
    loader = Loader(jwks(KEY))
    check(sign(claims()), loader=loader)
    assert loader.refreshes == 0


def test_a_token_claiming_a_known_kid_but_signed_by_another_key_is_refused() -> None:
    impostor = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    refused("bad_signature", sign(claims(), impostor))


def test_an_edited_payload_breaks_the_signature() -> None:
    header, _, signature = sign(claims()).split(".")
    forged = jwt.encode({"alg": "RS256", "kid": "key-1"}, claims(sub="someone-else"),
                        STRANGER).split(".")[1]
    refused("bad_signature", f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_symmetric_and_unsigned_algorithms_are_refused(alg: str) -> None:
    if alg == "none":
        import base64
        import json

        def part(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        token = f"{part({'alg': 'none', 'kid': 'key-1'})}.{part(claims())}."
    else:
        # The classic confusion: sign with HMAC, using something public as the secret.
        token = sign(claims(), OctKey.import_key("public-jwks-as-secret-" * 2), alg="HS256")
    refused("bad_algorithm", token)


def test_es256_tokens_from_an_ec_key_in_the_jwks_are_accepted() -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    loader = Loader(KeySet([ec]).as_dict(private=False))
    assert check(sign(claims(), ec, alg="ES256"), loader=loader)["sub"]


def test_wrong_audience_is_refused() -> None:
    refused("wrong_audience", sign(claims(aud="someone-elses-client")))


def test_several_audiences_need_us_as_authorized_party() -> None:
    refused("wrong_audience", sign(claims(aud=[CLIENT, "other"])))
    refused("wrong_audience", sign(claims(aud=[CLIENT, "other"], azp="other")))
    assert check(sign(claims(aud=[CLIENT, "other"], azp=CLIENT)))


def test_an_azp_naming_another_client_is_refused() -> None:
    refused("wrong_audience", sign(claims(azp="other")))


def test_expiry_allows_sixty_seconds_of_clock_skew_and_no_more() -> None:
    token = sign(claims(exp=NOW - 60))
    assert check(token, now=NOW - 1)
    refused("expired", token, now=NOW)


def test_an_expired_token_is_refused() -> None:
    refused("expired", sign(claims(iat=NOW - 7200, exp=NOW - 3600)))


def test_a_token_issued_in_the_future_is_refused() -> None:
    refused("issued_in_future", sign(claims(iat=NOW + 61)))
    assert check(sign(claims(iat=NOW + 60)))


def test_a_token_not_yet_valid_is_refused() -> None:
    refused("not_yet_valid", sign(claims(nbf=NOW + 120)))


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_a_token_without_times_is_refused(missing: str) -> None:
    refused("malformed", sign(claims(**{missing: None})))


def test_wrong_issuer_is_refused() -> None:
    refused("wrong_issuer", sign(claims(iss="https://evil.example")))


def test_an_issuer_alias_is_accepted_only_when_listed() -> None:
    token = sign(claims(iss="accounts.example"))
    refused("wrong_issuer", token)
    assert check(token, aliases=("accounts.example",))


def test_the_tenant_template_is_filled_with_the_tokens_own_tid() -> None:
    good = sign(claims(iss=f"https://login.example/{TENANT}/v2.0", tid=TENANT))
    assert check(good, issuer=TEMPLATE)["tid"] == TENANT


def test_a_tid_that_differs_from_the_issuers_tenant_is_refused() -> None:
    other = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
    refused("wrong_issuer", sign(claims(iss=f"https://login.example/{TENANT}/v2.0", tid=other)),
            issuer=TEMPLATE)


@pytest.mark.parametrize("tid", [None, "not-a-guid", "../../evil.example", TENANT.upper() + "x"])
def test_a_missing_or_odd_tid_cannot_fill_the_template(tid: str | None) -> None:
    refused("wrong_issuer", sign(claims(iss=f"https://login.example/{tid}/v2.0", tid=tid)),
            issuer=TEMPLATE)


def test_a_template_issuer_is_never_accepted_literally() -> None:
    refused("wrong_issuer", sign(claims(iss=TEMPLATE, tid=TENANT)), issuer=TEMPLATE)


def test_a_bad_nonce_is_refused() -> None:
    refused("nonce_mismatch", sign(claims(nonce="someone-elses-nonce")))


def test_a_missing_nonce_is_refused() -> None:
    refused("nonce_mismatch", sign(claims(nonce=None)))


def test_a_token_without_subject_is_refused() -> None:
    refused("malformed", sign(claims(sub=None)))


@pytest.mark.parametrize("raw", ["", "abc", "a.b", "####.####.####", "e30.e30.e30"])
def test_garbage_is_refused_as_malformed(raw: str) -> None:
    with pytest.raises(TokenCheckFailed) as failed:
        check(raw)
    assert failed.value.check in ("malformed", "bad_algorithm")


def test_the_real_clock_is_not_consulted() -> None:
    # The flow passes portal.core.clock.now(); the validator must use only what it is given.
    token = sign(claims(iat=int(time.time()) - 10, exp=int(time.time()) + 3600))
    refused("issued_in_future", token, now=time.time() - 86400)
