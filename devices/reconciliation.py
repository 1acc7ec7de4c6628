"""Reconciliation: do the UMS's device licenses and the licensing service's slots agree?

The licensing service first recomputes each pack's used counter from its slots. Then the two sides
are compared: slots no device license stands for (a device deleted without its licenses, a worker
that died), device licenses without a slot (hardware removed in the License Portal), and unit IDs
holding slots in several packs of one service that are not an exchange or renewal in progress."""

from collections import defaultdict

from django.db import transaction

from ald_portal import clock

from .ils import IlsUnavailable, get_client
from .models import DeploymentEvent, DeviceLicense, LicenseStatus, ReconciliationReport, RegisteredPack
from .services import ums_identity


def reconcile(actor: str = "ALD") -> ReconciliationReport:
    conf = ums_identity()
    client = get_client(conf.ums_id_fingerprint)
    try:
        counters = client.reconcile_counters()
        slots = set(client.slots())
        # A license names the pack it came from; after a merge in the License Portal its slot lives
        # on in the pack it was merged into.
        merged = client.merged_packs()
    except IlsUnavailable as exc:  # down, or this UMS not (yet) registered: say so, compare nothing
        DeploymentEvent.objects.create(
            at=clock.now(),
            actor=actor,
            action=DeploymentEvent.Action.RECONCILE,
            outcome=DeploymentEvent.Outcome.FAILED,
            message=f"Reconciliation not possible: {exc}"[:500],
        )
        raise
    licensed = {
        (merged.get(pack_id, pack_id), unit_id)
        for pack_id, unit_id in DeviceLicense.objects.exclude(status=LicenseStatus.REVOKED).values_list(
            "pack_id", "unit_id"
        )
    }
    service_of = dict(RegisteredPack.objects.values_list("pack_id", "service"))
    held = defaultdict(set)
    for pack_id, unit_id in slots:
        held[(unit_id, service_of.get(pack_id, pack_id))].add(pack_id)
    duplicates = [
        {"unit_id": unit, "service": service, "packs": sorted(packs)}
        for (unit, service), packs in sorted(held.items())
        if len(packs) > 1 and not all((p, unit) in licensed for p in packs)
    ]
    now = clock.now()
    with transaction.atomic():
        report = ReconciliationReport.objects.create(
            at=now,
            counters_corrected={k: list(v) for k, v in counters.items()},
            slots_without_license=[list(x) for x in sorted(slots - licensed)],
            licenses_without_slot=[list(x) for x in sorted(licensed - slots)],
            duplicates=duplicates,
        )
        DeploymentEvent.objects.create(
            at=now,
            actor=actor,
            action=DeploymentEvent.Action.RECONCILE,
            outcome=DeploymentEvent.Outcome.SUCCESS if report.clean else DeploymentEvent.Outcome.FAILED,
            message=report.summary()[:500],
        )
    return report
