"""Challenges (passkeys/challenges.py): bound to the session, single use, five minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from portal.passkeys import challenges
from portal.passkeys.errors import ChallengeExpired, ChallengeMissing
from tests.signin.magic import request_as, settle


def test_challenge_is_accepted_once() -> None:
    request = request_as(Client(), method="post")
    issued = challenges.issue(request, "signin")
    assert len(issued) == 32
    assert challenges.consume(request, "signin") == issued
    with pytest.raises(ChallengeMissing):
        challenges.consume(request, "signin")


def test_challenge_lives_five_minutes_and_no_longer() -> None:
    start = timezone.now()
    for waited, fresh in ((timedelta(minutes=5), True), (timedelta(minutes=5, seconds=1), False)):
        request = request_as(Client(), method="post")
        with time_machine.travel(start, tick=False):
            issued = challenges.issue(request, "signin")
        with time_machine.travel(start + waited, tick=False):
            if fresh:
                assert challenges.consume(request, "signin") == issued
            else:
                with pytest.raises(ChallengeExpired):
                    challenges.consume(request, "signin")
                # An expired challenge is gone too: the next try cannot revive it.
                with pytest.raises(ChallengeMissing):
                    challenges.consume(request, "signin")


@pytest.mark.django_db
def test_challenge_belongs_to_the_session_that_asked() -> None:
    asking, other = Client(), Client()
    request = request_as(asking, method="post")
    challenges.issue(request, "signin")
    settle(asking, request)
    with pytest.raises(ChallengeMissing):
        challenges.consume(request_as(other, method="post"), "signin")
    # The asking browser, on its next request, still has it.
    assert challenges.consume(request_as(asking, method="post"), "signin")


def test_challenges_of_the_two_ceremonies_are_kept_apart() -> None:
    request = request_as(Client(), method="post")
    registering = challenges.issue(request, "register")
    with pytest.raises(ChallengeMissing):
        challenges.consume(request, "signin")
    assert challenges.consume(request, "register") == registering


def test_a_new_challenge_replaces_the_waiting_one() -> None:
    request = request_as(Client(), method="post")
    first = challenges.issue(request, "signin")
    second = challenges.issue(request, "signin")
    assert first != second
    assert challenges.consume(request, "signin") == second
