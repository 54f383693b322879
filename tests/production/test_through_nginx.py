"""The portal as an operator runs it: nginx → `portal serve` → PostgreSQL, Redis, a worker.

Each test repeats a finding of issue 9 from outside, through the real stack
(``tests/support/proxy.py``): real client addresses (item 1) and no secret in any log
(item 5). They run in the PostgreSQL pass only.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.audit.tags import Tag
from tests.signin.magic import LINK, text_of
from tests.support.proxy import CSRF_COOKIE, METRICS_TOKEN, SESSION_COOKIE, Stack, StackClient

pytestmark = [pytest.mark.postgres]

CLIENTS = 100
REQUESTS_EACH = 5


def _ask(client: StackClient, email: str) -> int:
    response = client.form("/signin/", {"email": email})
    assert response.status_code in (302, 429), response.text[:500]
    if response.status_code == 302:
        assert response.headers["Location"] == "/signin/check-inbox/"
    return response.status_code


def _requested_from(stack: Stack, domain: str) -> list[tuple[str, int]]:
    return stack.sql("SELECT host(ip), count(*) FROM audit_authevent WHERE tag = %s "
                     "AND email LIKE %s GROUP BY ip ORDER BY ip",
                     [Tag.LINK_REQUESTED.value, f"%@{domain}"])


def test_link_requests_are_counted_per_client_address_behind_nginx(stack: Stack) -> None:
    # Issue 9, item 1: 500 requests from 100 addresses, 5 each, once gave 29 accepted and
    # 471 refused, because every request seemed to come from nginx (127.0.0.1).
    domain = f"{stack.unique('flood')}.example"
    sources = [f"127.0.1.{n}" for n in range(1, CLIENTS + 1)]

    def one_client(number: int) -> list[int]:
        with stack.client(sources[number]) as client:
            return [_ask(client, f"person{number}-{k}@{domain}") for k in range(REQUESTS_EACH)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [code for codes in pool.map(one_client, range(CLIENTS)) for code in codes]

    assert Counter(statuses) == {302: CLIENTS * REQUESTS_EACH}
    counted = _requested_from(stack, domain)
    assert sorted(ip for ip, _ in counted) == sorted(sources)
    assert {count for _, count in counted} == {REQUESTS_EACH}
    refused = stack.sql("SELECT count(*) FROM audit_authevent WHERE tag = %s AND email LIKE %s",
                        [Tag.LINK_RATE_LIMITED.value, f"%@{domain}"])
    assert refused == [(0,)]


def test_a_client_that_bypasses_nginx_cannot_choose_its_address(stack: Stack) -> None:
    domain = f"{stack.unique('direct')}.example"
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with stack.direct_client("127.0.0.2") as client:
        client.get("/signin/", headers=forged)
        # Were X-Forwarded-Proto believed, the portal would think it is on HTTPS and refuse
        # this form, whose Origin says http:// (CSRF): the request is served as plain HTTP.
        response = client.form("/signin/", {"email": f"mallory@{domain}"}, headers=forged)
        assert response.status_code == 302, response.text[:500]
        # HSTS goes only on requests the portal considers secure.
        assert "Strict-Transport-Security" not in client.get("/healthz", headers=forged).headers
    assert _requested_from(stack, domain) == [("127.0.0.2", 1)]


def test_behind_nginx_a_forged_x_forwarded_for_is_ignored(stack: Stack) -> None:
    domain = f"{stack.unique('forged')}.example"
    with stack.client("127.0.1.150") as client:
        response = client.form("/signin/", {"email": f"mallory@{domain}"},
                               headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
        assert response.status_code == 302
        # Through nginx the portal is on HTTPS (X-Forwarded-Proto from a trusted proxy).
        assert "Strict-Transport-Security" in client.get("/healthz").headers
        assert {SESSION_COOKIE, CSRF_COOKIE} <= client.secure_cookies
    assert _requested_from(stack, domain) == [("127.0.1.150", 1)]


def test_signing_in_through_the_stack_leaves_no_secret_in_any_log(stack: Stack) -> None:
    # Issue 9, item 5: a token copied from the web access log signed in another browser.
    domain = f"{stack.unique('logs')}.example"
    org = stack.portal("addorg", f"Logs {domain}", "--domain", domain)
    assert org.returncode == 0, org.stderr
    alice = f"alice@{domain}"
    user = stack.portal("adduser", alice, "--org", f"Logs {domain}")
    assert user.returncode == 0, user.stderr

    with stack.client("127.0.1.201") as browser:
        assert _ask(browser, alice) == 302
        [email] = stack.smtp.wait_for(1, timeout=60)  # the worker minted and sent it
        body = text_of(email)
        match = LINK.search(body)
        assert match, body
        token, path = match.group(1), match.group(0).removeprefix(stack.base_url)
        assert path == f"/signin/link/{token}/"
        # The email names the address that asked, not nginx's.
        assert "IP address 127.0.1.201" in body

        opened = browser.get(path)  # this browser holds the binding cookie: one click
        assert (opened.status_code, opened.headers["Location"]) == (302, "/")
        assert browser.get("/").status_code == 200
        sessions = browser.get("/signin/sessions/")
        assert sessions.status_code == 200 and "127.0.1.201" in sessions.text
        # django.request logs the path of a 4xx answer: a POST to the link is a 405.
        assert browser.form(path, {}).status_code == 405

    signed_in = stack.sql("SELECT host(s.ip) FROM signin_usersession s JOIN accounts_user u "
                          "ON u.id = s.user_id WHERE u.email = %s", [alice])
    assert signed_in == [("127.0.1.201",)]

    # Wait until each process has logged these requests, then search every line of all.
    stack.wait_for_log("nginx access", "GET /signin/link/")
    stack.wait_for_log("gunicorn access", "GET /signin/link/")
    stack.wait_for_log("gunicorn error", "Method Not Allowed (POST): /signin/link/")
    stack.wait_for_log("worker", alice)
    leaks = {name: [line for line in lines if token in line]
             for name, lines in stack.log_lines().items()}
    assert leaks == {name: [] for name in Stack.LOGS}
    # Nor a part of it, in any other shape.
    everything = "\n".join(line for lines in stack.log_lines().values() for line in lines)
    assert token[:16] not in everything
    # What was logged instead.
    redacted = "/signin/link/[redacted]/"
    stack.wait_for_log("nginx access", f"GET {redacted}", timeout=1)
    stack.wait_for_log("gunicorn access", f"GET {redacted}", timeout=1)
    stack.wait_for_log("gunicorn error", f"Method Not Allowed (POST): {redacted}", timeout=1)


def test_healthz_through_nginx_checks_postgres_redis_and_the_queue(stack: Stack) -> None:
    with stack.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["database"], body["redis"], body["mail_queue"]["status"]) == ("ok", "ok", "ok")


def test_metrics_is_served_to_the_monitoring_system_but_not_through_nginx(
        stack: Stack) -> None:
    # README's nginx configuration keeps /metrics on the private side (docs/operations.md).
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    with stack.client("127.0.1.160") as client:
        through_nginx = client.get("/metrics", headers=token)
        assert through_nginx.status_code == 404
        assert "portal_" not in through_nginx.text
    with stack.direct_client("127.0.0.1") as monitoring:
        assert monitoring.get("/metrics").status_code == 401
        direct = monitoring.get("/metrics", headers=token)
        assert direct.status_code == 200
        assert "portal_link_requests_total" in direct.text
