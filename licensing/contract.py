"""What the licensing service (ILS) answers, in plain values: the same shapes travel in-process or as
JSON over HTTP, so the UMS side never holds a licensing model instance."""

import datetime
import hashlib
from dataclasses import asdict, dataclass, field
from typing import NamedTuple


class LicenseErrorCode:
    NO_FREE_LICENSE = "no_free_license"
    PACK_EXPIRED = "pack_expired"
    PACK_NOT_ACTIVE = "pack_not_active"
    PACK_NOT_ASSIGNED = "pack_not_assigned"
    UNKNOWN_PACK = "unknown_pack"
    UNKNOWN_UNIT_ID = "unknown_unit_id"
    EULA_NOT_ACCEPTED = "eula_not_accepted"
    # the caller, not the pack: a UMS ID the ILP does not know, a bad signature or stale timestamp,
    # an unknown ALD token; or an ALD token that was deleted in the License Portal
    BAD_CREDENTIAL = "bad_credential"
    REVOKED_CREDENTIAL = "revoked_credential"
    BAD_REQUEST = "bad_request"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


CREDENTIAL_ERRORS = (LicenseErrorCode.BAD_CREDENTIAL, LicenseErrorCode.REVOKED_CREDENTIAL)

# --- the ILS HTTP API's request signature (docs/ILS_API.md) ------------------------------------------
API_PREFIX = "/ils/v1/"
HEADER_IDEMPOTENCY_KEY = "Idempotency-Key"
HEADER_UMS_ID = "X-UMS-ID"
HEADER_TIMESTAMP = "X-UMS-Timestamp"
HEADER_SIGNATURE = "X-UMS-Signature"
TOKEN_SCHEME = "ALD-Token"
# A signed request older or newer than this (seconds, by the ILS's clock) is refused.
MAX_CLOCK_SKEW = 300


def signing_payload(method: str, path: str, timestamp: str, idempotency_key: str, body: bytes) -> bytes:
    """What a UMS signs with its UMS ID's private key: method, path with query, timestamp,
    idempotency key and the SHA-256 of the body, one per line."""
    return "\n".join(
        [method.upper(), path, timestamp, idempotency_key, hashlib.sha256(body or b"").hexdigest()]
    ).encode()


def certificate_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a certificate, as the UMS and the ILP show it (AB:CD:...)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


class LicenseServiceError(Exception):
    """A request the licensing service refuses as a whole; ``code`` is one of LicenseErrorCode."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PackInfo:
    pack_id: str
    product_name: str
    product_type: str
    service: str
    total: int
    used: int
    start_date: datetime.date
    expiry_date: datetime.date | None
    status: str
    usable: bool
    comment: str = ""

    @property
    def free(self):
        return self.total - self.used

    def as_dict(self):
        return asdict(self)

    def as_json(self):
        data = asdict(self)
        data["start_date"] = self.start_date.isoformat()
        data["expiry_date"] = self.expiry_date.isoformat() if self.expiry_date else None
        return data

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        data["start_date"] = datetime.date.fromisoformat(data["start_date"])
        data["expiry_date"] = (
            datetime.date.fromisoformat(data["expiry_date"]) if data["expiry_date"] else None
        )
        return cls(**data)


class Grant(NamedTuple):
    """A slot bound to a unit ID (a tuple: a request grants thousands)."""

    unit_id: str
    pack_id: str
    expiry_date: datetime.date | None
    bound_at: datetime.datetime
    already_held: bool = False

    def as_json(self):
        return {
            "unit_id": self.unit_id,
            "pack_id": self.pack_id,
            "expiry_date": self.expiry_date.isoformat() if self.expiry_date else None,
            "bound_at": self.bound_at.isoformat(),
            "already_held": self.already_held,
        }

    @classmethod
    def from_json(cls, data):
        return cls(
            unit_id=data["unit_id"],
            pack_id=data["pack_id"],
            expiry_date=datetime.date.fromisoformat(data["expiry_date"]) if data["expiry_date"] else None,
            bound_at=datetime.datetime.fromisoformat(data["bound_at"]),
            already_held=bool(data["already_held"]),
        )


@dataclass
class AllocationResult:
    pack: PackInfo
    granted: list[Grant] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)  # unit ID -> LicenseErrorCode

    def as_json(self):
        return {
            "pack": self.pack.as_json(),
            "granted": [g.as_json() for g in self.granted],
            "denied": dict(self.denied),
        }

    @classmethod
    def from_json(cls, data):
        return cls(
            pack=PackInfo.from_json(data["pack"]),
            granted=[Grant.from_json(g) for g in data["granted"]],
            denied=dict(data["denied"]),
        )
