"""Signed license files: what the licensing service (ILS) hands out for a license and what a device
installs. Ed25519 over the unit ID, service, pack ID, expiry and issue time.

The file is JSON. The signature covers one SHA-256 digest per field (and the format and key id), so
a file whose signature still verifies but whose field no longer matches its digest was changed in
that field, and ``verify`` can say which. Changing a digest breaks the signature.

The signing key is made on first use and kept in ``settings.LICENSE_SIGNING_KEY_PATH`` (mode 0600).
This module takes and returns plain values only: ``licensing`` never imports ``devices``."""

import base64
import datetime
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from ald_portal import clock, jsondata

FORMAT = "ald-portal-license/1"
FIELDS = ("unit_id", "service", "pack_id", "expires", "issued_at")


class LicenseFileError(Exception):
    """Why a license file is not valid. ``kind`` is one of malformed, wrong_key, tampered, expired;
    ``field`` names the changed field for tampered files."""

    def __init__(self, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


@dataclass(frozen=True)
class LicenseFileContent:
    unit_id: str
    service: str
    pack_id: str
    expires: datetime.date | None
    issued_at: datetime.datetime
    key_id: str

    def describe(self) -> str:
        expiry = self.expires.isoformat() if self.expires else "never (perpetual)"
        return (
            f"{self.service} license for unit ID {self.unit_id} from pack {self.pack_id}, "
            f"expires {expiry}, issued {self.issued_at.isoformat()}, key {self.key_id}"
        )


# --- the key ---------------------------------------------------------------------------------------


def _key_path() -> Path:
    return Path(settings.LICENSE_SIGNING_KEY_PATH)


def signing_key() -> Ed25519PrivateKey:
    """The ILS signing key, made on first use. Two processes making it at once: O_EXCL lets one
    write it, the other reads what that one wrote."""
    path = _key_path()
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    data = path.read_bytes()
    for _ in range(50):  # the other process may still be writing it
        if data.strip().endswith(b"-----END PRIVATE KEY-----"):
            break
        time.sleep(0.02)
        data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_key_pem(key: Ed25519PrivateKey | None = None) -> str:
    key = key or signing_key()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16].upper()


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


# --- issuing ---------------------------------------------------------------------------------------


def _digest(name: str, value: str) -> str:
    return hashlib.sha256(f"{name}\x00{value}".encode()).hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _field_values(unit_id, service, pack_id, expires, issued_at) -> dict:
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be an aware datetime")
    return {
        "unit_id": unit_id,
        "service": service,
        "pack_id": pack_id,
        "expires": expires.isoformat() if expires else None,
        "issued_at": issued_at.astimezone(datetime.UTC).isoformat(timespec="seconds"),
    }


def _signed_part(values: dict, kid: str) -> dict:
    digests = {name: _digest(name, "" if values[name] is None else values[name]) for name in FIELDS}
    return {"format": FORMAT, "key_id": kid, "sha256": digests}


def issue_license_file(
    unit_id: str,
    service: str,
    pack_id: str,
    expires: datetime.date | None,
    issued_at: datetime.datetime,
    key: Ed25519PrivateKey | None = None,
) -> bytes:
    """The signed license file for one license (plain values in, bytes out). Ed25519 is
    deterministic: the same license and key give the same bytes."""
    key = key or signing_key()
    kid = key_id(key.public_key())
    values = _field_values(unit_id, service, pack_id, expires, issued_at)
    signed = _signed_part(values, kid)
    document = {
        "format": FORMAT,
        "license": values,
        "key_id": kid,
        "sha256": signed["sha256"],
        "signature": base64.b64encode(key.sign(_canonical(signed))).decode(),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


# --- verifying -------------------------------------------------------------------------------------


def _malformed(message):
    return LicenseFileError("malformed", f"malformed license file: {message}")


def _parse(data: bytes) -> dict:
    try:
        document = jsondata.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _malformed("not a JSON object")
    if document.get("format") != FORMAT:
        raise _malformed(f"format {document.get('format')!r} is not {FORMAT!r}")
    for name, kind in (("license", dict), ("sha256", dict), ("key_id", str), ("signature", str)):
        if not isinstance(document.get(name), kind):
            raise _malformed(f"{name!r} is missing or not a {kind.__name__}")
    for name in FIELDS:
        if name not in document["license"]:
            raise _malformed(f"license field {name!r} is missing")
        if not isinstance(document["sha256"].get(name), str):
            raise _malformed(f"digest of {name!r} is missing")
    return document


def verify_license_file(
    data: bytes, public_key: Ed25519PublicKey | None = None, today: datetime.date | None = None
) -> LicenseFileContent:
    """The license in the file if it is genuine, unchanged and not expired; otherwise raises
    LicenseFileError saying what is wrong (malformed, wrong_key, tampered with the field, expired)."""
    public_key = public_key or signing_key().public_key()
    document = _parse(data)
    expected_kid = key_id(public_key)
    if document["key_id"] != expected_kid:
        raise LicenseFileError(
            "wrong_key",
            f"wrong key: the file was signed with key {document['key_id']}, this licensing service "
            f"verifies with key {expected_kid}",
        )
    try:
        signature = base64.b64decode(document["signature"], validate=True)
    except ValueError:
        raise _malformed("signature is not base64") from None
    signed = {"format": document["format"], "key_id": document["key_id"], "sha256": document["sha256"]}
    try:
        public_key.verify(signature, _canonical(signed))
    except InvalidSignature:
        raise LicenseFileError(
            "tampered", "tampered: the signature does not match the file's digests", field="signature"
        ) from None
    values = document["license"]
    for name in FIELDS:
        value = values[name]
        if not (value is None or isinstance(value, str)) or document["sha256"][name] != _digest(
            name, "" if value is None else value
        ):
            raise LicenseFileError(
                "tampered", f"tampered: field {name} ({value!r}) is not what was signed", field=name
            )
    try:
        expires = datetime.date.fromisoformat(values["expires"]) if values["expires"] else None
        issued_at = datetime.datetime.fromisoformat(values["issued_at"])
    except (TypeError, ValueError) as exc:  # signed, so only a bug could get here
        raise _malformed(f"dates: {exc}") from None
    content = LicenseFileContent(
        values["unit_id"], values["service"], values["pack_id"], expires, issued_at, document["key_id"]
    )
    today = today or clock.today()
    if expires is not None and expires < today:
        raise LicenseFileError(
            "expired",
            f"expired on {expires.isoformat()} (today is {today.isoformat()}): {content.describe()}",
        )
    return content
