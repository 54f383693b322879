"""The link secret and code of one sign-in request are the same on every attempt (decision 0008).

A worker that dies after the relay accepted an email leaves it to be sent again; both copies
must carry one working link and one code. They are derived from a random seed stored at the
first render, under keys derived from SECRET_KEY, so the database alone still yields nothing.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils.crypto import salted_hmac

from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.mail.worker import deliver_due
from portal.signin import tokens
from portal.signin.models import SignInRequest
from tests.signin.magic import CODE, LINK, ask, deliver_and_read, text_of
from tests.support.smtp import Received, SMTPServer

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"


def code_of(received: Received) -> str:
    match = CODE.search(text_of(received))
    assert match, "no code in the email"
    return match.group(1) + match.group(2)


def token_of(received: Received) -> str:
    match = LINK.search(text_of(received))
    assert match, "no link in the email"
    return match.group(1)


def left_by_a_dead_worker(message: OutboundMessage | None) -> None:
    """Put ``message`` back as a worker that died before recording ``sent`` leaves it."""
    assert message is not None
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=OutboundMessage.Status.SENDING, claimed_by="host-a:4242:dead",
        claimed_until=now() - timedelta(seconds=1), sent_at=None)


def send_twice(smtp: SMTPServer) -> list[Received]:
    """Deliver the queued email, then again as if the first worker died before recording it."""
    deliver_due()
    smtp.wait_for(1)
    left_by_a_dead_worker(SignInRequest.objects.get().message)
    deliver_due()
    return smtp.wait_for(2)


def test_a_second_copy_carries_the_same_link_code_and_message_id(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    first, second = send_twice(smtp)
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert text_of(first) == text_of(second)
    assert token_of(first) == token_of(second)
    assert code_of(first) == code_of(second)
    # The link of the first copy is the one that works.
    assert browser.get(f"/signin/link/{token_of(first)}/").status_code == 302
    assert browser.get("/").wsgi_request.user.email == ALICE


def test_a_second_copy_does_not_give_back_wrong_code_tries(alice, smtp) -> None:
    # NIST SP 800-63B-4: issuing the secret again must not reset the count of failed tries.
    browser = Client()
    ask(browser, ALICE)
    first = deliver_and_read(smtp)[0].email
    wrong = "000000" if code_of(first) != "000000" else "111111"
    for _ in range(3):
        assert browser.post("/signin/code/", {"code": wrong}).status_code == 400
    left_by_a_dead_worker(SignInRequest.objects.get().message)
    deliver_due()
    second = smtp.wait_for(2)[1]
    assert code_of(second) == code_of(first)
    assert SignInRequest.objects.get().code_attempts == 3
    page = browser.post("/signin/code/", {"code": wrong}).content.decode()
    assert "You have 1 try left." in page
    assert browser.post("/signin/code/", {"code": code_of(second)}).status_code == 302
    assert browser.get("/").wsgi_request.user.email == ALICE


def test_the_stored_seed_is_useless_without_the_secret_key(alice, smtp, settings) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    code = code_of(link.email)
    sign_in = SignInRequest.objects.get()
    seed = sign_in.link_seed
    assert len(seed) == 64
    # With the right key the seed gives back what was sent and what is stored ...
    assert tokens.token_from_seed(seed) == link.token
    assert tokens.code_from_seed(seed) == code
    # ... but the seed is neither the secret nor a plain hash of it, and whoever holds a copy
    # of the database without SECRET_KEY derives something else: no link, no code.
    assert link.token not in (seed, hashlib.sha256(seed.encode()).hexdigest())
    original_code_bytes = tokens._from_seed(tokens._LINK_CODE_SALT, seed)
    settings.SECRET_KEY = "a-copy-of-the-database-without-the-key-" + "x" * 20
    guessed = tokens.token_from_seed(seed)
    assert guessed != link.token
    assert tokens.hash_token(guessed) != sign_in.token_hash
    # (The code is compared before its reduction to six digits: two keys may share a code.)
    assert tokens._from_seed(tokens._LINK_CODE_SALT, seed) != original_code_bytes
    # The secret itself is in no table (the seed is, and only it).
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            assert link.token not in repr(cursor.fetchall()), table


def test_link_and_code_come_from_separate_keys(settings) -> None:
    seed = tokens.generate_seed()
    token, code = tokens.token_from_seed(seed), tokens.code_from_seed(seed)
    assert tokens.looks_like_token(token)
    assert re.fullmatch(r"[0-9]{6}", code)
    # Each derivation has its own purpose string, so its own key: the code is not a function
    # of the link secret, and neither key is the one that stores codes (tokens.hmac_code).
    token_bytes = tokens._from_seed(tokens._LINK_TOKEN_SALT, seed)
    code_bytes = tokens._from_seed(tokens._LINK_CODE_SALT, seed)
    stored_code_key = salted_hmac(tokens._CODE_KEY_SALT, seed, algorithm="sha256").digest()
    assert len({token_bytes, code_bytes, stored_code_key}) == 3
    settings.SECRET_KEY = "another-secret-" + "y" * 50
    assert tokens.token_from_seed(seed) != token


def test_seeds_are_random_and_derive_well_spread_secrets() -> None:
    seeds = {tokens.generate_seed() for _ in range(200)}
    assert len(seeds) == 200
    secrets_ = {tokens.token_from_seed(seed) for seed in seeds}
    assert len(secrets_) == 200
    assert all(tokens.looks_like_token(secret) for secret in secrets_)
    codes = {tokens.code_from_seed(seed) for seed in seeds}
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
    assert len(codes) > 150


@pytest.mark.parametrize("seed", ["", "0" * 63, "G" * 64, "a" * 65])
def test_no_secret_is_derived_from_an_empty_or_malformed_seed(seed: str) -> None:
    # An empty seed (a row the first render never reached) would give every such request
    # one and the same link.
    with pytest.raises(ValueError):
        tokens.token_from_seed(seed)
    with pytest.raises(ValueError):
        tokens.code_from_seed(seed)
