"""What the licensing service (ILS) answers, in plain values: the same shapes travel in-process or as
JSON over HTTP, so the UMS side never holds a licensing model instance."""

import datetime
from dataclasses import asdict, dataclass, field


class LicenseErrorCode:
    NO_FREE_LICENSE = "no_free_license"
    PACK_EXPIRED = "pack_expired"
    PACK_NOT_ACTIVE = "pack_not_active"
    PACK_NOT_ASSIGNED = "pack_not_assigned"
    UNKNOWN_PACK = "unknown_pack"
    UNKNOWN_UNIT_ID = "unknown_unit_id"
    EULA_NOT_ACCEPTED = "eula_not_accepted"


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


@dataclass(frozen=True)
class Grant:
    unit_id: str
    pack_id: str
    expiry_date: datetime.date | None
    bound_at: datetime.datetime
    already_held: bool = False


@dataclass
class AllocationResult:
    pack: PackInfo
    granted: list[Grant] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)  # unit ID -> LicenseErrorCode
