"""The one list of the portal's pages that the browser suite opens on every screen size.

``test_every_page.py`` opens each page below, signed out or as the person named, at 320
CSS pixels (axe-core's WCAG 2.1 A/AA rules, reflow with tables included, every data table
in the ``rows`` convention) and on a 390x844 phone (nothing scrolls sideways).

To add a page: add a ``Page`` line to ``PAGES``. If it needs something to show (a row, a
record), make it in ``seed`` and name it in the path as ``{placeholder}``; give long words
and addresses, since those are what break narrow screens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.files.base import ContentFile

from portal.accounts.models import Membership, User
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.helpcenter.articles import all_articles
from portal.orgadmin import invitations
from portal.orgadmin.models import Invitation
from portal.passkeys.models import Passkey
from portal.servicedesk import services
from portal.servicedesk.models import Attachment, ServiceRequest
from portal.signin import tokens
from tests.browser.conftest import ALICE, BOB
from tests.factories import make_user

STAFF = "sam@cloudsentry.example"
# The smallest valid PNG: one transparent pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
# Longer than a 320px screen is wide, with no place to break: addresses and words like these
# are what push a page sideways.
LONG_WORD = "Supercalifragilisticexpialidocious-warehouse-label-printer-dock-three"
LONG_EMAIL = "maximilian.alexander.von-hohenzollern-sigmaringen@northwind.example"
LONG_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Mobile Safari/537.36")


@dataclass(frozen=True)
class Page:
    """A page to open: where, as whom (None: signed out) and the status it answers."""

    name: str
    path: str
    who: str | None = None
    status: int = 200


PAGES: list[Page] = [
    # Signed out.
    Page("signin", "/signin/"),
    Page("help-index", "/help/"),
    *(Page(f"help-{article.slug}", f"/help/{article.slug}/") for article in all_articles()),
    Page("not-found", "/no-such-page/", status=404),
    Page("invitation", "/organization/invitation/{invitation}/"),
    Page("invitation-unknown", "/organization/invitation/not-a-real-invitation-token/",
         status=404),
    # Alice, an organization admin.
    Page("home", "/", ALICE),
    Page("request-list", "/requests/", ALICE),
    Page("request-list-all", "/requests/?status=all", ALICE),
    Page("request-detail", "/requests/{request}/", ALICE),
    Page("request-new", "/requests/new/", ALICE),
    Page("sessions", "/signin/sessions/", ALICE),
    Page("passkeys", "/passkeys/", ALICE),
    Page("time-zone", "/account/time-zone/", ALICE),
    Page("notifications", "/account/notifications/", ALICE),
    Page("organization", "/organization/", ALICE),
    Page("members", "/organization/members/", ALICE),
    Page("members-search", "/organization/members/?q=hohenzollern", ALICE),
    Page("sign-in-policy", "/organization/policy/", ALICE),
    Page("sign-in-history", "/organization/history/", ALICE),
    Page("sign-in-history-refused", "/organization/history/?since=2030-02-31", ALICE,
         status=400),
    Page("signout", "/signin/signout/", ALICE),
    # Bob, who is not an admin, and staff.
    Page("organization-not-admin", "/organization/", BOB, status=403),
    Page("home-staff", "/", STAFF),
]


def seed() -> dict[str, str]:
    """Make what the pages show; return the values of the paths' placeholders.

    The ``portal`` fixture has made Northwind with Alice and Bob; this makes Alice its admin,
    adds staff, requests with long titles, a passkey and a sign-in history.
    """
    alice = User.objects.get(email=ALICE)
    Membership.objects.filter(user=alice).update(role=Membership.Role.ADMIN)
    make_user(STAFF, staff=True, full_name="Sam Staff")
    long_named = make_user(LONG_EMAIL, alice.organization, full_name="Max von Hohenzollern")
    filed = []
    for index, status in enumerate(ServiceRequest.Status.values):
        sr = services.file_request(alice, title=f"{LONG_WORD} {index + 1}",
                                   description=f"See {LONG_WORD}.\n\nhttps://intranet."
                                               f"northwind.example/{LONG_WORD}/{LONG_WORD}",
                                   priority=ServiceRequest.Priority.choices[index % 4][0])
        ServiceRequest.objects.filter(pk=sr.pk).update(status=status)
        filed.append(sr)
    comment = services.add_comment(alice, filed[0], f"Still broken: {LONG_WORD}.")
    for attached_to, name in ((None, f"{LONG_WORD}-screenshot.png"), (comment, "printer.log")):
        attachment = Attachment(service_request=filed[0], comment=attached_to, name=name,
                                size=2048, content_type="image/png", uploaded_by=alice,
                                created_at=now())
        attachment.file.save("png", ContentFile(PNG), save=False)
        attachment.save()
    invitation = Invitation.objects.create(
        organization=alice.organization, email=f"new.{LONG_EMAIL}", invited_by=alice,
        link_seed="pages-invitation-seed", token_hash=tokens.hash_token(
            invitations.token_of("pages-invitation-seed")),
        expires_at=now() + timedelta(days=7))
    Passkey.objects.create(user=alice, credential_id="pages-alice", public_key=b"unused",
                           name="Work laptop with a rather long name", last_used_at=now())
    for minutes, (tag, who) in enumerate([(Tag.LINK_REDEEMED, alice),
                                          (Tag.LINK_EXPIRED_USE, long_named),
                                          (Tag.OIDC_FAILED, long_named),
                                          (Tag.PASSKEY_SIGNED_IN, alice)]):
        event = record_event(tag, user=who, ip="2001:db8:85a3:1234:5678:8a2e:370:7334",
                             agent=LONG_AGENT, method="email")
        event.created_at = now() - timedelta(minutes=minutes)
        event.save(update_fields=["created_at"])
    return {"request": str(filed[0].number),
            "invitation": invitations.token_of(invitation.link_seed)}

