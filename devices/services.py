"""Every write on the UMS side that has rules: deployment settings, registered packs, devices."""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction

from ald_portal import clock

from .ils import get_client
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    RegisteredPack,
    default_distribution_method,
)
from .schedules import ensure_sweep_schedule
from .tasks import enqueue_sweep

log = logging.getLogger(__name__)


def ums_identity() -> DeploymentSettings:
    """This installation's UMS ID: made once, on first use, and kept."""
    conf = DeploymentSettings.load()
    if not conf.ums_id_fingerprint:
        digest = hashlib.sha256(secrets.token_bytes(64)).hexdigest().upper()
        conf.ums_id_fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
        conf.ums_id_name = django_settings.PORTAL_UMS_NAME
        conf.save(update_fields=["ums_id_fingerprint", "ums_id_name"])
    return conf


SETTING_FIELDS = ("ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days")


def update_deployment_settings(actor: str, **changes) -> list[str]:
    """Change deployment settings; returns the human-readable changes made. Switching ALD on, or
    changing the sweep interval, takes effect at once (a sweep is queued, the schedule updated)."""
    unknown = set(changes) - set(SETTING_FIELDS)
    if unknown:
        raise ValidationError({f: f"{f!r} is not a deployment setting." for f in sorted(unknown)})
    for name in ("sweep_minutes", "exchange_days"):
        if name in changes:
            value = changes[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10080:
                raise ValidationError(
                    {name: f"{name} must be a whole number from 1 to 10080, not {value!r}."}
                )
    with transaction.atomic():
        conf = DeploymentSettings.objects.select_for_update().get(pk=DeploymentSettings.load().pk)
        made = []
        for name, value in changes.items():
            old = getattr(conf, name)
            if old != value:
                setattr(conf, name, value)
                label = DeploymentSettings._meta.get_field(name).verbose_name
                made.append(f"{label}: {old} -> {value}")
        if not made:
            return []
        conf.updated_at = clock.now()
        conf.save()
        DeploymentEvent.objects.create(
            actor=actor, action=DeploymentEvent.Action.SETTINGS, message="; ".join(made)[:500]
        )
        if "sweep_minutes" in changes:
            ensure_sweep_schedule(conf.sweep_minutes)
        if conf.ald_enabled and (changes.get("ald_enabled") or changes.get("exchange_enabled")):
            enqueue_sweep()
    return made


def _apply_pack_info(rp: RegisteredPack, info, now) -> bool:
    """Copy what the licensing service says onto the registered pack; True if it now offers more
    (more free licenses, a later expiry, or became usable)."""
    if rp.total is None:  # new registration
        gained = info.usable
    else:
        gained = (
            info.total - info.used > rp.total - rp.used
            or (info.usable and not rp.ils_usable)
            or (
                rp.expiry_date is not None and (info.expiry_date is None or info.expiry_date > rp.expiry_date)
            )
        )
    rp.product_name, rp.product_type, rp.service = info.product_name, info.product_type, info.service
    rp.total, rp.used = info.total, info.used
    rp.start_date, rp.expiry_date = info.start_date, info.expiry_date
    rp.ils_status, rp.ils_usable, rp.comment = info.status, info.usable, info.comment
    rp.refreshed_at = now
    return gained


def refresh_registered_packs(actor: str = "ALD") -> dict:
    """Refresh pack information from the licensing service, as the UMS refresh button does: packs
    assigned to this UMS ID appear as registered packs with their default distribution method; known
    ones get their counts and dates. A pack that now offers more triggers a sweep at once."""
    conf = ums_identity()
    infos = get_client(conf.ums_id_fingerprint).refresh_packs()
    now = clock.now()
    known = {rp.pack_id: rp for rp in RegisteredPack.objects.filter(pack_id__in=[i.pack_id for i in infos])}
    created, updated, gained = [], [], False
    with transaction.atomic():
        for offset, info in enumerate(infos):
            rp = known.get(info.pack_id)
            if rp is None:
                rp = RegisteredPack(
                    pack_id=info.pack_id,
                    # distinct, ordered registration times keep "earliest registered" well defined
                    registered_at=now + timedelta(milliseconds=offset),
                    distribution_method=default_distribution_method(info.product_type),
                )
                gained = _apply_pack_info(rp, info, now) or gained
                created.append(rp)
            else:
                gained = _apply_pack_info(rp, info, now) or gained
                updated.append(rp)
        RegisteredPack.objects.bulk_create(created)
        RegisteredPack.objects.bulk_update(
            updated,
            [
                "product_name",
                "product_type",
                "service",
                "total",
                "used",
                "start_date",
                "expiry_date",
                "ils_status",
                "ils_usable",
                "comment",
                "refreshed_at",
            ],
        )
        events = [
            DeploymentEvent(
                at=now,
                actor=actor,
                action=DeploymentEvent.Action.REGISTER_PACK,
                pack_id=rp.pack_id,
                service=rp.service,
                message=f"Pack {rp.pack_id} registered ({rp.get_distribution_method_display()})",
            )
            for rp in created
        ]
        if updated:
            events.append(
                DeploymentEvent(
                    at=now,
                    actor=actor,
                    action=DeploymentEvent.Action.REFRESH_PACK,
                    message=f"{len(updated)} registered pack(s) refreshed from the licensing service",
                )
            )
        DeploymentEvent.objects.bulk_create(events)
        if gained and conf.ald_enabled:
            enqueue_sweep()
    return {"registered": [rp.pack_id for rp in created], "refreshed": [rp.pack_id for rp in updated]}
