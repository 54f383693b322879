"""A `portal worker` killed (SIGKILL) at each step of a sign-in email, on PostgreSQL.

Whatever the step, the email arrives at least once. Only a worker killed after the relay's
``250`` and before ``sent`` is committed causes a second copy (SMTP cannot say it arrived);
that copy carries the same link, code and Message-ID as the first, and the link signs in.

Each step is reached for real: a row lock held from another connection stops the worker
where it next touches that row (as a slow transaction elsewhere would), and the test SMTP
server holds a command until released. PostgreSQL only, like the other process tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection
from django.test import Client

from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.signin import tokens
from portal.signin.models import SignInRequest
from tests.factories import make_org, make_user
from tests.signin.magic import CODE, LINK, ask, text_of
from tests.support.smtp import Received, SMTPServer
from tests.support.workers import Workers, wait_until

pytestmark = [pytest.mark.postgres]
Status = OutboundMessage.Status
ALICE = "alice@northwind.example"


@contextmanager
def row_locked(table: str, pk: int) -> Iterator[None]:
    """Hold ``FOR UPDATE`` on one row from a connection of its own until the block ends."""
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                         dbname=db["NAME"]) as other:
        other.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [pk])  # noqa: S608
        yield
        other.rollback()


def blocked_statements() -> dict[int, str]:
    """What other connections to the test database wait on a lock to run, by backend pid."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, query FROM pg_stat_activity "
                       "WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return dict(cursor.fetchall())


def runs_on_its_own(pid: int) -> bool:
    """True if the backend's transaction has touched no table but the outbox.

    An attempt row, an audit row or a read of the request before the UPDATE would hold a
    lock on its table until the transaction ends. (Comparing ``xact_start`` with
    ``query_start`` said the same with the simple query protocol, but a statement bound
    server-side starts its transaction at Parse and its query at Execute.)
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT COALESCE(i.indrelid, l.relation)::regclass::text "
                       "FROM pg_locks l LEFT JOIN pg_index i ON i.indexrelid = l.relation "
                       "WHERE l.pid = %s AND l.locktype = 'relation'", [pid])
        return {row[0] for row in cursor.fetchall()} == {"mail_outboundmessage"}


def end_backend(pid: int) -> None:
    """Make the database drop a dead client's pending statement, as if it never arrived."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])


def code_of(received: Received) -> str:
    match = CODE.search(text_of(received))
    assert match, "no code in the email"
    return match.group(1) + match.group(2)


def kill_after_claim(workers: Workers, smtp: SMTPServer, sign_in: SignInRequest) -> None:
    # The renderer locks the sign-in request first: it waits there, claimed, nothing minted.
    with row_locked("signin_signinrequest", sign_in.pk):
        [worker] = workers.start(1)
        wait_until(lambda: any('"signin_signinrequest"' in q
                               for q in blocked_statements().values()),
                   what="the worker to wait for the sign-in request after claiming")
        worker.kill()
        worker.wait(timeout=10)
    sign_in.refresh_from_db()
    assert sign_in.link_seed == "" and sign_in.token_hash == ""


def kill_after_render(workers: Workers, smtp: SMTPServer, sign_in: SignInRequest) -> None:
    smtp.hold("MAIL")  # the email is rendered and committed; the conversation has begun
    [worker] = workers.start(1)
    smtp.wait_held()
    worker.kill()
    worker.wait(timeout=10)
    smtp.release()
    sign_in.refresh_from_db()
    assert sign_in.link_seed and sign_in.token_hash


def kill_mid_data(workers: Workers, smtp: SMTPServer, sign_in: SignInRequest) -> None:
    smtp.hold("DATA")  # the content has arrived, the relay has not answered yet
    [worker] = workers.start(1)
    smtp.wait_held()
    worker.kill()
    worker.wait(timeout=10)
    # Released only once the server saw the sender go: it then drops the message.
    wait_until(smtp.handler.abandoned.is_set, what="the server to notice the dead sender")
    smtp.release()


def kill_after_250(workers: Workers, smtp: SMTPServer, sign_in: SignInRequest) -> None:
    assert sign_in.message is not None
    smtp.hold("DATA")
    [worker] = workers.start(1)
    smtp.wait_held()
    with row_locked("mail_outboundmessage", sign_in.message.pk):
        smtp.release()  # the relay stores the message and answers 250
        wait_until(lambda: bool(blocked_statements()), what="the worker to record the send")
        # The first thing the worker does after the 250 is the UPDATE that records it, in a
        # transaction of its own, committed the moment it runs: no attempt row, no audit
        # row, nothing else widens the window in which a death means a second copy.
        [(pid, statement)] = blocked_statements().items()
        # The value is a literal with client-side binding (Django's default), $1 server-side.
        assert re.match(r'UPDATE "mail_outboundmessage" SET "status" = (\'sent\'|\$1), '
                        r'"sent_at"', statement), statement
        assert runs_on_its_own(pid)
        assert not sign_in.message.attempts.exists()
        # Killed before that UPDATE reached the database: the worker, and the statement.
        worker.kill()
        worker.wait(timeout=10)
        end_backend(pid)
    assert len(smtp.messages) == 1


STEPS = {"after_claim": (kill_after_claim, 1), "after_render": (kill_after_render, 1),
         "mid_data": (kill_mid_data, 1), "after_250": (kill_after_250, 2)}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_worker_killed_at_any_step_still_delivers_and_a_second_copy_works(
        step: str, workers: Workers, smtp: SMTPServer) -> None:
    kill, copies = STEPS[step]
    make_user(ALICE, make_org())
    browser = Client()
    ask(browser, ALICE)
    sign_in = SignInRequest.objects.select_related("message").get()
    message = sign_in.message
    assert message is not None

    kill(workers, smtp, sign_in)
    message.refresh_from_db()
    assert message.status == Status.SENDING  # the dead worker's claim
    # Its lease runs out (moved here rather than waited for); another worker takes over.
    OutboundMessage.objects.filter(pk=message.pk).update(claimed_until=now())
    [second] = workers.start(1)
    wait_until(lambda: OutboundMessage.objects.filter(pk=message.pk, status=Status.SENT)
               .exists(), what="the message to be sent")
    assert workers.stop(second) == 0, workers.output()

    received = smtp.messages
    assert len(received) == copies
    # Every copy is the same email: one Message-ID, one body, so one link and one code.
    assert {r.message["Message-ID"] for r in received} == {message.message_id}
    assert len({text_of(r) for r in received}) == 1
    link = LINK.search(text_of(received[0]))
    assert link is not None
    sign_in.refresh_from_db()
    assert tokens.same_hash(link.group(1), sign_in.token_hash)
    assert tokens.same_code(sign_in.pk, code_of(received[0]), sign_in.code_hmac)
    assert list(message.attempts.values_list("result", flat=True)) == ["transient", "sent"]
    # And it signs in: the asking browser opens the link.
    response = browser.get(f"/signin/link/{link.group(1)}/")
    assert response.status_code == 302, response.status_code
    assert browser.get("/").wsgi_request.user.email == ALICE
