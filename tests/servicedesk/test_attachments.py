"""Attachments on service requests: limits, type by content, storage, access, headers."""

from __future__ import annotations

import socket
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from portal.config import env
from portal.core.security_headers import DOWNLOAD_CSP
from portal.servicedesk import attachments, filetypes, services
from portal.servicedesk.downloads import content_disposition
from portal.servicedesk.models import Attachment, ServiceRequest
from tests.factories import make_user
from tests.passkeys.support import passkey_client
from tests.servicedesk.conftest import BACKEND
from tests.support import screenshots

pytestmark = pytest.mark.django_db


def png(width: int = 2, height: int = 2) -> bytes:
    """Return a real, valid PNG image (grey pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


def new_request(client: Client, *files, title: str = "Printer offline"):
    return client.post(reverse("servicedesk:new"), {
        "title": title, "description": "Dock 3 labels print blank.", "priority": "high",
        "attachments": list(files)})


def stored_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture
def bob(northwind):
    return make_user("bob@northwind.example", northwind, full_name="Bob Ng")


@pytest.fixture
def dan(contoso):
    return make_user("dan@contoso.example", contoso, full_name="Dan Ito")


@pytest.fixture
def filed(alice, attachment_folder) -> tuple[ServiceRequest, Attachment]:
    checked = attachments.check_upload(upload("Capture d\u2019\u00e9cran.png", png()))
    sr = services.file_request(alice, title="VPN drops", description="See the screenshot.",
                               attachments=[checked])
    return sr, sr.attachments.get()


# --- the type comes from the bytes -------------------------------------------------------

@pytest.mark.parametrize("content,expected", [
    (png(), filetypes.PNG),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", filetypes.JPEG),
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00", filetypes.GIF),
    (b"RIFF\x1a\x00\x00\x00WEBPVP8 ", filetypes.WEBP),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", filetypes.PDF),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", filetypes.ZIP),
    (b"2026-12-01 14:00:01 ERROR spooler: queue stalled\n", filetypes.TEXT),
    (b"<13>Dec  1 14:00:01 printer: paper jam\n", filetypes.TEXT),  # syslog, not markup
    ("\u00dcberweisung fehlgeschlagen \u2013 Fehler 0x80070005\n".encode(), filetypes.TEXT),
])
def test_the_type_is_read_from_the_content(content, expected):
    assert filetypes.detect([content]) == expected


@pytest.mark.parametrize("content,reason", [
    (HTML, filetypes.UnsupportedType.MARKUP),
    (SVG, filetypes.UnsupportedType.MARKUP),
    (b"\n\n   <svg xmlns='http://www.w3.org/2000/svg'></svg>", filetypes.UnsupportedType.MARKUP),
    (b"\xef\xbb\xbf<html>", filetypes.UnsupportedType.MARKUP),
    (b"<!-- a comment first --><script>", filetypes.UnsupportedType.MARKUP),
    (b"MZ\x90\x00\x03\x00\x00\x00", filetypes.UnsupportedType.BINARY),  # a Windows program
    (b"log line\x00with a NUL", filetypes.UnsupportedType.BINARY),
    (b"caf\xe9 latin-1, not UTF-8", filetypes.UnsupportedType.BINARY),
    (b"", filetypes.UnsupportedType.EMPTY),
])
def test_markup_binaries_and_broken_text_are_refused(content, reason):
    with pytest.raises(filetypes.UnsupportedType) as refused:
        filetypes.detect([content])
    assert refused.value.reason == reason


def test_text_is_checked_to_its_end_across_chunks():
    euro = "€".encode()
    # A character split over two chunks is fine; a NUL in the last chunk is not.
    assert filetypes.detect([b"total: 12" + euro[:1], euro[1:] + b"\n"]) == filetypes.TEXT
    with pytest.raises(filetypes.UnsupportedType):
        filetypes.detect([b"a" * 70_000, b"b" * 70_000, b"tail\x00"])


def test_a_png_named_txt_is_stored_and_served_as_png(alice, alice_client, attachment_folder):
    response = new_request(alice_client, upload("notes.txt", png(), "text/plain"))
    assert response.status_code == 302, response.content.decode()[:2000]
    attachment = Attachment.objects.get()
    assert (attachment.name, attachment.content_type) == ("notes.txt", "image/png")
    download = alice_client.get(attachment.get_absolute_url())
    assert download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content) == png()


def test_an_html_page_named_png_is_refused_and_the_text_is_kept(alice_client,
                                                               attachment_folder):
    response = new_request(alice_client, upload("screenshot.png", HTML, "image/png"),
                           title="Portal shows a blank page")
    assert response.status_code == 400
    page = response.content.decode()
    assert "“screenshot.png” is a web page or SVG image" in page
    assert 'value="Portal shows a blank page"' in page
    assert "Dock 3 labels print blank." in page
    assert "choose the files again" in page
    assert not ServiceRequest.objects.exists() and not Attachment.objects.exists()
    assert stored_files(attachment_folder) == []


def test_an_svg_is_refused_whatever_its_name(alice_client):
    response = new_request(alice_client, upload("diagram.jpg", SVG, "image/jpeg"))
    assert response.status_code == 400
    assert "“diagram.jpg” is a web page or SVG image" in response.content.decode()


def test_an_unknown_kind_is_refused_by_name(alice_client):
    response = new_request(alice_client, upload("setup.pdf", b"MZ\x90\x00" + b"\x00" * 64))
    assert response.status_code == 400
    assert "“setup.pdf” is not a kind of file we accept" in response.content.decode()


# --- limits ------------------------------------------------------------------------------

def test_a_file_over_the_size_limit_is_refused_and_not_kept(alice_client, settings,
                                                           attachment_folder):
    settings.ATTACHMENT_MAX_BYTES = 4096
    big = b"x" * 70_000 + b"\n"  # text, over one upload chunk (64 KiB)
    response = new_request(alice_client, upload("spooler.log", big), upload("ok.png", png()))
    assert response.status_code == 400
    page = response.content.decode()
    assert "“spooler.log” is 68.4 KB; each file can be at most 4 KB" in page
    assert not Attachment.objects.exists()
    assert stored_files(attachment_folder) == []


def test_the_size_limit_handler_keeps_no_byte_beyond_the_limit(settings):
    settings.ATTACHMENT_MAX_BYTES = 100
    handler = attachments.SizeLimitUploadHandler()
    handler.new_file("attachments", "big.log", "text/plain", 300)
    assert handler.receive_data_chunk(b"a" * 80, 0) == b"a" * 80
    assert handler.receive_data_chunk(b"b" * 80, 80) is None  # not passed on to be stored
    assert handler.receive_data_chunk(b"c" * 80, 160) is None
    over = handler.file_complete(240)
    assert over is not None and over.size == 240 and over.read() == b""
    with pytest.raises(attachments.AttachmentRefused) as refused:
        attachments.check_upload(over)
    assert refused.value.reason == attachments.AttachmentRefused.TOO_LARGE


def test_a_file_exactly_at_the_limit_is_accepted(alice_client, settings):
    settings.ATTACHMENT_MAX_BYTES = 1024
    response = new_request(alice_client, upload("exact.log", b"y" * 1023 + b"\n"))
    assert response.status_code == 302
    assert Attachment.objects.get().size == 1024


def test_more_files_than_allowed_are_refused_together(alice_client, settings):
    settings.ATTACHMENT_MAX_FILES = 2
    response = new_request(alice_client, *(upload(f"{n}.png", png()) for n in range(3)))
    assert response.status_code == 400
    assert "Attach at most 2 files at a time (you chose 3)" in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_an_empty_file_is_refused_by_name(alice_client):
    response = new_request(alice_client, upload("blank.png", b""))
    assert response.status_code == 400
    assert "“blank.png” is empty (0 bytes)" in response.content.decode()


def test_a_huge_name_is_no_error(alice_client):
    response = new_request(alice_client, upload("a" * 3000 + ".png", png()))
    # Django's upload parser cuts names to 255 characters, keeping the suffix.
    assert response.status_code == 302
    assert Attachment.objects.get().name == "a" * 251 + ".png"


def test_a_name_longer_than_the_column_is_refused_not_cut():
    with pytest.raises(attachments.AttachmentRefused) as refused:
        attachments.clean_name("a" * 300 + ".png")
    assert (refused.value.reason, refused.value.size) == (
        attachments.AttachmentRefused.NAME_TOO_LONG, 304)


def test_a_nul_in_a_name_never_reaches_a_page_or_the_storage(alice_client, attachment_folder):
    response = new_request(alice_client, upload("shot\x00.png", png()))
    # Django's upload parser drops unprintable characters from names before any view runs.
    assert response.status_code in (302, 400)
    for attachment in Attachment.objects.all():
        assert "\x00" not in attachment.name and "\x00" not in attachment.file.name
    with pytest.raises(attachments.AttachmentRefused) as refused:
        attachments.clean_name("shot\x00.png")
    assert refused.value.reason == attachments.AttachmentRefused.NAME_UNUSABLE


@pytest.mark.parametrize("raw,clean", [
    ("C:\\Users\\bob\\Desktop\\error.log", "error.log"),
    ("../../etc/passwd", "passwd"),
    ("  report   final .pdf ", "report final .pdf"),
    ("...", "attachment"),
])
def test_names_are_cleaned_for_display(raw, clean):
    assert attachments.clean_name(raw) == clean


def test_a_right_to_left_override_in_a_name_is_refused():
    with pytest.raises(attachments.AttachmentRefused):
        attachments.clean_name("invoice\u202egpj.exe")


# --- storage -----------------------------------------------------------------------------

def test_files_are_stored_under_random_names(filed, attachment_folder):
    _, attachment = filed
    on_disk = stored_files(attachment_folder)
    assert len(on_disk) == 1 and on_disk[0].read_bytes() == png()
    assert "cran" not in attachment.file.name and attachment.file.name.endswith(".png")
    assert len(Path(attachment.file.name).stem) >= 32
    assert attachment.name == "Capture d\u2019\u00e9cran.png"


def test_attachments_have_no_public_url(filed):
    with pytest.raises(NotImplementedError):
        filed[1].file.url  # noqa: B018


def test_deleting_a_request_removes_its_files_once_committed(
        filed, attachment_folder, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as pending:
        filed[0].delete()
    assert len(stored_files(attachment_folder)) == 1  # not before the commit
    for callback in pending:
        callback()
    assert stored_files(attachment_folder) == []


def test_a_refused_comment_loses_nothing_already_stored(filed, alice_client,
                                                       attachment_folder):
    sr, attachment = filed
    ServiceRequest.objects.filter(pk=sr.pk).update(status=ServiceRequest.Status.CLOSED)
    response = alice_client.post(reverse("servicedesk:comment", args=[sr.number]), {
        "body": "Still broken", "attachments": [upload("more.png", png())]})
    assert response.status_code == 409
    assert list(Attachment.objects.all()) == [attachment]
    assert len(stored_files(attachment_folder)) == 1
    download = alice_client.get(attachment.get_absolute_url())
    assert b"".join(download.streaming_content) == png()


def test_a_comment_carries_its_files_and_the_page_shows_them(filed, bob, attachment_folder):
    sr, _ = filed
    client = client_for(bob)
    response = client.post(reverse("servicedesk:comment", args=[sr.number]), {
        "body": "Here is the log.",
        "attachments": [upload("vpn.log", b"14:00 tunnel down\n" * 20)]})
    assert response.status_code == 302
    comment = sr.comments.get()
    log = comment.attachments.get()
    assert (log.uploaded_by, log.content_type) == (bob, "text/plain; charset=utf-8")
    page = client.get(sr.get_absolute_url()).content.decode()
    assert "vpn.log" in page and "360\xa0bytes" in page and "Bob Ng" in page
    assert log.get_absolute_url() in page
    # The filing's screenshot is shown with the description, the log with the comment.
    assert page.index("Capture d\u2019\u00e9cran.png") < page.index("Here is the log.") < page.index(
        "vpn.log")


def test_a_refused_comment_file_keeps_the_comment_text(filed, alice_client):
    sr, _ = filed
    response = alice_client.post(reverse("servicedesk:comment", args=[sr.number]), {
        "body": "My words stay", "attachments": [upload("page.html", HTML)]})
    assert response.status_code == 400
    page = response.content.decode()
    assert "My words stay" in page and "“page.html” is a web page" in page
    assert "choose the files again" in page
    assert not sr.comments.exists()


# --- who may read them -------------------------------------------------------------------

def test_a_colleague_downloads_with_inert_headers(filed, bob):
    _, attachment = filed
    response = client_for(bob).get(attachment.get_absolute_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png()
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"Capture d_ecran.png\"; "
        "filename*=UTF-8''Capture%20d%E2%80%99%C3%A9cran.png")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == DOWNLOAD_CSP
    assert "sandbox" in DOWNLOAD_CSP and "default-src 'none'" in DOWNLOAD_CSP
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("name,header", [
    ("error.log", 'attachment; filename="error.log"'),
    ('say "hi".txt', "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"),
    ("日志.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E5%BF%97.txt"),
])
def test_content_disposition_follows_rfc_6266(name, header):
    assert content_disposition(name) == header


def test_another_organization_gets_not_found(filed, dan):
    _, attachment = filed
    assert client_for(dan).get(attachment.get_absolute_url()).status_code == 404


def test_the_id_must_belong_to_the_request_in_the_address(filed, alice):
    _, attachment = filed
    other = services.file_request(alice, title="Other", description="d")
    url = reverse("servicedesk:attachment", args=[other.number, attachment.pk])
    assert client_for(alice).get(url).status_code == 404


def test_a_former_member_gets_not_found(filed, bob):
    _, attachment = filed
    client = client_for(bob)
    bob.membership.delete()
    response = client.get(attachment.get_absolute_url())
    assert response.status_code in (302, 404)  # signed out by the membership change, or 404


def test_signed_out_people_are_sent_to_sign_in(filed, client):
    response = client.get(filed[1].get_absolute_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:start"))


@pytest.fixture
def sam():
    return make_user("sam@cloudsentry.com", staff=True, superuser=True, full_name="Sam Patel")


def test_staff_see_attachments_in_the_admin_and_download_them(filed, sam):
    sr, attachment = filed
    staff = passkey_client(sam)
    page = staff.get(reverse("admin:servicedesk_servicerequest_change", args=[sr.pk]))
    html = page.content.decode()
    url = reverse("admin:servicedesk_attachment_download", args=[sr.pk, attachment.pk])
    assert url in html and "Capture d\u2019\u00e9cran.png" in html
    assert 'name="attachments-0-name"' not in html  # read-only
    response = staff.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == png()
    assert response["Content-Security-Policy"] == DOWNLOAD_CSP


def test_staff_without_a_passkey_session_cannot_download(filed, sam):
    sr, attachment = filed
    url = reverse("admin:servicedesk_attachment_download", args=[sr.pk, attachment.pk])
    response = client_for(sam).get(url)
    assert response.status_code in (302, 403)
    assert not hasattr(response, "streaming_content")


def test_customers_cannot_use_the_staff_download(filed, alice):
    sr, attachment = filed
    url = reverse("admin:servicedesk_attachment_download", args=[sr.pk, attachment.pk])
    response = client_for(alice).get(url)
    assert response.status_code in (302, 403)
    assert not hasattr(response, "streaming_content")


# --- settings ----------------------------------------------------------------------------

BASE_ENV = {"PORTAL_DEBUG": "true"}


def test_attachment_settings_have_defaults():
    config = env.load(BASE_ENV)
    assert (config.attachment_max_bytes, config.attachment_max_files) == (10 * 1024 * 1024, 5)
    assert config.attachment_storage["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert str(config.attachment_storage["OPTIONS"]["location"]).endswith("attachments")


@pytest.mark.parametrize("extra,variable", [
    ({"ATTACHMENT_STORAGE": "ftp"}, "ATTACHMENT_STORAGE"),
    ({"ATTACHMENT_STORAGE": "s3"}, "AWS_STORAGE_BUCKET_NAME"),
    ({"ATTACHMENT_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "b",
      "AWS_S3_ENDPOINT_URL": "ftp://x"}, "AWS_S3_ENDPOINT_URL"),
    ({"ATTACHMENT_MAX_BYTES": "ten"}, "ATTACHMENT_MAX_BYTES"),
    ({"ATTACHMENT_MAX_FILES": "0"}, "ATTACHMENT_MAX_FILES"),
])
def test_bad_attachment_settings_stop_start_up_by_name(extra, variable):
    with pytest.raises(env.ConfigError) as error:
        env.load({**BASE_ENV, **extra})
    assert error.value.variable == variable


# --- an S3-compatible store: moto's server over real HTTP --------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_attachments_are_stored_and_served_through_an_s3_endpoint(
        s3_endpoint, settings, alice, alice_client, attachment_folder,
        django_capture_on_commit_callbacks):
    import boto3

    s3_env = {**BASE_ENV, "ATTACHMENT_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "portal-files",
              "AWS_S3_ENDPOINT_URL": s3_endpoint, "AWS_S3_REGION_NAME": "us-east-1",
              "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="portal-files")
    settings.STORAGES = {**settings.STORAGES,
                         "attachments": env.load(s3_env).attachment_storage}

    response = new_request(alice_client, upload("Capture d\u2019\u00e9cran.png", png()))
    assert response.status_code == 302, response.content.decode()[:2000]
    attachment = Attachment.objects.get()
    keys = [item["Key"] for item in client.list_objects_v2(Bucket="portal-files")["Contents"]]
    assert keys == [attachment.file.name] and "cran" not in keys[0]
    assert client.get_object(Bucket="portal-files", Key=keys[0])["Body"].read() == png()
    grants = client.get_object_acl(Bucket="portal-files", Key=keys[0])["Grants"]
    assert not [g for g in grants if "AllUsers" in g["Grantee"].get("URI", "")]
    assert stored_files(attachment_folder) == []  # nothing went to the local folder

    download = alice_client.get(attachment.get_absolute_url())
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == png()
    assert download["Content-Type"] == "image/png"
    assert download["Content-Security-Policy"] == DOWNLOAD_CSP
    with django_capture_on_commit_callbacks(execute=True):
        attachment.service_request.delete()
    assert client.list_objects_v2(Bucket="portal-files").get("KeyCount") == 0


# --- in a real browser, at phone size ----------------------------------------------------

@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_on_a_phone_a_customer_files_a_request_with_a_screenshot(live_server, browser,
                                                                 artifacts, tmp_path,
                                                                 attachment_folder):
    from tests.factories import make_org

    org = make_org("Northwind Logistics", ["northwind.example"])
    alice = make_user("alice@northwind.example", org, full_name="Alice Moreno")
    signed_in = client_for(alice)
    from django.conf import settings

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    name = settings.SESSION_COOKIE_NAME
    context.add_cookies([{"name": name, "url": live_server.url,
                          "value": signed_in.cookies[name].value}])
    page = context.new_page()
    try:
        page.goto(live_server.url + reverse("servicedesk:new"))
        screenshot = tmp_path / "Screenshot 2026-12-01 at 14.02.png"
        screenshot.write_bytes(screenshots.take(page))  # a real PNG, as a phone would take one
        page.get_by_label("Title").fill("Label printer prints blank")
        page.get_by_label("Description").fill("See the screenshot of the print queue.")
        page.get_by_label("Attach files").set_input_files(str(screenshot))
        page.get_by_role("button", name="File the request").click()
        page.get_by_role("heading", name="Label printer prints blank").wait_for()
        link = page.get_by_role("link", name=screenshot.name)
        assert link.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshots.take(page, path=str(artifacts / "request-with-attachment.png"), full_page=True)
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename == screenshot.name
        assert Path(download.path()).read_bytes() == screenshot.read_bytes()
    finally:
        context.close()
    attachment = Attachment.objects.get()
    assert (attachment.content_type, attachment.uploaded_by) == ("image/png", alice)
    assert len(stored_files(attachment_folder)) == 1


def test_no_address_serves_the_storage_directly(filed, alice_client):
    stored = filed[1].file.name
    for prefix in ("/media/", "/static/", "/attachments/", "/var/attachments/", "/"):
        assert alice_client.get(prefix + stored).status_code == 404, prefix


def test_staff_on_the_customer_address_get_not_found(filed, sam):
    # Staff belong to no organization: they download from the admin, under its passkey rule.
    assert passkey_client(sam).get(filed[1].get_absolute_url()).status_code == 404
