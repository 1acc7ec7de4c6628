"""Signed license files: downloaded from the device page, checked by ``manage.py verify_license``,
which names what is wrong (malformed, wrong key, tampered field, expired)."""

import datetime
import io
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from ald_portal import clock
from devices.engine import run_cycle
from devices.models import DeviceLicense
from licensing import license_files
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_path(settings, tmp_path):
    settings.LICENSE_SIGNING_KEY_PATH = str(tmp_path / "keys" / "license-signing-key.pem")
    return tmp_path / "keys" / "license-signing-key.pem"


@pytest.fixture
def licensed():
    f.ald_on()
    f.pack("WE-1A2B3", total=5, expiry=datetime.date(2027, 12, 1))
    f.register_all()
    dev = f.device(7, name="ITC-RECEPTION")
    run_cycle()
    return dev, DeviceLicense.objects.get(device=dev)


@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", password="s3cret-enough"))
    return client


def verify(path, *extra):
    out = io.StringIO()
    call_command("verify_license", str(path), *extra, stdout=out)
    return out.getvalue()


def verify_fails(path, *extra):
    with pytest.raises(CommandError) as info:
        verify(path, *extra)
    return info.value.returncode, str(info.value)


def test_download_from_the_device_page_and_verify(reader_client, licensed, key_path, tmp_path):
    dev, lic = licensed
    page = reader_client.get(f"/ums/devices/{dev.pk}/").content.decode()
    url = f"/ums/devices/{dev.pk}/licenses/{lic.pk}/file/"
    assert f'href="{url}"' in page

    response = reader_client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="00E0C5000007_WE_WE-1A2B3.lic"'
    document = json.loads(response.content)
    assert document["license"] == {
        "unit_id": "00E0C5000007",
        "service": "WE",
        "pack_id": "WE-1A2B3",
        "expires": "2027-12-01",
        "issued_at": "2026-12-03T11:00:00+00:00",  # 12:00 Berlin
    }
    # the key was made on first use, readable by its owner only
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    # stored with the license; a second download is the same file
    lic.refresh_from_db()
    assert lic.license_file.encode() == response.content
    assert reader_client.get(url).content == response.content

    path = tmp_path / "dl.lic"
    path.write_bytes(response.content)
    out = verify(path)
    assert out.startswith("valid: WE license for unit ID 00E0C5000007 from pack WE-1A2B3, expires 2027-12-01")


def test_licensing_service_unreachable_says_so_on_the_device_page_and_stores_nothing(
    reader_client, licensed, settings
):
    import socket

    dev, lic = licensed
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        settings.ILS_URL = f"http://127.0.0.1:{s.getsockname()[1]}"
    settings.ILS_RETRIES, settings.ILS_BACKOFF_SECONDS, settings.ILS_CONNECT_TIMEOUT = 0, 0.01, 1
    response = reader_client.get(f"/ums/devices/{dev.pk}/licenses/{lic.pk}/file/", follow=True)
    assert response.redirect_chain == [(f"/ums/devices/{dev.pk}/", 302)]
    said = [str(m) for m in response.context["messages"]]
    assert len(said) == 1 and said[0].startswith("The licensing service did not issue the license file: ")
    assert settings.ILS_URL in said[0]
    lic.refresh_from_db()
    assert lic.license_file == ""


def test_no_file_for_a_license_of_another_device_or_a_revoked_one(reader_client, licensed):
    dev, lic = licensed
    other = f.device(8)
    assert reader_client.get(f"/ums/devices/{other.pk}/licenses/{lic.pk}/file/").status_code == 404
    DeviceLicense.objects.filter(pk=lic.pk).update(status="REVOKED")
    assert reader_client.get(f"/ums/devices/{dev.pk}/licenses/{lic.pk}/file/").status_code == 404


def test_anonymous_is_sent_to_login(client, licensed):
    dev, lic = licensed
    response = client.get(f"/ums/devices/{dev.pk}/licenses/{lic.pk}/file/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def issue(tmp_path, name="x.lic", expires=datetime.date(2027, 12, 1), key=None):
    data = license_files.issue_license_file("00E0C5000007", "WE", "WE-1A2B3", expires, clock.now(), key=key)
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "field, value",
    [
        ("unit_id", "00E0C5FFFFFF"),
        ("service", "EMP"),
        ("pack_id", "WE-ZZZZZ"),
        ("expires", "2099-12-31"),
        ("expires", None),  # made perpetual
        ("issued_at", "2026-12-04T11:00:00+00:00"),
    ],
)
def test_tampered_field_is_named(tmp_path, field, value):
    path = issue(tmp_path)
    document = json.loads(path.read_text())
    document["license"][field] = value
    path.write_text(json.dumps(document))
    code, message = verify_fails(path)
    assert code == 4
    assert f"tampered: field {field} ({value!r}) is not what was signed" in message


def test_tampered_digest_breaks_the_signature(tmp_path):
    path = issue(tmp_path)
    document = json.loads(path.read_text())
    document["license"]["pack_id"] = "WE-ZZZZZ"
    document["sha256"]["pack_id"] = license_files._digest("pack_id", "WE-ZZZZZ")
    path.write_text(json.dumps(document))
    code, message = verify_fails(path)
    assert code == 4 and "tampered: the signature does not match" in message


def test_wrong_key(tmp_path):
    foreign = Ed25519PrivateKey.generate()
    path = issue(tmp_path, key=foreign)
    code, message = verify_fails(path)
    assert code == 3
    ours = license_files.key_id(license_files.signing_key().public_key())
    theirs = license_files.key_id(foreign.public_key())
    assert f"wrong key: the file was signed with key {theirs}" in message and ours in message
    # with the other service's public key it verifies
    pem = tmp_path / "other.pem"
    pem.write_bytes(
        foreign.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert verify(path, "--public-key", str(pem)).startswith("valid: ")


def test_foreign_signature_under_our_key_id_is_tampered(tmp_path):
    path = issue(tmp_path)
    other = json.loads(issue(tmp_path, "o.lic", key=Ed25519PrivateKey.generate()).read_text())
    document = json.loads(path.read_text())
    document["signature"] = other["signature"]
    path.write_text(json.dumps(document))
    code, message = verify_fails(path)
    assert code == 4 and "signature does not match" in message


def test_expired(tmp_path):
    path = issue(tmp_path, expires=datetime.date(2026, 12, 2))
    code, message = verify_fails(path)
    assert code == 5
    assert "expired on 2026-12-02 (today is 2026-12-03)" in message
    # the day it expires it is still valid
    clock.freeze(clock.now() - datetime.timedelta(days=1))
    assert verify(path).startswith("valid: ")


def test_perpetual_license_never_expires(tmp_path):
    path = issue(tmp_path, expires=None)
    clock.freeze(clock.now() + datetime.timedelta(days=3650))
    assert "expires never (perpetual)" in verify(path)


@pytest.mark.parametrize(
    "content, said",
    [
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"format": "something-else"}', "format 'something-else'"),
        (b"", "not JSON"),
    ],
)
def test_malformed(tmp_path, content, said):
    path = tmp_path / "bad.lic"
    path.write_bytes(content)
    code, message = verify_fails(path)
    assert code == 2 and "malformed license file" in message and said in message


def test_missing_field_is_malformed(tmp_path):
    path = issue(tmp_path)
    document = json.loads(path.read_text())
    del document["license"]["service"]
    path.write_text(json.dumps(document))
    code, message = verify_fails(path)
    assert code == 2 and "license field 'service' is missing" in message


def test_unreadable_file(tmp_path):
    code, message = verify_fails(tmp_path / "nope.lic")
    assert code == 2 and "cannot be read" in message


@pytest.mark.parametrize("path", ["/dev/zero", "directory"])
def test_a_device_or_a_directory_is_refused_at_once_not_read_forever(tmp_path, path):
    code, message = verify_fails(tmp_path if path == "directory" else path)
    assert code == 2 and "is not a regular file." in message


def test_the_key_is_kept_across_uses(key_path):
    first = license_files.public_key_pem()
    assert license_files.public_key_pem() == first
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
