"""The ALD engine (docs/DESIGN.md section 4, docs/DOMAIN.md section 2).

One cycle: find the devices that need a license per service, choose a pack for each (registered,
active, not expired, right type, free licenses, distribution condition matches, OS new enough; most
allocated first, then earliest registered), claim the devices, ask the licensing service pack by pack,
and record licenses, waiting states and executed actions. Work goes in batches with a bounded number
of queries per batch, never one per device. Any number of cycles may run at once: a device is worked
on only by the holder of its claim, and a claim left by a dead worker is replayed against the same
pack, so nothing is lost or doubled."""

import gc
import logging
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from ald_portal import clock
from ald_portal.bulk import ReusableQuery, insert_rows, refresh_statistics
from ald_portal.lookups import Values
from licensing.contract import LicenseServiceError
from licensing.models import ProductType

from .directories import parent_map, subtree
from .ils import IlsUnavailable, get_client
from .models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceLicense,
    Directory,
    DistributionMethod,
    LicenseRequest,
    LicenseSource,
    LicenseStatus,
    LicenseWait,
    RegisteredPack,
    WaitingReason,
    version_key,
)

log = logging.getLogger(__name__)

LICENSE_FIELDS = [
    "device_id",
    "unit_id",
    "service",
    "pack_id",
    "product_type",
    "issued_at",
    "expires_at",
    "is_demo",
    "source",
    "status",
]
SUCCESS = DeploymentEvent.Outcome.SUCCESS.value

# Executed actions are written as plain rows in bulk (ald_portal.bulk): the columns, in order.
EVENT_FIELDS = ["at", "actor", "action", "outcome", "device_id", "unit_id", "pack_id", "service", "message"]


def insert_events(events) -> None:
    """Append executed actions: DeploymentEvent instances or tuples in EVENT_FIELDS order."""
    insert_rows(
        DeploymentEvent,
        EVENT_FIELDS,
        [e if isinstance(e, tuple) else tuple(getattr(e, name) for name in EVENT_FIELDS) for e in events],
    )


# The lowest IGEL OS a license of each service runs on. Workspace Edition (and its evaluation) is
# the IGEL OS 11/12 license; add-ons need 11.01.110 (docs/DOMAIN.md 2.1).
WE_MINIMUM_OS = version_key("11.0.0")
ADDON_MINIMUM_OS = version_key("11.01.110")


def minimum_os_for(service: str) -> str | None:
    if service == ProductType.WE:
        return WE_MINIMUM_OS
    if service.startswith("ADDON_"):
        return ADDON_MINIMUM_OS
    return None


@dataclass
class PackState:
    """A registered pack as the planner sees it during one cycle."""

    pack: RegisteredPack
    directories: frozenset | None  # None: every directory (method Enabled)
    usable: bool
    used: int
    total: int

    @property
    def free(self):
        return max(self.total - self.used, 0)

    def selects(self, directory_id) -> bool:
        return self.directories is None or directory_id in self.directories

    def __post_init__(self):
        # ALD takes from the most allocated pack first; among equally allocated, the earliest registered
        self.rank = (self.pack.registered_at, self.pack.pk)


@dataclass
class CycleReport:
    dry_run: bool = False
    skipped: str = ""
    licensed_devices: set = field(default_factory=set)
    licensed_by_pack: Counter = field(default_factory=Counter)
    waiting: Counter = field(default_factory=Counter)  # reason -> devices
    waiting_devices: set = field(default_factory=set)
    packs: dict = field(default_factory=dict)

    def as_dict(self):
        return {
            "dry_run": self.dry_run,
            "skipped": self.skipped or None,
            "devices_licensed": len(self.licensed_devices),
            "devices_waiting": len(self.waiting_devices),
            "licenses_deployed": sum(self.licensed_by_pack.values()),
            "licensed_by_pack": dict(sorted(self.licensed_by_pack.items())),
            "waiting_reasons": {str(k): v for k, v in sorted(self.waiting.items())},
            "packs": self.packs,
        }


class Candidate(NamedTuple):
    """A device needing a license for one service, as the planner sees it (a tuple: a cycle makes
    one per needy device, twice)."""

    device_id: int
    unit_id: str
    directory_id: int | None
    os_key: str
    held_pack_id: str | None = None  # the pack of the device's current license for the service
    held_until: object = None  # that license's expiry (None: perpetual or no license)

    def holds_valid_license(self, today) -> bool:
        return self.held_pack_id is not None and (self.held_until is None or self.held_until >= today)


def load_pack_states(today) -> dict[str, list[PackState]]:
    """Registered packs that take part in ALD, by service (deactivated and Disabled ones do not)."""
    packs = list(
        RegisteredPack.objects.filter(active=True)
        .exclude(distribution_method=DistributionMethod.DISABLED)
        .prefetch_related("condition_directories")
    )
    parent_of = parent_map() if packs else {}
    by_service = defaultdict(list)
    for p in packs:
        if p.distribution_method == DistributionMethod.ENABLED:
            dirs = None
        else:
            dirs = subtree([d.pk for d in p.condition_directories.all()], parent_of)
        by_service[p.service].append(PackState(p, dirs, p.usable_on(today), p.used, p.total))
    return by_service


class Planner:
    """Chooses a pack per device with in-memory counters, so a batch costs no query per device."""

    def __init__(self, service: str, states: list[PackState], today):
        self.service = service
        self.states = states
        self.by_pack = {s.pack.pack_id: s for s in states}
        self.today = today
        self.minimum_os = minimum_os_for(service)
        self._selecting = {}  # directory ID -> the packs whose conditions select it (fixed for a cycle)
        self._claimed_needy = {}

    def claimed_needy(self, exchange_days, include_excluded) -> "ClaimedNeedy":
        key = (exchange_days, include_excluded)
        if key not in self._claimed_needy:
            self._claimed_needy[key] = ClaimedNeedy(self.service, self.today, exchange_days, include_excluded)
        return self._claimed_needy[key]

    def selecting(self, directory_id) -> list[PackState]:
        found = self._selecting.get(directory_id)
        if found is None:
            found = self._selecting[directory_id] = [s for s in self.states if s.selects(directory_id)]
        return found

    def renewal_pack(self, c: Candidate, exclude=()) -> PackState | None:
        """The pack of the device's license, if it was renewed: a later expiry than the license."""
        state = self.by_pack.get(c.held_pack_id) if c.held_pack_id else None
        if state is None or state.pack.pack_id in exclude or not state.usable or c.held_until is None:
            return None
        expiry = state.pack.expiry_date
        return state if expiry is None or expiry > c.held_until else None

    def choose(self, c: Candidate, exclude=()) -> tuple[PackState | None, str | None]:
        if c.held_pack_id is not None:
            renewed = self.renewal_pack(c, exclude)
            if renewed is not None:
                return renewed, None
        # ``exclude`` only withdraws the renewal; refused packs are out through their counters or usability.
        selecting = self.selecting(c.directory_id)
        if not selecting:
            return None, WaitingReason.NO_ELIGIBLE_PACK
        if self.minimum_os and c.os_key < self.minimum_os:
            return None, WaitingReason.OS_TOO_OLD
        usable = [s for s in selecting if s.usable]
        if not usable:
            return None, WaitingReason.NO_ELIGIBLE_PACK
        if c.holds_valid_license(self.today):
            # Automatic license exchange: only a pack whose licenses outlive the current one helps.
            usable = [s for s in usable if s.pack.expiry_date is None or s.pack.expiry_date > c.held_until]
            if not usable:
                return None, WaitingReason.NO_LATER_PACK
        # the most allocated pack with free licenses, the earliest registered (rank) among equals
        best = None
        for s in usable:
            if s.used < s.total and (
                best is None or s.used > best.used or (s.used == best.used and s.rank < best.rank)
            ):
                best = s
        if best is None:
            # a device that still holds a valid license waits for an exchange, not for a license
            return None, WaitingReason.NO_LATER_PACK if c.holds_valid_license(
                self.today
            ) else WaitingReason.NO_FREE_LICENSE
        return best, None

    def is_renewal(self, c: Candidate, state: PackState) -> bool:
        return c.held_pack_id == state.pack.pack_id


def service_scope(service: str, states: list[PackState]):
    """Which devices need this service at all: every device needs the OS license (Workspace
    Edition); other services only the devices that some pack of theirs selects. None = all."""
    if service == ProductType.WE or any(s.directories is None for s in states):
        return None
    dirs = set()
    for s in states:
        dirs |= s.directories
    return dirs


def needy_queryset(service: str, scope, today, device_ids=None, exchange_days=None, include_excluded=False):
    """Devices outside the recycle bin that need a license for ``service``.

    A device needs one when its current license is missing or expired, when the pack of that license
    was renewed (a later expiry than the license), or, with automatic license exchange on, when the
    license expires within ``exchange_days``."""
    until = today + timedelta(days=exchange_days) if exchange_days else None
    current = DeviceLicense.objects.filter(
        device=OuterRef("pk"), service=service, status=LicenseStatus.CURRENT
    )
    renewed = RegisteredPack.objects.filter(
        pack_id=OuterRef("pack_id"), active=True, ils_usable=True, start_date__lte=today
    ).filter(Q(expiry_date__isnull=True) | Q(expiry_date__gt=OuterRef("expires_at")))
    lasting = Q(expires_at__gt=until) if until else Q(expires_at__gte=today)
    fine = current.filter(Q(expires_at__isnull=True) | (lasting & ~Exists(renewed)))
    qs = Device.objects.filter(moved_to_bin=False).exclude(Exists(fine))
    binned = list(Directory.objects.filter(moved_to_bin=True).values_list("id", flat=True))
    if binned:  # a directory in the recycle bin takes its whole subtree with it
        qs = qs.exclude(directory_id__in=subtree(binned))
    if not include_excluded:
        qs = qs.filter(ald_excluded=False)
    if scope is not None:
        qs = qs.filter(directory_id__in=scope)
    if isinstance(device_ids, QuerySet):  # a subquery: no list of ids to send
        qs = qs.filter(pk__in=device_ids)
    elif device_ids is not None:
        qs = qs.filter(pk__in=list(device_ids))
    return qs


def needy_devices(
    service: str, scope, today, device_ids=None, exchange_days=None, include_excluded=False
) -> list[Candidate]:
    """The needy devices as planning candidates, earliest registered first (they were waiting
    longest), each with the license it holds for the service. One query."""
    return list(
        map(Candidate._make, _candidates(service, scope, today, device_ids, exchange_days, include_excluded))
    )


def _candidates(service, scope, today, device_ids, exchange_days, include_excluded):
    qs = needy_queryset(service, scope, today, device_ids, exchange_days, include_excluded)
    current = DeviceLicense.objects.filter(
        device=OuterRef("pk"), service=service, status=LicenseStatus.CURRENT
    )
    held = current.order_by("-issued_at", "-pk")
    rows = (
        qs.annotate(
            held_pack_id=Subquery(held.values("pack_id")[:1]),
            held_until=Subquery(held.values("expires_at")[:1]),
        )
        .order_by("registration_date", "pk")
        .values_list("pk", "unit_id", "directory_id", "firmware__version_key", "held_pack_id", "held_until")
    )
    return rows


class ClaimedNeedy:
    """The re-check every batch makes under its claim: which of the devices claimed with a token
    still need the service, and what they hold now (needy_devices over the token's claims). The
    query is compiled once per cycle and service and run per batch with the batch's token."""

    def __init__(self, service, today, exchange_days, include_excluded):
        marker = f"claim-token-{uuid.uuid4()}"
        claimed = LicenseRequest.objects.filter(claim_token=marker).values("device_id")
        rows = _candidates(service, None, today, claimed, exchange_days, include_excluded)
        self.query = ReusableQuery(rows, marker)

    def __call__(self, token) -> list[Candidate]:
        return list(map(Candidate._make, self.query.rows(token)))


# PostgreSQL: re-ANALYZE the tables ALD fills after this many devices in a cycle (see
# ald_portal.bulk.refresh_statistics), and at the end of a cycle that handled at least STATISTICS_AFTER.
STATISTICS_EVERY = 10_000
STATISTICS_AFTER = 2_000


def _refresh_statistics():
    from licensing.models import LicenseSlot

    refresh_statistics(DeviceLicense, LicenseRequest, LicenseWait, LicenseSlot)


def _no_jit():
    """PostgreSQL compiles a query to machine code when its estimated cost is high, as the sweep's
    queries over every device are: about a second of compiling for a query that runs in a fraction
    of that. ALD's queries are short and run once, so this connection does without."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET jit = off")


@contextmanager
def collector_paused():
    """Python's cycle collector paused: a cycle makes hundreds of thousands of small objects (rows,
    candidates, tuples to insert) and none of them in reference cycles, yet each collection it
    triggers walks all of them again, a tenth of the cycle's time. It resumes when the cycle ends."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_cycle(device_ids=None, dry_run=False) -> CycleReport:
    """One ALD cycle over all devices, or over ``device_ids`` (the registration trigger)."""
    with collector_paused():
        return _run_cycle(device_ids, dry_run)


def _run_cycle(device_ids, dry_run) -> CycleReport:
    report = CycleReport(dry_run=dry_run)
    conf = DeploymentSettings.load()
    if not conf.ald_enabled:
        report.skipped = "automatic deployment is off"
        return report
    today = clock.today()
    exchange_days = conf.exchange_days if conf.exchange_enabled else None
    if device_ids is None and not dry_run:
        # A sweep first learns what the licensing service knows now: licenses bought, packs renewed.
        from .services import refresh_registered_packs

        try:
            refresh_registered_packs(trigger_sweep=False)
        except IlsUnavailable as exc:
            log.warning("pack refresh failed, sweeping with the last known counts: %s", exc)
    _no_jit()
    by_service = load_pack_states(today)
    services = sorted({ProductType.WE.value, *by_service})
    client = None if dry_run else get_client(conf.ums_id_fingerprint)
    for service in services:
        states = by_service.get(service, [])
        planner = Planner(service, states, today)
        needy = needy_devices(service, service_scope(service, states), today, device_ids, exchange_days)
        size = settings.ALD_BATCH_SIZE
        unanalyzed = handled = 0
        for start in range(0, len(needy), size):
            batch = needy[start : start + size]
            if dry_run:
                _plan_only(planner, batch, report)
            else:
                _Batch(service, planner, client, report, today, exchange_days).run(batch)
                unanalyzed += len(batch)
                handled += len(batch)
                # each time the rows written have doubled, so the cost stays a few ANALYZEs a cycle
                if unanalyzed >= max(STATISTICS_EVERY, handled // 2):
                    _refresh_statistics()
                    unanalyzed = 0
        if unanalyzed >= STATISTICS_AFTER:
            _refresh_statistics()
        if not dry_run:
            still = needy_queryset(service, service_scope(service, states), today, device_ids, exchange_days)
            _clear_stale_waits(service, still, device_ids)
            if device_ids is None:
                _settle_abandoned_claims(client, service, still)
    if not dry_run:
        _clear_stale_waits(None, services, device_ids)
    for states in by_service.values():
        for s in states:
            report.packs[s.pack.pack_id] = {"total": s.total, "used": s.used, "free": s.free}
    summary = report.as_dict()
    log.info(
        "ALD cycle%s: %d device(s) licensed, %d device(s) waiting; licenses waiting by reason: %s",
        " (dry run)" if dry_run else "",
        summary["devices_licensed"],
        summary["devices_waiting"],
        summary["waiting_reasons"],
    )
    return report


def release_unused_slots(client, rows) -> set:
    """Free slots that claims may have bound for devices that hold no license from that pack.
    ``rows``: (device_id, unit_id, pack_id). Returns the device ids settled; a device whose release
    could not reach the licensing service keeps its claim for the next sweep."""
    if not rows:
        return set()
    held = set(
        DeviceLicense.objects.filter(device_id__in=[r[0] for r in rows])
        .exclude(status=LicenseStatus.REVOKED)
        .values_list("device_id", "pack_id")
    )
    settled = set()
    for device_id, unit_id, pack_id in rows:
        if (device_id, pack_id) not in held:
            try:
                if client.release(pack_id, unit_id):
                    RegisteredPack.objects.filter(pack_id=pack_id, used__gt=0).update(used=F("used") - 1)
                    log.info("freed slot of %s in %s left by an abandoned claim", unit_id, pack_id)
            except IlsUnavailable:
                continue
        settled.add(device_id)
    return settled


def _settle_abandoned_claims(client, service, still_needy):
    """Claims of dead workers for devices that no longer need the service (moved to the recycle
    bin, out of scope, licensed another way): free what they may have bound, then drop them."""
    now = clock.now()
    rows = list(
        LicenseRequest.objects.filter(service=service, claimed_until__lte=now)
        .exclude(device__in=still_needy.values("pk"))
        .values_list("pk", "device_id", "device__unit_id", "pack_id")
    )
    if not rows:
        return
    settled = release_unused_slots(client, [(d, unit, pack) for _, d, unit, pack in rows if pack])
    done = [pk for pk, d, _, pack in rows if not pack or d in settled]
    LicenseRequest.objects.filter(pk__in=done, claimed_until__lte=now).delete()


def _clear_stale_waits(service, still_needy, device_ids):
    """A device that no longer needs the license it waited for (licensed another way, moved to the
    recycle bin, out of a pack's conditions, exchange switched off) stops waiting, with an executed
    action saying so. ``service`` None: waits for services no pack offers any more."""
    stale = LicenseWait.objects.select_related("device")
    if service is None:
        stale = stale.exclude(service__in=list(still_needy))
    else:
        stale = stale.filter(service=service).exclude(device__in=still_needy.values("pk"))
    if device_ids is not None:
        stale = stale.filter(device_id__in=list(device_ids))
    stale = list(stale)
    if not stale:
        return
    now = clock.now()
    with transaction.atomic():
        LicenseWait.objects.filter(pk__in=[w.pk for w in stale]).delete()
        DeploymentEvent.objects.bulk_create(
            DeploymentEvent(
                at=now,
                action=DeploymentEvent.Action.WAIT_ENDED,
                device_id=w.device_id,
                unit_id=w.device.unit_id,
                service=w.service,
                message=f"No longer waiting for a {w.service} license: not needed any more",
            )
            for w in stale
        )


def _plan_only(planner: Planner, batch, report: CycleReport):
    for c in batch:
        state, reason = planner.choose(c)
        if state is None:
            report.waiting[reason] += 1
            report.waiting_devices.add(c.device_id)
        else:
            if not planner.is_renewal(c, state):  # a renewal keeps the slot it has
                state.used += 1
            report.licensed_devices.add(c.device_id)
            report.licensed_by_pack[state.pack.pack_id] += 1


class _Batch:
    """Claim, ask, record: the life of one batch of devices for one service."""

    def __init__(
        self, service, planner, client, report, today, exchange_days=None, actor="ALD", manual=False
    ):
        self.exchange_days = exchange_days
        self.actor = actor
        self.manual = manual  # "License manually...": no waiting states, failures reported to the actor
        self.refused = defaultdict(set)  # device_id -> pack IDs the licensing service refused
        self.service = service
        self.planner = planner
        self.client = client
        self.report = report
        self.today = today
        self.token = str(uuid.uuid4())
        self.by_pack = {s.pack.pack_id: s for s in planner.states}
        self.replayed = {}  # device_id -> pack ID of a dead worker's claim we took over
        self.granted = {}  # device_id -> (Candidate, Grant, PackState)
        self.waiting = {}  # device_id -> (Candidate, reason)
        self.unreachable = set()
        self.kept = set()  # claims of devices no longer needy whose abandoned slot could not be freed yet
        self._messages = {}  # (source, pack ID, expiry, already held) -> executed action message

    # --- claims -------------------------------------------------------------------------------
    def _claim(self, batch) -> dict[int, str]:
        """Claim the devices of the batch; return {device_id: pack_id to ask ('' = plan anew)}."""
        now = clock.now()
        lease = now + timedelta(seconds=settings.ALD_CLAIM_SECONDS)
        ids = [c.device_id for c in batch]
        existing = dict(
            LicenseRequest.objects.filter(service=self.service, device_id__among=Values(ids)).values_list(
                "device_id", "claimed_until"
            )
        )
        stale = [d for d, until in existing.items() if until <= now]
        if stale:
            LicenseRequest.objects.filter(
                service=self.service, device_id__in=stale, claimed_until__lte=now
            ).update(claim_token=self.token, claimed_until=lease)
        fresh = [c for c in batch if c.device_id not in existing]
        rows, provisional = [], Counter()
        for c in fresh:
            state, _ = self.planner.choose(c)
            if state is not None and not self.planner.is_renewal(c, state):
                state.used += 1  # provisional, so the plan spreads over packs; corrected by the ILS answer
                provisional[state.pack.pack_id] += 1
            rows.append(
                (c.device_id, self.service, state.pack.pack_id if state else "", self.token, lease, now)
            )
        insert_rows(
            LicenseRequest,
            ["device_id", "service", "pack_id", "claim_token", "claimed_until", "created_at"],
            rows,
            ignore_conflicts=True,
        )
        for pack_id, count in provisional.items():  # undo the provisional counts; the ILS answer sets them
            self.by_pack[pack_id].used -= count
        # the token is this batch's own: its rows are exactly the claims we hold
        owned = dict(
            LicenseRequest.objects.filter(service=self.service, claim_token=self.token).values_list(
                "device_id", "pack_id"
            )
        )
        # Claims taken over from a worker that died: their pack may hold a slot already bound.
        self.replayed = {d: owned[d] for d in stale if owned.get(d)}
        return owned

    def run(self, batch):
        owned = self._claim(batch)
        if not owned:
            return
        # Re-check under the claim: another worker may have licensed some of them meanwhile. What
        # the devices hold now is read here, under the claim, and is what the licenses are based on.
        fresh = {
            c.device_id: c for c in self.planner.claimed_needy(self.exchange_days, self.manual)(self.token)
        }
        still = {d for d in fresh if d in owned}
        gone = [d for d in owned if d not in still]
        units = {c.device_id: c.unit_id for c in batch}
        if gone:
            settled = release_unused_slots(
                self.client, [(d, units[d], self.replayed[d]) for d in gone if d in self.replayed]
            )
            keep = {d for d in gone if d in self.replayed and d not in settled}
            LicenseRequest.objects.filter(claim_token=self.token, device_id__in=set(gone) - keep).delete()
            self.kept = keep
        todo = {c.device_id: fresh[c.device_id] for c in batch if c.device_id in still}  # oldest first
        asks = {d: owned[d] for d in todo}
        for _round in range(len(self.by_pack) + 2):
            if _round:  # the claim was just taken with a full lease; later rounds extend it
                LicenseRequest.objects.filter(claim_token=self.token).update(
                    claimed_until=clock.now() + timedelta(seconds=settings.ALD_CLAIM_SECONDS)
                )
            replan = self._ask(todo, {d: p for d, p in asks.items() if p})
            replan += [d for d, p in asks.items() if not p]
            asks = self._replan(todo, replan)
            if not asks:
                break
        for d in asks:  # every pack was tried this cycle; the next sweep tries again
            self.waiting[d] = (todo[d], WaitingReason.NO_FREE_LICENSE)
        self._record(todo)

    def _ask(self, todo, asks) -> list[int]:
        """Ask the ILS pack by pack; return the devices that need another pack."""
        replan = []
        groups = defaultdict(list)
        for d, pack_id in asks.items():
            groups[pack_id].append(d)
        for pack_id, devs in groups.items():
            state = self.by_pack.get(pack_id)
            if state is None:  # a claim left for a pack no longer registered or active: choose again
                self._settle_replays(todo, devs, pack_id)
                replan += devs
                continue
            try:
                result = self.client.request_licenses(pack_id, [todo[d].unit_id for d in devs])
            except IlsUnavailable as exc:
                log.warning("licensing service unreachable for pack %s: %s", pack_id, exc)
                for d in devs:
                    self.waiting[d] = (todo[d], WaitingReason.ILS_UNREACHABLE)
                    self.unreachable.add(d)
                continue
            except LicenseServiceError as exc:
                log.warning("pack %s refused: %s", pack_id, exc.message)
                self._settle_replays(todo, devs, pack_id)
                state.usable = False
                for d in devs:
                    self.refused[d].add(pack_id)
                replan += devs
                continue
            state.used, state.total = result.pack.used, result.pack.total
            state.usable = state.usable and result.pack.usable
            grants = {g.unit_id: g for g in result.granted}
            for d in devs:
                g = grants.get(todo[d].unit_id)
                if g is not None:
                    self.granted[d] = (todo[d], g, state)
                else:
                    self.refused[d].add(pack_id)
                    replan.append(d)
        return replan

    def _settle_replays(self, todo, devs, pack_id):
        """A dead worker's claim named a pack we will not use after all: free the slot it may have
        bound there, or the device would hold a slot in two packs."""
        rows = [(d, todo[d].unit_id, pack_id) for d in devs if self.replayed.get(d) == pack_id]
        release_unused_slots(self.client, rows)
        for d, _, _ in rows:
            del self.replayed[d]

    def _replan(self, todo, devices) -> dict[int, str]:
        """Choose again for refused devices; write the new choice into the claim before asking."""
        asks = {}
        provisional = Counter()
        for d in devices:
            state, reason = self.planner.choose(todo[d], exclude=self.refused[d])
            if state is None:
                self.waiting[d] = (todo[d], reason)
            else:
                if not self.planner.is_renewal(todo[d], state):
                    state.used += 1
                    provisional[state.pack.pack_id] += 1
                asks[d] = state.pack.pack_id
        per_pack = defaultdict(list)
        for d, pack_id in asks.items():
            per_pack[pack_id].append(d)
        for pack_id, count in provisional.items():
            self.by_pack[pack_id].used -= count
        for pack_id, devs in per_pack.items():
            LicenseRequest.objects.filter(claim_token=self.token, device_id__in=devs).update(pack_id=pack_id)
        return asks

    # --- recording ----------------------------------------------------------------------------
    def _record(self, todo):
        now = clock.now()
        with transaction.atomic():
            # Record only what we still hold: a worker that took a claim over (ours ran past its
            # lease) asks the same pack again and records the license itself.
            mine = set(
                LicenseRequest.objects.filter(claim_token=self.token).values_list("device_id", flat=True)
            )
            self.granted = {d: v for d, v in self.granted.items() if d in mine}
            self.waiting = {d: v for d, v in self.waiting.items() if d in mine}
            self.unreachable &= mine
            todo = {d: c for d, c in todo.items() if d in mine}
            licensed_ids = list(self.granted)
            waiting_ids = [d for d in self.waiting if d not in self.granted]
            holding = [d for d in licensed_ids if self.granted[d][0].held_pack_id is not None]
            if holding:  # renewal or exchange: the license held (read under the claim) is superseded
                DeviceLicense.objects.filter(
                    device_id__in=holding, service=self.service, status=LicenseStatus.CURRENT
                ).update(status=LicenseStatus.SUPERSEDED)
            licenses, events = [], []
            current = LicenseStatus.CURRENT.value
            plain = not self.manual  # a device holding nothing gets a plain ALD license: the common case
            for d, (c, g, state) in self.granted.items():
                source = LicenseSource.ALD if plain and c.held_pack_id is None else self._source(c, state)
                product_type = state.pack.product_type
                licenses.append(
                    (
                        d,
                        c.unit_id,
                        self.service,
                        g.pack_id,
                        product_type,
                        now,
                        g.expiry_date,
                        product_type == ProductType.DEMO,
                        source,
                        current,
                    )
                )
                events.append(self._deploy_event(now, d, c, g, source))
            if licensed_ids:
                insert_rows(DeviceLicense, LICENSE_FIELDS, licenses)
                LicenseWait.objects.filter(
                    device_id__among=Values(licensed_ids), service=self.service
                ).delete()
            if waiting_ids:
                events += self._record_waits(waiting_ids, now)
            insert_events(events)
            LicenseRequest.objects.filter(claim_token=self.token).exclude(
                device_id__in=list(self.unreachable | self.kept)
            ).delete()
            if self.unreachable:
                # Keep the claim (it names the pack asked) but let the next sweep take it over at once.
                LicenseRequest.objects.filter(claim_token=self.token, device_id__in=self.unreachable).update(
                    claimed_until=now
                )
            for state in self.by_pack.values():
                if state.used != state.pack.used or state.total != state.pack.total:
                    RegisteredPack.objects.filter(pk=state.pack.pk).update(used=state.used, total=state.total)
                    state.pack.used, state.pack.total = state.used, state.total
        self.report.licensed_devices.update(licensed_ids)
        for _c, g, _state in self.granted.values():
            self.report.licensed_by_pack[g.pack_id] += 1
        for d in waiting_ids:
            self.report.waiting[self.waiting[d][1]] += 1
            self.report.waiting_devices.add(d)

    def _source(self, c: Candidate, state: PackState) -> str:
        if self.manual:
            return LicenseSource.MANUAL
        if self.planner.is_renewal(c, state):
            return LicenseSource.RENEWAL
        if c.holds_valid_license(self.today):
            return LicenseSource.EXCHANGE
        return LicenseSource.ALD

    def _deploy_event(self, now, d, c: Candidate, g, source: str) -> tuple:
        expiry = g.expiry_date or "never"
        if source == LicenseSource.RENEWAL:
            action = DeploymentEvent.Action.RENEW.value
            message = f"{self.service} license of {g.pack_id} renewed: expires {expiry} (was {c.held_until})"
        elif source == LicenseSource.EXCHANGE:
            action = DeploymentEvent.Action.EXCHANGE.value
            message = (
                f"{self.service} license exchanged: {c.held_pack_id} (expires {c.held_until}) -> "
                f"{g.pack_id} (expires {expiry})"
            )
        else:  # the same words for every device licensed from a pack: made once per batch
            action = DeploymentEvent.Action.DEPLOY.value
            key = (source, g.pack_id, expiry, g.already_held)
            message = self._messages.get(key)
            if message is None:
                if source == LicenseSource.MANUAL:
                    message = f"{self.service} license from {g.pack_id} licensed manually (expires {expiry})"
                else:
                    message = f"{self.service} license from {g.pack_id} deployed (expires {expiry})"
                    if g.already_held:
                        message += "; the slot was already bound at the licensing service"
                self._messages[key] = message
        return (now, self.actor, action, SUCCESS, d, c.unit_id, g.pack_id, self.service, message)

    def _record_waits(self, waiting_ids, now) -> list[DeploymentEvent]:
        if self.manual:
            return [
                DeploymentEvent(
                    at=now,
                    actor=self.actor,
                    action=DeploymentEvent.Action.ERROR,
                    outcome=DeploymentEvent.Outcome.FAILED,
                    device_id=d,
                    unit_id=self.waiting[d][0].unit_id,
                    service=self.service,
                    message=f"License manually: {WaitingReason(self.waiting[d][1]).label}",
                )
                for d in waiting_ids
            ]
        existing = {
            w.device_id: w
            for w in LicenseWait.objects.filter(service=self.service, device_id__among=Values(waiting_ids))
        }
        new, changed, same = [], [], []
        events = []
        for d in waiting_ids:
            c, reason = self.waiting[d]
            w = existing.get(d)
            if w is None:
                new.append(
                    LicenseWait(
                        device_id=d, service=self.service, reason=reason, since=now, last_tried_at=now
                    )
                )
            elif w.reason != reason:
                w.reason, w.last_tried_at = reason, now
                changed.append(w)
            else:
                same.append(d)
                continue
            events.append(
                DeploymentEvent(
                    at=now,
                    action=DeploymentEvent.Action.WAIT,
                    outcome=DeploymentEvent.Outcome.WAITING,
                    device_id=d,
                    unit_id=c.unit_id,
                    service=self.service,
                    message=f"Waiting for a license of {self.service}: {WaitingReason(reason).label}",
                )
            )
        insert_rows(
            LicenseWait,
            ["device_id", "service", "reason", "since", "last_tried_at"],
            [(w.device_id, w.service, w.reason, w.since, w.last_tried_at) for w in new],
        )
        LicenseWait.objects.bulk_update(changed, ["reason", "last_tried_at"])
        if same:
            LicenseWait.objects.filter(service=self.service, device_id__in=same).update(last_tried_at=now)
        return events
