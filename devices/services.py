"""Every write on the UMS side that has rules: deployment settings, registered packs, devices."""

import logging
import re
from datetime import timedelta

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from ald_portal import clock

from .directories import paths
from .ils import get_client, make_ums_key_pair
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    Directory,
    DistributionMethod,
    LicenseStatus,
    RegisteredPack,
    UmsAldToken,
    default_distribution_method,
)
from .schedules import ensure_sweep_schedule
from .tasks import enqueue_sweep

log = logging.getLogger(__name__)


def ums_identity() -> DeploymentSettings:
    """This installation's UMS ID: a key pair made once, on first use (the installation), and kept.
    The private key stays in this database; the certificate's SHA-256 fingerprint is the UMS ID the
    License Portal knows. Two processes starting at once make one: the second waits for the first's
    row lock and finds the key set."""
    conf = DeploymentSettings.load()
    if conf.ums_id_fingerprint and conf.ums_id_private_key_pem:
        return conf
    with transaction.atomic():
        conf = DeploymentSettings.objects.select_for_update().get(pk=conf.pk)
        if not conf.ums_id_private_key_pem:
            _new_key_pair(conf)
    return conf


def _new_key_pair(conf, actor="UMS"):
    old = conf.ums_id_fingerprint
    conf.ums_id_name = conf.ums_id_name or django_settings.PORTAL_UMS_NAME
    private_pem, cert_pem, fingerprint = make_ums_key_pair(conf.ums_id_name)
    conf.ums_id_private_key_pem, conf.ums_id_certificate_pem = private_pem, cert_pem
    conf.ums_id_fingerprint = fingerprint
    conf.save(
        update_fields=[
            "ums_id_fingerprint",
            "ums_id_name",
            "ums_id_private_key_pem",
            "ums_id_certificate_pem",
        ]
    )
    if not old:
        log.info("UMS ID made: %s", fingerprint)
        return
    message = (
        f"New UMS ID {fingerprint} replaces {old}: in the License Portal use Change UMS ID with the "
        "new certificate, so that the packs assigned to the old one stay with this UMS"
    )
    DeploymentEvent.objects.create(actor=actor, action=DeploymentEvent.Action.SETTINGS, message=message[:500])
    log.warning(message)


def new_ums_id(actor: str) -> DeploymentSettings:
    """Make a new key pair for this UMS (a compromised key, a migration): the old UMS ID stops
    working at the licensing service until the new certificate is registered with *Change UMS ID*."""
    with transaction.atomic():
        conf = DeploymentSettings.objects.select_for_update().get(pk=DeploymentSettings.load().pk)
        _new_key_pair(conf, actor)
    return conf


SETTING_FIELDS = (
    "ald_enabled",
    "sweep_minutes",
    "exchange_enabled",
    "exchange_days",
    "notify_free_below",
    "proxy_enabled",
    "proxy_host",
    "proxy_port",
    "proxy_user",
    "proxy_password",
)
NOTIFY_FREE_BELOW_MAX = 100_000


def _setting_text(value) -> str:
    """A setting's value as the executed action shows it: switches read on and off."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "(none)" if value in (None, "") else str(value)


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
    if "notify_free_below" in changes:
        value = changes["notify_free_below"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= NOTIFY_FREE_BELOW_MAX:
            raise ValidationError(
                {
                    "notify_free_below": "notify_free_below must be a whole number from 0 to "
                    f"{NOTIFY_FREE_BELOW_MAX}, not {value!r}."
                }
            )
    if "proxy_port" in changes:
        value = changes["proxy_port"]
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535
        ):
            raise ValidationError(
                {"proxy_port": f"proxy_port must be a port from 1 to 65535, not {value!r}."}
            )
    with transaction.atomic():
        conf = DeploymentSettings.objects.select_for_update().get(pk=DeploymentSettings.load().pk)
        made = []
        for name, value in changes.items():
            old = getattr(conf, name)
            if old != value:
                setattr(conf, name, value)
                label = DeploymentSettings._meta.get_field(name).verbose_name
                if name == "proxy_password":  # never written into the log
                    made.append(f"{label} changed")
                else:
                    made.append(f"{label}: {_setting_text(old)} -> {_setting_text(value)}")
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


PACK_INFO_FIELDS = {
    # RegisteredPack field: PackInfo attribute
    "product_name": "product_name",
    "product_type": "product_type",
    "service": "service",
    "total": "total",
    "used": "used",
    "start_date": "start_date",
    "expiry_date": "expiry_date",
    "ils_status": "status",
    "ils_usable": "usable",
    "comment": "comment",
}


def _offers_more(rp: RegisteredPack, info) -> bool:
    """More free licenses, a later expiry, or usable again: waiting devices may now be served."""
    if rp.total is None:  # a new registration
        return info.usable
    later = rp.expiry_date is not None and (info.expiry_date is None or info.expiry_date > rp.expiry_date)
    return info.free > rp.total - rp.used or (info.usable and not rp.ils_usable) or later


def _apply_pack_info(rp: RegisteredPack, info) -> list[str]:
    """Copy what the licensing service says onto the registered pack; return what changed."""
    changed = []
    for field, attr in PACK_INFO_FIELDS.items():
        old, new = getattr(rp, field), getattr(info, attr)
        if old != new:
            if rp.pk is not None:
                changed.append(f"{field}: {old} -> {new}")
            setattr(rp, field, new)
    return changed


def refresh_registered_packs(actor: str = "ALD", trigger_sweep: bool = True) -> dict:
    """Refresh pack information from the licensing service, as the UMS refresh button does: packs
    assigned to this UMS ID appear as registered packs with their default distribution method; known
    ones get their counts and dates. A pack that now offers more triggers a sweep at once."""
    conf = ums_identity()
    client = get_client(conf.ums_id_fingerprint)
    infos = client.refresh_packs()
    via_token = client.packs_via_token()
    merged = client.merged_packs()  # asked before the transaction: no I/O while it holds locks
    now = clock.now()
    known = {rp.pack_id: rp for rp in RegisteredPack.objects.filter(pack_id__in=[i.pack_id for i in infos])}
    created, updated, events, gained = [], [], [], False
    for offset, info in enumerate(infos):
        rp = known.get(info.pack_id)
        if rp is None and info.status == "MERGED":
            continue  # a pack merged away before this UMS knew it has nothing to register
        if rp is None:
            rp = RegisteredPack(
                pack_id=info.pack_id,
                # distinct, ordered registration times keep "earliest registered" well defined
                registered_at=now + timedelta(milliseconds=offset),
                # A pack that came with an ALD token (a service provider's UMS serving several
                # companies) selects no device until its directory conditions are set.
                distribution_method=DistributionMethod.CONDITIONS
                if info.pack_id in via_token
                else default_distribution_method(info.product_type),
            )
            created.append(rp)
        gained = _offers_more(rp, info) or gained
        changes = _apply_pack_info(rp, info)
        rp.refreshed_at = now
        if rp.pk is None:
            events.append(
                DeploymentEvent(
                    at=now,
                    actor=actor,
                    action=DeploymentEvent.Action.REGISTER_PACK,
                    pack_id=rp.pack_id,
                    service=rp.service,
                    message=f"Pack {rp.pack_id} registered ({rp.get_distribution_method_display()})",
                )
            )
        else:
            updated.append(rp)
            if changes:
                message = f"Pack {rp.pack_id} refreshed: " + "; ".join(changes)
                events.append(
                    DeploymentEvent(
                        at=now,
                        actor=actor,
                        action=DeploymentEvent.Action.REFRESH_PACK,
                        pack_id=rp.pack_id,
                        service=rp.service,
                        message=message[:500],
                    )
                )
    with transaction.atomic():
        RegisteredPack.objects.bulk_create(created)
        RegisteredPack.objects.bulk_update(updated, [*PACK_INFO_FIELDS, "refreshed_at"])
        events += _apply_merges(merged, actor, now)
        DeploymentEvent.objects.bulk_create(events)
        if gained and conf.ald_enabled and trigger_sweep:
            enqueue_sweep()
    _revoke_removed_hardware(client, infos, actor, now)
    return {"registered": [rp.pack_id for rp in created], "refreshed": [rp.pack_id for rp in updated]}


def _apply_merges(merged: dict, actor, now) -> list[DeploymentEvent]:
    """A merge in the License Portal moved slots into another pack: the licenses follow them."""
    events = []
    for source, target in merged.items():
        moved = (
            DeviceLicense.objects.filter(pack_id=source)
            .exclude(status=LicenseStatus.REVOKED)
            .update(pack_id=target)
        )
        if moved:
            events.append(
                DeploymentEvent(
                    at=now,
                    actor=actor,
                    action=DeploymentEvent.Action.REFRESH_PACK,
                    pack_id=target,
                    message=f"{moved} license(s) of {source} now belong to {target} (merged in the License Portal)",
                )
            )
    return events


def _revoke_removed_hardware(client, infos, actor, now) -> None:
    """A "Remove hardware" in the License Portal freed a slot while the device still holds the
    license: revoke it and keep the device out of ALD until an administrator clears that (it was
    removed by hand, on purpose). The licensing service is asked outside the transaction."""
    # A pack whose used count is below the licenses this UMS holds from it lost slots.
    held = dict(
        DeviceLicense.objects.exclude(status=LicenseStatus.REVOKED)
        .values("pack_id")
        .annotate(n=Count("unit_id", distinct=True))
        .values_list("pack_id", "n")
    )
    shrunk = [i.pack_id for i in infos if i.used < held.get(i.pack_id, 0)]
    if not shrunk:
        return
    slots = set(client.slots(shrunk))
    lost = [
        row
        for row in DeviceLicense.objects.filter(pack_id__in=shrunk)
        .exclude(status=LicenseStatus.REVOKED)
        .values_list("pk", "device_id", "unit_id", "pack_id", "service")
        if (row[3], row[2]) not in slots
    ]
    if not lost:
        return
    reasons, events = {}, []
    for _, device_id, unit_id, pack_id, service in lost:
        reason = f"hardware {unit_id} removed from {pack_id} in the License Portal on {now:%Y-%m-%d}"
        if device_id not in reasons:
            reasons[device_id] = reason
            events.append(
                DeploymentEvent(
                    at=now,
                    actor=actor,
                    action=DeploymentEvent.Action.REMOVE,
                    device_id=device_id,
                    unit_id=unit_id,
                    pack_id=pack_id,
                    service=service,
                    message=f"{service} license revoked: {reason}; device excluded from ALD",
                )
            )
    with transaction.atomic():
        DeviceLicense.objects.filter(pk__in=[r[0] for r in lost]).update(
            status=LicenseStatus.REVOKED, revoked_at=now
        )
        for device_id, reason in reasons.items():  # one per device whose hardware was removed
            Device.objects.filter(pk=device_id).update(ald_excluded=True, ald_excluded_reason=reason[:300])
        DeploymentEvent.objects.bulk_create(events)


def set_pack_active(pack_id: str, active: bool, actor: str) -> bool:
    """Deactivate a registered pack (kept, but never used for deployment) or activate it again.
    Returns False when it already was so. Activating queues a sweep, as new free licenses do."""
    with transaction.atomic():
        changed = RegisteredPack.objects.filter(pack_id=pack_id).exclude(active=active).update(active=active)
        if not RegisteredPack.objects.filter(pack_id=pack_id).exists():
            raise ValidationError({"pack_id": f"Pack {pack_id!r} is not registered in this UMS."})
        if changed:
            DeploymentEvent.objects.create(
                actor=actor,
                action=DeploymentEvent.Action.PACK_ACTIVE,
                pack_id=pack_id,
                message=f"Pack {pack_id} {'activated' if active else 'deactivated'}",
            )
            if active and DeploymentSettings.load().ald_enabled:
                enqueue_sweep()
    return bool(changed)


def set_distribution(pack_id: str, method: str, directory_ids, actor: str) -> str:
    """View/Edit Distribution Conditions of a registered pack: the automatic distribution method and,
    for *Enabled (with conditions)*, the directories whose devices (with their subdirectories) may
    get its licenses. Returns what changed ("" for nothing); every change is an executed action.
    A looser condition may serve waiting devices, so it queues a sweep when ALD is on."""
    if method not in DistributionMethod.values:
        raise ValidationError(
            {
                "distribution_method": f"Distribution method {method!r} is not one of "
                + ", ".join(DistributionMethod.values)
                + "."
            }
        )
    wanted = set()
    for raw in directory_ids or ():
        try:
            wanted.add(int(raw))
        except (TypeError, ValueError):
            raise ValidationError({"directories": f"Directory {raw!r} is not a directory ID."}) from None
    known = set(Directory.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted - known:
        missing = ", ".join(str(d) for d in sorted(wanted - known))
        raise ValidationError({"directories": f"Directory {missing} does not exist."})
    if method == DistributionMethod.CONDITIONS and not wanted:
        raise ValidationError(
            {"directories": "Enabled (with conditions) needs at least one directory; none was chosen."}
        )
    if method != DistributionMethod.CONDITIONS and wanted:
        raise ValidationError(
            {
                "directories": f"Directories are conditions of Enabled (with conditions) only, not of "
                f"{DistributionMethod(method).label}."
            }
        )
    with transaction.atomic():
        rp = RegisteredPack.objects.select_for_update().filter(pack_id=pack_id).first()
        if rp is None:
            raise ValidationError({"pack_id": f"Pack {pack_id!r} is not registered in this UMS."})
        before_dirs = set(rp.condition_directories.values_list("pk", flat=True))
        if rp.distribution_method == method and before_dirs == wanted:
            return ""
        names = dict(paths())
        old = DistributionMethod(rp.distribution_method).label
        new = DistributionMethod(method).label
        if wanted:
            new += ": " + ", ".join(sorted(names[d] for d in wanted))
        if before_dirs:
            old += ": " + ", ".join(sorted(names.get(d, str(d)) for d in before_dirs))
        rp.distribution_method = method
        rp.save(update_fields=["distribution_method"])
        rp.condition_directories.set(wanted)
        message = f"Distribution of pack {pack_id}: {old} -> {new}"
        DeploymentEvent.objects.create(
            actor=actor,
            action=DeploymentEvent.Action.SETTINGS,
            pack_id=pack_id,
            service=rp.service,
            message=message[:500],
        )
        if method != DistributionMethod.DISABLED and DeploymentSettings.load().ald_enabled:
            enqueue_sweep()
    return message


# --- ALD tokens registered in this UMS (Register Pack, token dialog) ------------------------------------
ALD_TOKEN_RE = re.compile(r"^ald_[A-Za-z0-9_-]{20,96}$")


def register_ald_token(token: str, actor: str, check: bool = False) -> UmsAldToken:
    """Register an ALD token from the License Portal: the packs of its subscription key become
    available to this UMS with the next refresh. With ``check`` the licensing service is asked first
    (the token validation dialog), and a token it refuses is not registered."""
    token = (token or "").strip()
    if not ALD_TOKEN_RE.match(token):
        shown = token[:10] + ("…" if len(token) > 10 else "")
        raise ValidationError(
            {"token": f"ALD token {shown!r} is not of the form ald_ and 20 or more letters or digits."}
        )
    if UmsAldToken.objects.filter(token=token).exists():
        raise ValidationError({"token": f"ALD token {token[:10]}… is registered already."})
    if check:
        from .ils import IlsUnavailable

        client = get_client()
        try:
            packs = client._call(token, "packs")
        except IlsUnavailable as exc:
            raise ValidationError({"token": f"ALD token {token[:10]}… was not accepted: {exc}"}) from exc
        log.info("ALD token %s… gives %d pack(s)", token[:10], len(packs))
    with transaction.atomic():
        row = UmsAldToken.objects.create(token=token, hint=token[:10], registered_by=actor[:200])
        DeploymentEvent.objects.create(
            actor=actor, action=DeploymentEvent.Action.SETTINGS, message=f"ALD token {row.hint}… registered"
        )
    return row


def remove_ald_token(token_pk: int, actor: str) -> UmsAldToken:
    """Remove a registered ALD token; the packs it brought stay registered with their last counts but
    cannot take new licenses through it."""
    with transaction.atomic():
        row = UmsAldToken.objects.filter(pk=token_pk).first()
        if row is None:
            raise ValidationError({"token": f"No registered ALD token {token_pk}."})
        row.delete()
        DeploymentEvent.objects.create(
            actor=actor, action=DeploymentEvent.Action.SETTINGS, message=f"ALD token {row.hint}… removed"
        )
    return row


def check_connection() -> str:
    """*Test connection / Check UMS ID registration*: ask the licensing service for this UMS's packs
    and say through which credential they come. Changes nothing; raises IlsUnavailable (or
    IlsCredentialRefused) when it cannot be asked."""
    client = get_client()
    infos = client.refresh_packs()
    via_token = client.packs_via_token()
    where = django_settings.ILS_URL or "this portal (embedded)"
    return (
        f"The licensing service at {where} answers: {len(infos) - len(via_token)} pack(s) through the "
        f"UMS ID, {len(via_token)} through ALD tokens."
    )
