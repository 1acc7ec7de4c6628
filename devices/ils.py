"""How the UMS side talks to the licensing service (ILS): one small interface (docs/DESIGN.md section 2).

The in-process client, the embedded default, calls ``licensing.services`` on the same database. The
UMS side never writes licensing tables itself; it only holds the plain values the ILS answers."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from licensing import license_files
from licensing import services as ils
from licensing.contract import AllocationResult, PackInfo


class IlsUnavailable(Exception):
    """The licensing service could not be reached or did not answer; nothing is known to have
    happened there, so the request may be repeated."""


class InProcessLicensingClient:
    def __init__(self, ums_fingerprint: str):
        self.ums_fingerprint = ums_fingerprint

    def request_licenses(self, pack_id: str, unit_ids: list[str]) -> AllocationResult:
        return ils.request_licenses(pack_id, unit_ids, ums_fingerprint=self.ums_fingerprint)

    def refresh_packs(self) -> list[PackInfo]:
        return ils.packs_for_ums(self.ums_fingerprint)

    def release(self, pack_id: str, unit_id: str) -> bool:
        return ils.release_license(pack_id, unit_id)

    def slots(self, pack_ids=None) -> list[tuple[str, str]]:
        return ils.active_slots(self.ums_fingerprint, pack_ids)

    def reconcile_counters(self) -> dict[str, tuple[int, int]]:
        return ils.reconcile_pack_counters()

    def merged_packs(self) -> dict[str, str]:
        return ils.merged_pack_map()

    def license_file(self, unit_id, service, pack_id, expires, issued_at) -> bytes:
        """The signed license file the licensing service issues for this license."""
        return license_files.issue_license_file(unit_id, service, pack_id, expires, issued_at)


def get_client(ums_fingerprint: str):
    if settings.ILS_URL:
        raise ImproperlyConfigured(
            f"ILS_URL={settings.ILS_URL!r}: this build licenses in-process only; unset ILS_URL."
        )
    return InProcessLicensingClient(ums_fingerprint)
