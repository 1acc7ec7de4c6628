"""The UMS side: directories, firmwares, devices, deployment settings, registered packs and the
licenses deployed to devices. Nothing here writes a ``licensing`` table (docs/DESIGN.md section 2)."""

import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from ald_portal import clock
from licensing.models import ProductType, validate_unit_id

MAC_RE = re.compile(r"^[0-9A-F]{12}$")


def validate_mac(value):
    if not MAC_RE.match(value or ""):
        raise ValidationError(
            "MAC %(value)r is not 12 upper-case hexadecimal digits.", params={"value": value}
        )


def version_key(version: str) -> str:
    """A sortable key for an IGEL OS version: parts compare as numbers, so 11.01.110 > 11.01.100 and
    12.2.0 > 11.09.310. Raises ValueError for anything that is not dotted digits."""
    parts = (version or "").strip().split(".")
    if not parts or not all(p.isascii() and p.isdigit() for p in parts) or len(parts) > 6:
        raise ValueError(f"firmware version {version!r} is not dotted digits")
    return ".".join(f"{int(p):05d}" for p in (parts + ["0"] * 4)[: max(4, len(parts))])


class Directory(models.Model):
    """A device directory (IMI ``tcdirectory``); ``parent`` empty = the root (IMI parentID -1)."""

    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    moved_to_bin = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "directories"
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def clean(self):
        """A directory is never its own parent, nor below itself: the tree would lose a branch."""
        if self.pk is None or self.parent_id is None:
            return
        from .directories import subtree  # (directories builds on this model)

        if self.parent_id in subtree([self.pk]):
            raise ValidationError(
                {"parent": f"{self.parent} is {self.name} itself or one of its subdirectories."}
            )


class Firmware(models.Model):
    product = models.CharField(max_length=200)
    version = models.CharField(max_length=40)
    firmware_type = models.CharField(max_length=20)
    version_key = models.CharField(max_length=60, editable=False, db_index=True)

    class Meta:
        ordering = ["version_key", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version", "firmware_type"], name="unique_firmware")
        ]

    def __str__(self):
        return f"{self.product} {self.version}"

    def save(self, *args, **kwargs):
        self.version_key = version_key(self.version)
        super().save(*args, **kwargs)

    @property
    def os_major(self):
        return int(self.version.split(".", 1)[0])


class Device(models.Model):
    """A thin client with the fields the IMI v3 API shows (``facets=details``)."""

    unit_id = models.CharField("Unit ID", max_length=18, unique=True, validators=[validate_unit_id])
    mac = models.CharField("MAC", max_length=12, db_index=True, validators=[validate_mac])
    name = models.CharField(max_length=200)
    directory = models.ForeignKey(
        Directory, on_delete=models.PROTECT, null=True, blank=True, related_name="devices"
    )
    firmware = models.ForeignKey(Firmware, on_delete=models.PROTECT, related_name="devices")
    last_ip = models.CharField("Last IP", max_length=45, blank=True)
    site = models.CharField(max_length=200, blank=True)
    department = models.CharField(max_length=200, blank=True)
    cost_center = models.CharField(max_length=200, blank=True)
    comment = models.CharField(max_length=500, blank=True)
    asset_id = models.CharField("Asset ID", max_length=100, blank=True)
    inservice_date = models.CharField("In-service date", max_length=40, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    device_serial_number = models.CharField(max_length=100, blank=True)
    product_id = models.CharField(max_length=100, blank=True)
    device_type = models.CharField(max_length=100, blank=True)
    os_type = models.CharField("OS type", max_length=200, blank=True)
    last_boot = models.DateTimeField(null=True, blank=True)
    last_contact = models.DateTimeField(null=True, blank=True)
    registration_date = models.DateTimeField(default=clock.now, db_index=True)
    moved_to_bin = models.BooleanField("In recycle bin", default=False)
    # A license removed by hand is not deployed again behind the administrator's back: the device
    # stays out of ALD until an administrator clears this.
    ald_excluded = models.BooleanField("Excluded from ALD", default=False)
    ald_excluded_reason = models.CharField("Why excluded from ALD", max_length=300, blank=True)
    # Further IMI detail fields (CPU, memory, BIOS, monitors...), kept verbatim for the IMI API.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "id"]
        # the device list's default order: a page of 50 is read from the index, not by sorting the fleet
        indexes = [models.Index(fields=["name", "id"], name="device_list_order")]

    def __str__(self):
        return f"{self.name} ({self.unit_id})"


class DistributionMethod(models.TextChoices):
    ENABLED = "ENABLED", "Enabled"
    CONDITIONS = "CONDITIONS", "Enabled (with conditions)"
    DISABLED = "DISABLED", "Disabled"


def default_distribution_method(product_type: str) -> str:
    """Workspace Edition packs go to every unlicensed device; every other type only where conditions
    say (the UMS default since 6.02.100)."""
    return DistributionMethod.ENABLED if product_type == ProductType.WE else DistributionMethod.CONDITIONS


class DeploymentSettings(models.Model):
    """Licenses > Deployment: one row."""

    ald_enabled = models.BooleanField("Enable automatic deployment", default=False)
    sweep_minutes = models.PositiveIntegerField("Sweep every (minutes)", default=5)
    exchange_enabled = models.BooleanField("Enable automatic license exchange", default=False)
    exchange_days = models.PositiveIntegerField("Licenses are exchanged N days before expiration", default=7)
    # The UMS limit for "few free licenses left" notifications (a pack with none left is its own one).
    notify_free_below = models.PositiveIntegerField(
        "Notify when free licenses of a pack fall below", default=10
    )
    ums_id_fingerprint = models.CharField("UMS ID (SHA-256 fingerprint)", max_length=95, blank=True)
    ums_id_name = models.CharField("UMS ID name", max_length=200, blank=True)
    # The UMS ID key pair, made at installation (devices.services.ums_identity). The private key stays
    # in this database, on the UMS side only; the certificate is what the License Portal registers.
    ums_id_private_key_pem = models.TextField("UMS ID private key", blank=True, editable=False)
    ums_id_certificate_pem = models.TextField("UMS ID certificate", blank=True, editable=False)
    # Edit Proxy Configuration: the proxy towards the licensing service (and other IGEL cloud services).
    proxy_enabled = models.BooleanField("Use a proxy", default=False)
    proxy_host = models.CharField("Proxy host", max_length=255, blank=True)
    proxy_port = models.PositiveIntegerField("Proxy port", null=True, blank=True)
    proxy_user = models.CharField("Proxy user", max_length=200, blank=True)
    proxy_password = models.CharField("Proxy password", max_length=200, blank=True)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        verbose_name = "deployment settings"
        verbose_name_plural = "deployment settings"
        constraints = [
            models.CheckConstraint(condition=Q(sweep_minutes__gte=1), name="sweep_at_least_every_minute"),
            models.CheckConstraint(condition=Q(exchange_days__gte=1), name="exchange_days_positive"),
        ]

    def __str__(self):
        return "Deployment settings"

    @classmethod
    def load(cls):
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class UmsAldToken(models.Model):
    """An ALD token registered in this UMS (Licenses > Deployment > Register Pack, token dialog): the
    packs of its subscription key become available to this UMS without its UMS ID. The token is the
    credential itself, so the UMS keeps it as it was given; pages show only its first characters."""

    token = models.CharField(max_length=100, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False)
    registered_at = models.DateTimeField(default=clock.now)
    registered_by = models.CharField(max_length=200)

    class Meta:
        verbose_name = "registered ALD token"
        ordering = ["registered_at", "pk"]

    def __str__(self):
        return f"{self.hint}…"


class RegisteredPack(models.Model):
    """A Product Pack as this UMS knows it after a refresh from the licensing service."""

    pack_id = models.CharField("Pack ID", max_length=20, unique=True)
    product_name = models.CharField(max_length=200)
    product_type = models.CharField(max_length=10, choices=ProductType.choices)
    service = models.CharField(max_length=40, db_index=True)
    total = models.PositiveIntegerField()
    used = models.PositiveIntegerField(default=0)
    start_date = models.DateField()
    expiry_date = models.DateField(null=True, blank=True)
    ils_status = models.CharField("Status at the licensing service", max_length=20)
    ils_usable = models.BooleanField(default=True)
    comment = models.CharField(max_length=500, blank=True)
    registered_at = models.DateTimeField(default=clock.now)
    refreshed_at = models.DateTimeField(default=clock.now)
    active = models.BooleanField(default=True, help_text="A deactivated pack is kept but never used.")
    distribution_method = models.CharField(max_length=12, choices=DistributionMethod.choices)
    condition_directories = models.ManyToManyField(Directory, blank=True, related_name="pack_conditions")

    class Meta:
        ordering = ["registered_at", "id"]

    def __str__(self):
        return self.pack_id

    @property
    def free(self):
        return max(self.total - self.used, 0)

    def usable_on(self, day) -> bool:
        return (
            self.active
            and self.ils_usable
            and self.distribution_method != DistributionMethod.DISABLED
            and self.start_date <= day
            and (self.expiry_date is None or self.expiry_date >= day)
        )


class LicenseStatus(models.TextChoices):
    CURRENT = "CURRENT", "Current"
    SUPERSEDED = "SUPERSEDED", "Superseded"
    REVOKED = "REVOKED", "Revoked"


class LicenseSource(models.TextChoices):
    ALD = "ALD", "Automatic deployment"
    MANUAL = "MANUAL", "Licensed manually"
    EXCHANGE = "EXCHANGE", "Automatic exchange"
    RENEWAL = "RENEWAL", "Renewal"


class DeviceLicense(models.Model):
    """A license deployed to a device: bound to its unit ID, one service, from one pack."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="licenses")
    unit_id = models.CharField("Unit ID", max_length=18)
    service = models.CharField(max_length=40)
    pack_id = models.CharField("Pack ID", max_length=20, db_index=True)
    product_type = models.CharField(max_length=10, choices=ProductType.choices)
    issued_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateField(null=True, blank=True, help_text="Empty: perpetual.")
    is_demo = models.BooleanField("Demo", default=False)
    source = models.CharField(max_length=10, choices=LicenseSource.choices, default=LicenseSource.ALD)
    status = models.CharField(max_length=12, choices=LicenseStatus.choices, default=LicenseStatus.CURRENT)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The signed file from the licensing service, kept once fetched (the UMS stores license files in
    # its database since 6.08.100); what the device downloads.
    license_file = models.TextField(blank=True)

    class Meta:
        ordering = ["device_id", "service", "-issued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "service"],
                condition=Q(status="CURRENT"),
                name="one_current_license_per_device_and_service",
            )
        ]
        indexes = [models.Index(fields=["service", "status", "device"], name="license_service_status_dev")]

    def __str__(self):
        return f"{self.service} {self.pack_id} -> {self.unit_id}"

    GRACE_DAYS = 28  # IGEL OS 12 keeps working 28 days past expiry

    def expiry_state(self, today, os_major: int, warn_days: int = 7) -> str:
        """licensed, expiring (within ``warn_days``), grace (IGEL OS 12, up to 28 days after
        expiry), or expired."""
        if self.expires_at is None or self.expires_at > today + timedelta(days=warn_days):
            return "licensed"
        if self.expires_at >= today:
            return "expiring"
        if os_major >= 12 and today <= self.expires_at + timedelta(days=self.GRACE_DAYS):
            return "grace"
        return "expired"


class WaitingReason(models.TextChoices):
    NO_FREE_LICENSE = "no_free_license", "No free license in any eligible pack"
    NO_ELIGIBLE_PACK = "no_eligible_pack", "No eligible pack"
    NO_LATER_PACK = "no_later_pack", "No pack with a later expiry and a free license to exchange to"
    OS_TOO_OLD = "os_too_old", "IGEL OS version too old for this license type"
    ILS_UNREACHABLE = "ils_unreachable", "Licensing service unreachable"


class LicenseWait(models.Model):
    """A device that needs a license for a service and could not get one yet (docs/DESIGN.md invariant 3).
    The next sweep retries it; the row goes when the device is licensed."""

    # no index of its own: the unique (device, service) index serves every lookup by device
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="waits", db_index=False)
    service = models.CharField(max_length=40)
    reason = models.CharField(max_length=20, choices=WaitingReason.choices)
    since = models.DateTimeField(default=clock.now)
    last_tried_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["since", "id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "service"], name="one_wait_per_device_and_service")
        ]

    def __str__(self):
        return f"{self.device_id} waits for {self.service}: {self.reason}"


class LicenseRequest(models.Model):
    """A worker's claim on (device, service) and the pack it asked, written before the licensing
    service is called. Only the holder of a live claim asks for that device; a claim left by a worker
    that died expires and the next sweep asks the same pack again, which returns the slot already
    bound instead of a second one."""

    # no index of its own: the unique (device, service) index serves every lookup by device
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="license_requests", db_index=False
    )
    service = models.CharField(max_length=40)
    pack_id = models.CharField(max_length=20)
    claim_token = models.CharField(max_length=36, db_index=True)
    claimed_until = models.DateTimeField()
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "service"], name="one_request_per_device_and_service")
        ]


class DeploymentEvent(models.Model):
    """Executed actions: one row per state change, appended, never edited (invariant 4)."""

    class Action(models.TextChoices):
        DEPLOY = "deploy", "License deployed"
        RENEW = "renew", "License renewed"
        EXCHANGE = "exchange", "License exchanged"
        WAIT = "wait", "Waiting for a license"
        WAIT_ENDED = "wait_ended", "No longer waiting"
        REMOVE = "remove", "License removed"
        EXCLUDE = "exclude", "ALD exclusion changed"
        DELETE_DEVICE = "delete_device", "Device deleted"
        RECONCILE = "reconcile", "Reconciliation"
        PACK_ACTIVE = "pack_active", "Pack activated or deactivated"
        SETTINGS = "settings", "Settings changed"
        REGISTER_PACK = "register_pack", "Pack registered"
        REFRESH_PACK = "refresh_pack", "Pack refreshed"
        DEVICE_CREATED = "device_created", "Device created"
        DEVICE_CHANGED = "device_changed", "Device changed"
        COMMAND = "command", "Command sent to device"
        DIRECTORY = "directory", "Directory changed"
        ERROR = "error", "Error"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        WAITING = "waiting", "Waiting"
        FAILED = "failed", "Failed"

    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.CharField(max_length=150, default="ALD")
    action = models.CharField(max_length=20, choices=Action.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    device = models.ForeignKey(
        Device, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    unit_id = models.CharField(max_length=18, blank=True)
    pack_id = models.CharField(max_length=20, blank=True)
    service = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.unit_id or self.pack_id}"


class Notification(models.Model):
    """A notification the UMS raised (docs/DOMAIN.md 1.4, 2.6, 5.4): few free licenses left in a pack,
    all licenses of a pack used, a pack expiring in 120, 60 or 7 days, devices waiting for a license.
    Shown on the notifications page and mailed once to the administrators.

    ``key`` names the condition (``pack-low:WE-1A2B3``, ``pack-expiry-60:WE-1A2B3:2027-03-01``,
    ``waiting:<hash>``). While a condition holds its row is open (``resolved_at`` empty) and the
    database keeps one open row per key, so checks running at once raise it once. When the condition
    clears the row is resolved; if it comes back it is raised again."""

    class Kind(models.TextChoices):
        PACK_LOW = "pack_low", "Few free licenses left"
        PACK_USED_UP = "pack_used_up", "All licenses used"
        PACK_EXPIRY = "pack_expiry", "Pack expiring"
        WAITING = "waiting", "Devices waiting for a license"

    class Level(models.TextChoices):
        INFO = "info", "Information"
        WARNING = "warning", "Warning"

    class MailStatus(models.TextChoices):
        PENDING = "pending", "Not sent yet"
        SENT = "sent", "Sent"
        FAILED = "failed", "Sending failed"
        NO_RECIPIENTS = "no_recipients", "No recipients"

    key = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    level = models.CharField(max_length=10, choices=Level.choices)
    pack_id = models.CharField("Pack ID", max_length=20, blank=True, db_index=True)
    subject = models.CharField(max_length=200)
    message = models.TextField()
    # What the condition looked like when raised; for waiting devices, the (device, service) pairs
    # and reasons, against which the next check decides whether the set grew.
    snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField("Raised", default=clock.now, db_index=True)
    resolved_at = models.DateTimeField("Cleared", null=True, blank=True)
    mail_status = models.CharField(max_length=15, choices=MailStatus.choices, default=MailStatus.PENDING)
    mail_attempts = models.PositiveSmallIntegerField(default=0)
    # A worker that claimed the mail; a claim left by a worker that died lapses and is taken over.
    mail_claimed_until = models.DateTimeField(null=True, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)
    mailed_to = models.TextField(blank=True)
    mail_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=Q(resolved_at__isnull=True), name="one_open_notification_per_key"
            )
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.subject}"

    @property
    def recipient_count(self) -> int:
        return len([a for a in self.mailed_to.split(",") if a.strip()])


class ReconciliationReport(models.Model):
    """What a reconciliation found; the newest is shown on Licenses > Deployment."""

    at = models.DateTimeField(default=clock.now, db_index=True)
    counters_corrected = models.JSONField(default=dict)  # pack ID -> [was, is]
    slots_without_license = models.JSONField(default=list)  # [pack ID, unit ID]
    licenses_without_slot = models.JSONField(default=list)  # [pack ID, unit ID]
    duplicates = models.JSONField(default=list)  # {unit_id, service, packs}

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"Reconciliation {self.at:%Y-%m-%d %H:%M}"

    @property
    def clean(self) -> bool:
        return not (
            self.counters_corrected
            or self.slots_without_license
            or self.licenses_without_slot
            or self.duplicates
        )

    def summary(self) -> str:
        if self.clean:
            return "Reconciliation: counters, slots and device licenses agree."
        parts = []
        if self.counters_corrected:
            parts.append(
                "counters corrected: "
                + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in sorted(self.counters_corrected.items()))
            )
        if self.slots_without_license:
            parts.append(f"{len(self.slots_without_license)} slot(s) without a device license")
        if self.licenses_without_slot:
            parts.append(f"{len(self.licenses_without_slot)} device license(s) without a slot")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} unit ID(s) holding slots in several packs of one service")
        return "Reconciliation: " + "; ".join(parts) + "."


class DeviceCommand(models.Model):
    """A command sent to a device through the IMI (reboot, shutdown, wakeup, settings2tc,
    tcreset2facdefs): who asked, when, and the execution ID the IMI answered with."""

    class Command(models.TextChoices):
        REBOOT = "reboot", "Reboot"
        SHUTDOWN = "shutdown", "Shut down"
        WAKEUP = "wakeup", "Wake up"
        SETTINGS2TC = "settings2tc", "Send settings to device"
        TCRESET2FACDEFS = "tcreset2facdefs", "Reset to factory defaults"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="commands")
    command = models.CharField(max_length=20, choices=Command.choices)
    exec_id = models.CharField("Execution ID", max_length=64, db_index=True)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField(default=clock.now, db_index=True)
    state = models.CharField(max_length=10, default="SUCCESS")

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.command} -> {self.device_id} ({self.exec_id})"


class ImiSession(models.Model):
    """An IMI (``/umsapi/``) session: the JSESSIONID cookie of the API, apart from the portal's own
    login. Only a hash of the ID is stored. Valid 30 minutes after the last request (sliding)."""

    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="imi_sessions")
    address = models.CharField(max_length=45, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    last_seen_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        verbose_name = "IMI session"

    def __str__(self):
        return f"IMI session of {self.user_id} from {self.address}"


class ImiLoginFailure(models.Model):
    """Failed IMI logins from one address in a row; from the fifth on the address is locked out for a
    time that doubles with each further failure. The failures are kept per user name, so a success
    forgets only that user's failures (not another account's guesses from the same address), and
    the password checks still running are counted, so a burst of parallel guesses cannot pass the
    limit before the first of them has failed."""

    address = models.CharField(max_length=45, unique=True)
    failures = models.PositiveIntegerField(default=0)
    failures_by_user = models.JSONField(default=dict, blank=True)
    last_failure_at = models.DateTimeField(default=clock.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_username = models.CharField(max_length=150, blank=True)
    checks_running = models.PositiveIntegerField(default=0)
    last_check_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "IMI login failure"

    def __str__(self):
        return f"{self.address}: {self.failures} failed login(s)"
