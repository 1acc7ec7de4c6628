"""UMS notifications (docs/DOMAIN.md 1.1, 1.4, 2.6, 5.4): a registered pack with fewer free licenses
than the limit, a pack whose licenses are all used (warning), a pack expiring in 120, 60 or 7 days,
and devices waiting for a license. Each is recorded once while its condition holds and mailed once
to the administrators.

One check (``check_notifications``) runs on a schedule, and any number of checks may run at once:

- every condition has a key; the database keeps one open notification per key (a partial unique
  constraint), so of two checks raising the same one, one inserts and the other finds it;
- mails go after the commit, each claimed first with one conditional UPDATE, so one worker sends it;
- a notification whose condition is gone is resolved; the same condition coming back later raises a
  new one.

Time comes only from ``ald_portal.clock``; days before expiry are counted in local calendar days
(``clock.today()``, TIME_ZONE), so a daylight-saving change does not move a notification."""

import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from ald_portal import clock

from .models import DeploymentSettings, LicenseWait, Notification, RegisteredPack, WaitingReason

log = logging.getLogger(__name__)

# Reminders before a pack expires, as IGEL sends them for subscriptions (docs/DOMAIN.md 1.1).
EXPIRY_WINDOWS = (120, 60, 7)
MAIL_ATTEMPTS = 5  # a mail that keeps failing is given up after this many tries
MAIL_CLAIM = timedelta(minutes=5)  # how long a worker may take to send one mail
MAIL_BATCH = 100

Kind, Level = Notification.Kind, Notification.Level


@dataclass
class Draft:
    """A notification to raise if no open one has its key."""

    key: str
    kind: str
    level: str
    subject: str
    message: str
    pack_id: str = ""
    snapshot: dict = field(default_factory=dict)


@dataclass
class CheckReport:
    raised: list = field(default_factory=list)  # keys this check inserted
    resolved: list = field(default_factory=list)  # keys whose condition cleared

    def as_dict(self):
        return {"raised": self.raised, "resolved": self.resolved}


# --- conditions --------------------------------------------------------------------------------------
def packs_in_force(today):
    """Registered packs whose counts and dates matter: active in the UMS, usable at the licensing
    service, not expired. A deactivated, archived or expired pack raises nothing."""
    return (
        RegisteredPack.objects.filter(active=True, ils_usable=True)
        .filter(Q(expiry_date__isnull=True) | Q(expiry_date__gte=today))
        .order_by("registered_at", "pk")
    )


def expiry_key(window: int, pack_id: str, expiry) -> str:
    # The expiry date is part of the key: a renewed pack is reminded again for its new date.
    return f"pack-expiry-{window}:{pack_id}:{expiry.isoformat()}"


def _pack_conditions(p: RegisteredPack, today, threshold: int) -> tuple[set, list]:
    """(keys of the conditions that hold, drafts of the ones to raise) for one pack."""
    holding, drafts = set(), []
    counts = {"total": p.total, "used": p.used, "free": p.free}
    name = f"Pack {p.pack_id} ({p.product_name})"
    if 0 < p.free < threshold:
        key = f"pack-low:{p.pack_id}"
        holding.add(key)
        drafts.append(
            Draft(
                key,
                Kind.PACK_LOW,
                Level.INFO,
                f"Pack {p.pack_id}: {p.free} free license(s) left",
                f"{name} has {p.free} free license(s) of {p.total} ({p.used} used), fewer than the "
                f"notification limit of {threshold}.",
                p.pack_id,
                {**counts, "limit": threshold},
            )
        )
    if p.total > 0 and p.free == 0:
        key = f"pack-used-up:{p.pack_id}"
        holding.add(key)
        over = f" Usage exceeds the total by {p.used - p.total}." if p.used > p.total else ""
        drafts.append(
            Draft(
                key,
                Kind.PACK_USED_UP,
                Level.WARNING,
                f"Pack {p.pack_id}: all {p.total} license(s) used",
                f"{name}: all {p.total} license(s) are used ({p.used} used).{over} Automatic License "
                "Deployment takes no more licenses from it; devices that need one wait.",
                p.pack_id,
                counts,
            )
        )
    if p.expiry_date is not None:
        days = (p.expiry_date - today).days  # calendar days, local time: no DST arithmetic
        due = [w for w in EXPIRY_WINDOWS if 0 <= days <= w]
        holding.update(expiry_key(w, p.pack_id, p.expiry_date) for w in due)
        if due:
            # Only the nearest window is raised: a pack first seen 50 days before expiry gets the
            # 60-day reminder, not the 120-day one too.
            window = min(due)
            when = "today" if days == 0 else f"in {days} day(s)"
            drafts.append(
                Draft(
                    expiry_key(window, p.pack_id, p.expiry_date),
                    Kind.PACK_EXPIRY,
                    Level.WARNING if window <= 7 else Level.INFO,
                    f"Pack {p.pack_id} expires {when}, on {p.expiry_date.isoformat()}",
                    f"{name} expires {when}, on {p.expiry_date.isoformat()} ({window}-day reminder). "
                    f"{p.used} of {p.total} license(s) are used. Renew it in the License Portal and "
                    "refresh the registered packs, or register a pack with a later expiry.",
                    p.pack_id,
                    {**counts, "expiry_date": p.expiry_date.isoformat(), "days_left": days, "window": window},
                )
            )
    return holding, drafts


def _waits_snapshot(rows) -> dict:
    waits = defaultdict(list)
    reasons = set()
    for device_id, service, reason in rows:
        waits[service].append(device_id)
        reasons.add(f"{service}:{reason}")
    return {"waits": {s: sorted(ids) for s, ids in sorted(waits.items())}, "reasons": sorted(reasons)}


def _waiting_condition(last: Notification | None) -> tuple[set, list]:
    """Devices waiting for a license: one summary, raised again only when a device starts waiting
    that the last one did not include, or a reason appears that it did not list."""
    rows = list(
        LicenseWait.objects.order_by("service", "device_id").values_list("device_id", "service", "reason")
    )
    if not rows:
        return set(), []
    current = _waits_snapshot(rows)
    if last is not None:
        before = last.snapshot or {}
        old_waits = {s: set(ids) for s, ids in (before.get("waits") or {}).items()}
        grew = any(not set(ids) <= old_waits.get(s, set()) for s, ids in current["waits"].items())
        new_reason = not set(current["reasons"]) <= set(before.get("reasons") or ())
        if not grew and not new_reason:
            return {last.key}, []  # the same devices or fewer: keep the notification, no new mail
    digest = hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()[:20]
    counts = Counter((service, reason) for _d, service, reason in rows)
    devices = len({d for d, _s, _r in rows})
    labels = dict(WaitingReason.choices)
    lines = [
        f"{service}: {n} device(s) - {labels.get(reason, reason)}"
        for (service, reason), n in sorted(counts.items())
    ]
    key = f"waiting:{digest}"
    draft = Draft(
        key,
        Kind.WAITING,
        Level.WARNING,
        f"{devices} device(s) waiting for a license",
        f"{devices} device(s) wait for a license:\n" + "\n".join(lines),
        "",
        {**current, "counts": [[s, r, n] for (s, r), n in sorted(counts.items())]},
    )
    return {key}, [draft]


# --- the check ---------------------------------------------------------------------------------------
def check_notifications() -> CheckReport:
    """Raise the notifications whose conditions hold, resolve the ones whose conditions cleared, and
    mail the new ones once the rows are committed. Safe to run twice, late, or concurrently."""
    report = CheckReport()
    now, today = clock.now(), clock.today()
    # Open notifications are read before the conditions: a check that sees a condition from before
    # another check resolved it also saw the notification still open, and raises nothing.
    open_rows = dict(Notification.objects.filter(resolved_at__isnull=True).values_list("key", "pk"))
    last_waiting = (
        Notification.objects.filter(resolved_at__isnull=True, kind=Kind.WAITING)
        .order_by("-created_at", "-pk")
        .only("pk", "key", "snapshot")
        .first()
    )
    threshold = DeploymentSettings.load().notify_free_below
    holding, drafts = set(), []
    for pack in packs_in_force(today):
        h, d = _pack_conditions(pack, today, threshold)
        holding |= h
        drafts += d
    h, d = _waiting_condition(last_waiting)
    holding |= h
    drafts += d

    cleared = {key: pk for key, pk in open_rows.items() if key not in holding}
    if cleared:
        Notification.objects.filter(pk__in=cleared.values(), resolved_at__isnull=True).update(resolved_at=now)
        report.resolved = sorted(cleared)
    for draft in drafts:
        if draft.key in open_rows:
            continue
        if _raise(draft, now):
            report.raised.append(draft.key)
    if report.raised or report.resolved:
        log.info("notifications: raised %s, cleared %s", report.raised, report.resolved)
    # After the commit: a mail never announces a row that was rolled back. Outside a transaction
    # this runs at once.
    transaction.on_commit(send_pending_mails)
    return report


def _raise(draft: Draft, now) -> bool:
    """Insert the notification unless an open one with its key exists; True if this call made it."""
    with transaction.atomic():
        _row, created = Notification.objects.get_or_create(
            key=draft.key,
            resolved_at__isnull=True,
            defaults={
                "kind": draft.kind,
                "level": draft.level,
                "pack_id": draft.pack_id,
                "subject": draft.subject[:200],
                "message": draft.message,
                "snapshot": draft.snapshot,
                "created_at": now,
            },
        )
    return created


# --- mail --------------------------------------------------------------------------------------------
def recipients() -> list[str]:
    """E-mail addresses of the active superusers and of the users who may change the deployment
    settings (directly or through a group)."""
    User = get_user_model()
    email = User.get_email_field_name()
    perm = Permission.objects.filter(content_type__app_label="devices", codename="change_deploymentsettings")
    addresses = (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(user_permissions__in=perm) | Q(groups__permissions__in=perm))
        .exclude(**{email: ""})
        .exclude(**{f"{email}__isnull": True})
        .values_list(email, flat=True)
        .order_by(email)
        .distinct()
    )
    unique = {}
    for address in addresses:
        unique.setdefault(address.strip().lower(), address.strip())
    return sorted(unique.values(), key=str.lower)


def _mail_text(n: Notification) -> tuple[str, str]:
    subject = f"[{settings.PORTAL_UMS_NAME}] {n.subject}"
    level = Notification.Level(n.level).label
    body = (
        f"{level}: {n.subject}\n\n{n.message}\n\n"
        f"Raised {timezone.localtime(n.created_at):%Y-%m-%d %H:%M}. All notifications: "
        f"{reverse('devices:notifications')} in the portal.\n"
    )
    return subject, body


def send_pending_mails(limit: int = MAIL_BATCH) -> int:
    """Mail the open notifications not mailed yet (or whose mail failed); returns how many went out.
    Each mail is claimed with one conditional UPDATE first, so concurrent workers send it once."""
    now = clock.now()
    claimable = Q(mail_claimed_until__isnull=True) | Q(mail_claimed_until__lte=now)
    due = list(
        Notification.objects.filter(
            resolved_at__isnull=True,
            mail_status__in=[Notification.MailStatus.PENDING, Notification.MailStatus.FAILED],
            mail_attempts__lt=MAIL_ATTEMPTS,
        )
        .filter(claimable)
        .order_by("created_at", "pk")[:limit]
    )
    sent, to = 0, None
    for n in due:
        claimed = (
            Notification.objects.filter(pk=n.pk, mail_status=n.mail_status, mail_attempts=n.mail_attempts)
            .filter(claimable)
            .update(mail_claimed_until=now + MAIL_CLAIM, mail_attempts=F("mail_attempts") + 1)
        )
        if not claimed:
            continue  # another worker has it
        if to is None:
            to = recipients()
        mine = Notification.objects.filter(pk=n.pk)
        if not to:
            mine.update(mail_status=Notification.MailStatus.NO_RECIPIENTS, mail_claimed_until=None)
            continue
        subject, body = _mail_text(n)
        try:
            send_mail(subject, body, None, to)
        except Exception as exc:  # SMTP down, refused, ...: kept and tried again by the next check
            log.warning("notification %s: mail failed: %s", n.key, exc)
            mine.update(
                mail_status=Notification.MailStatus.FAILED,
                mail_error=f"{type(exc).__name__}: {exc}"[:500],
                mail_claimed_until=None,
            )
            continue
        mine.update(
            mail_status=Notification.MailStatus.SENT,
            mailed_at=clock.now(),
            mailed_to=", ".join(to),
            mail_error="",
            mail_claimed_until=None,
        )
        sent += 1
    return sent
