"""The License Portal side (ILP) and the licensing service (ILS): who bought what, and which unit ID
holds which license slot. ``licensing`` never imports ``devices`` (docs/DESIGN.md section 2)."""

import re

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q

from ald_portal import clock

PACK_ID_RE = re.compile(r"\A[A-Z0-9]{2,8}-[A-Z0-9]{5}\Z")  # \Z: no trailing newline slips through
UNIT_ID_RE = re.compile(r"\A(?:[0-9A-F]{12}|[0-9A-F]{18})\Z")


def validate_pack_id(value):
    if not PACK_ID_RE.match(value or ""):
        raise ValidationError(
            "Pack ID %(value)r is not of the form PREFIX-XXXXX (prefix, a dash, 5 letters or digits).",
            params={"value": value},
        )


def validate_unit_id(value):
    if not UNIT_ID_RE.match(value or ""):
        raise ValidationError(
            "Unit ID %(value)r is not 12 or 18 upper-case hexadecimal digits.", params={"value": value}
        )


class ProductType(models.TextChoices):
    WE = "WE", "Workspace Edition"
    EMP = "EMP", "Enterprise Management Pack"
    ADDON = "ADDON", "Add-on for Workspace Edition"
    DEMO = "DEMO", "Evaluation (demo)"
    UDC3 = "UDC3", "UDC3 / OS Creator"
    UDP = "UDP", "UD Pocket"
    UMA = "UMA", "Universal Management Agent"


def service_for(product_type: str, pack_id: str) -> str:
    """The service a license of this pack provides on a device; one license per service per device.

    An evaluation license is a full OS license, so it provides the Workspace Edition service; each
    add-on product is its own service, named by its pack prefix (ADR, IMPRIVATA, ...)."""
    if product_type == ProductType.DEMO:
        return ProductType.WE
    if product_type == ProductType.ADDON:
        return "ADDON_" + pack_id.split("-", 1)[0]
    return product_type


class PackStatus(models.TextChoices):
    NOT_YET_ACTIVATED = "NOT_YET_ACTIVATED", "Not yet activated"
    ACTIVE = "ACTIVE", "Active"
    EXPIRED = "EXPIRED", "Expired"
    ARCHIVED = "ARCHIVED", "Archived"
    MERGED = "MERGED", "Merged"


class Company(models.Model):
    name = models.CharField(max_length=200)
    global_account_id = models.CharField("Global Account ID", max_length=40, unique=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.global_account_id})"


class Order(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=40, unique=True)
    order_date = models.DateField(null=True, blank=True)
    eula_accepted_by = models.CharField(max_length=200, blank=True)
    eula_accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-order_date", "number"]

    def __str__(self):
        return self.number

    @property
    def eula_accepted(self):
        return self.eula_accepted_at is not None


class SubscriptionKey(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="subscription_keys")
    key = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.key


class UmsId(models.Model):
    """A UMS installation as the License Portal knows it: its certificate (the public half of the key
    pair made at the UMS's installation), the certificate's SHA-256 fingerprint and a name. The
    private key never leaves the UMS; the licensing service verifies the UMS's signed requests with
    the public key in ``certificate_pem``."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="ums_ids")
    fingerprint = models.CharField("SHA-256 fingerprint", max_length=95, unique=True)
    name = models.CharField("UMS ID name", max_length=200)
    certificate_pem = models.TextField(blank=True)
    auto_assign = models.BooleanField(default=False, help_text="Assign future Product Packs to this UMS ID.")
    registered_at = models.DateTimeField(default=clock.now)
    last_contact_at = models.DateTimeField("Last contact from the UMS", null=True, blank=True)

    class Meta:
        verbose_name = "UMS ID"
        ordering = ["name"]

    def __str__(self):
        return self.name


class ProductPackQuerySet(models.QuerySet):
    def usable(self, on=None):
        """Packs that may hand out licenses on date ``on``: active status, started, not expired."""
        on = on or clock.today()
        return (
            self.filter(status=PackStatus.ACTIVE, start_date__lte=on)
            .filter(Q(expiry_date__isnull=True) | Q(expiry_date__gte=on))
            .filter(Q(order__isnull=True) | Q(order__eula_accepted_at__isnull=False))
        )

    def non_archived(self):
        return self.exclude(status__in=[PackStatus.ARCHIVED, PackStatus.MERGED])


class ProductPack(models.Model):
    pack_id = models.CharField("Pack ID", max_length=20, unique=True, validators=[validate_pack_id])
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="packs")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="packs", null=True, blank=True)
    subscription_key = models.ForeignKey(
        SubscriptionKey, on_delete=models.PROTECT, related_name="packs", null=True, blank=True
    )
    product_name = models.CharField(max_length=200)
    product_type = models.CharField(max_length=10, choices=ProductType.choices)
    service = models.CharField(max_length=40, editable=False, db_index=True)
    total_licenses = models.PositiveIntegerField()
    # A counter kept by one conditional UPDATE per allocation; the CHECK constraint is the backstop.
    used = models.PositiveIntegerField(default=0, editable=False)
    start_date = models.DateField()
    expiry_date = models.DateField(null=True, blank=True, help_text="Empty: perpetual.")
    status = models.CharField(max_length=20, choices=PackStatus.choices, default=PackStatus.ACTIVE)
    comment = models.CharField(max_length=500, blank=True)
    assigned_ums = models.ForeignKey(
        UmsId, on_delete=models.SET_NULL, null=True, blank=True, related_name="packs", verbose_name="UMS ID"
    )
    created_at = models.DateTimeField(default=clock.now)
    # Set when the pack was merged into another one (status MERGED): where its licenses went.
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_from", editable=False
    )

    objects = ProductPackQuerySet.as_manager()

    class Meta:
        ordering = ["pack_id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(used__lte=models.F("total_licenses")), name="pack_used_lte_total"
            ),
            models.CheckConstraint(condition=Q(used__gte=0), name="pack_used_not_negative"),
        ]

    def __str__(self):
        return self.pack_id

    def save(self, *args, size_change=None, **kwargs):
        """A new pack starts its size history (reason CREATED unless ``size_change`` says otherwise,
        e.g. ``{"reason": SizeChangeReason.SPLIT, "actor": ..., "detail": ...}``), so the history
        explains the whole of ``total_licenses``. ``bulk_create`` writes no history."""
        self.service = service_for(self.product_type, self.pack_id)
        if self._state.adding and self.assigned_ums_id is None and self.company_id is not None:
            # ILP "Auto assign": a new pack of the company goes to its auto-assign UMS ID.
            self.assigned_ums = (
                UmsId.objects.filter(company_id=self.company_id, auto_assign=True)
                .order_by("registered_at", "pk")
                .first()
            )
        if not self._state.adding:
            if kwargs.get("update_fields") is None:
                # ``used`` moves only by the allocation's conditional UPDATE: a save from an older
                # read (an import, an admin form left open) must never write it back.
                kwargs["update_fields"] = [
                    f.name for f in self._meta.concrete_fields if not f.primary_key and f.name != "used"
                ]
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            super().save(*args, **kwargs)
            PackSizeChange.objects.create(
                pack=self,
                at=self.created_at,
                old_total=0,
                new_total=self.total_licenses,
                **{"reason": SizeChangeReason.CREATED, **(size_change or {})},
            )

    @property
    def free(self):
        return self.total_licenses - self.used

    @property
    def perpetual(self):
        return self.expiry_date is None

    def effective_status(self, on=None):
        """What the License Portal shows: stored ARCHIVED/MERGED win, otherwise the dates decide."""
        on = on or clock.today()
        if self.status in (PackStatus.ARCHIVED, PackStatus.MERGED):
            return self.status
        if self.start_date > on:
            return PackStatus.NOT_YET_ACTIVATED
        if self.expiry_date is not None and self.expiry_date < on:
            return PackStatus.EXPIRED
        return PackStatus.ACTIVE

    def get_effective_status_display(self):
        return PackStatus(self.effective_status()).label


class LicenseSlot(models.Model):
    """One license of a pack, bound to one unit ID. Released slots stay as history."""

    pack = models.ForeignKey(ProductPack, on_delete=models.PROTECT, related_name="slots")
    unit_id = models.CharField("Unit ID", max_length=18, validators=[validate_unit_id], db_index=True)
    ums = models.ForeignKey(UmsId, on_delete=models.SET_NULL, null=True, blank=True, related_name="slots")
    bound_at = models.DateTimeField(default=clock.now)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=200, blank=True, help_text="Who removed the hardware.")

    class Meta:
        ordering = ["pack_id", "unit_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pack", "unit_id"],
                condition=Q(released_at__isnull=True),
                name="one_active_slot_per_unit_and_pack",
            )
        ]

    def __str__(self):
        return f"{self.pack_id}:{self.unit_id}"


class SizeChangeReason(models.TextChoices):
    CREATED = "CREATED", "Created"
    SPLIT = "SPLIT", "Split"
    MERGE = "MERGE", "Merge"
    IMPORT = "IMPORT", "Import"


class PackSizeChange(models.Model):
    """One change of a pack's ``total_licenses``, appended by the operation that made it (pack
    creation, split, merge, import). Never edited: the rows of a pack chain from 0 to its total."""

    pack = models.ForeignKey(ProductPack, on_delete=models.PROTECT, related_name="size_changes")
    at = models.DateTimeField(default=clock.now)
    old_total = models.PositiveIntegerField()
    new_total = models.PositiveIntegerField()
    reason = models.CharField(max_length=20, choices=SizeChangeReason.choices)
    actor = models.CharField(max_length=200, blank=True)
    detail = models.TextField(
        blank=True, help_text="The other packs involved, or where the change came from."
    )

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["pack", "at"])]

    def __str__(self):
        return f"{self.pack_id}: {self.old_total} -> {self.new_total} ({self.reason})"

    @property
    def change(self):
        return self.new_total - self.old_total


class AldToken(models.Model):
    """An ALD token of a subscription key (ILP *Generate ALD Token*), for service providers whose one
    UMS serves several companies. Only a SHA-256 hash is kept: the token itself is shown once, when it
    is made. *Delete ALD Token* revokes it (``revoked_at``) and issues a new one."""

    subscription_key = models.ForeignKey(SubscriptionKey, on_delete=models.PROTECT, related_name="ald_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False, help_text="The token's first characters.")
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.CharField(max_length=200)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "ALD token"
        ordering = ["subscription_key_id", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription_key"],
                condition=Q(revoked_at__isnull=True),
                name="one_current_ald_token_per_key",
            )
        ]

    def __str__(self):
        return f"{self.hint}… ({self.subscription_key_id})"

    @property
    def revoked(self):
        return self.revoked_at is not None


class IlsRequest(models.Model):
    """The answer the licensing service gave to one write request, kept under the caller's
    idempotency key: a retry with the same key (after a timeout, say) gets this answer again and
    never takes a second slot."""

    caller = models.CharField(max_length=120, help_text="ums:<UMS ID pk> or token:<subscription key pk>")
    idempotency_key = models.CharField(max_length=100)
    request_digest = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(default=0)
    response = models.JSONField(default=dict)
    at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        verbose_name = "ILS request"
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "idempotency_key"], name="one_answer_per_idempotency_key"
            )
        ]

    def __str__(self):
        return f"{self.caller} {self.idempotency_key}"


class PortalAction(models.TextChoices):
    EULA_ACCEPTED = "EULA_ACCEPTED", "EULA accepted"
    SPLIT = "SPLIT", "Split"
    MERGE = "MERGE", "Merge"
    REMOVE_HARDWARE = "REMOVE_HARDWARE", "Remove hardware"
    COMMENT = "COMMENT", "Comment"
    REGISTER = "REGISTER", "Register UMS ID"
    RENAME = "RENAME", "Rename UMS ID"
    CHANGE_UMS_ID = "CHANGE_UMS_ID", "Change UMS ID"
    ASSIGN = "ASSIGN", "Assign packs"
    UNASSIGN = "UNASSIGN", "Unassign packs"
    AUTO_ASSIGN = "AUTO_ASSIGN", "Auto assign"
    TOKEN_GENERATED = "TOKEN_GENERATED", "Generate ALD token"
    TOKEN_DELETED = "TOKEN_DELETED", "Delete ALD token"


# the actions of the UMS IDs page, listed there
UMS_ID_ACTIONS = (
    PortalAction.REGISTER,
    PortalAction.RENAME,
    PortalAction.CHANGE_UMS_ID,
    PortalAction.ASSIGN,
    PortalAction.UNASSIGN,
    PortalAction.AUTO_ASSIGN,
)


class LicensePortalAction(models.Model):
    """One change made in the License Portal, who made it and what it did: appended by the service
    that made the change, in the same transaction, never edited (docs/DESIGN.md invariant 4).

    ``pack_id`` is the pack acted on (the merge target, the split source, the pack hardware was
    removed from); ``related_packs`` the other packs involved, as ``,ID,ID,`` so that a pack's
    history finds the actions that involved it by an exact match."""

    at = models.DateTimeField(default=clock.now, db_index=True)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=20, choices=PortalAction.choices)
    pack_id = models.CharField("Pack ID", max_length=20, blank=True, db_index=True)
    related_packs = models.TextField(blank=True)
    order_number = models.CharField("Order", max_length=40, blank=True)
    subscription_key = models.CharField("Subscription key", max_length=40, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "License Portal action"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor}: {self.get_action_display()} {self.pack_id}"

    @property
    def related_pack_ids(self):
        return [p for p in self.related_packs.split(",") if p]

    @staticmethod
    def packs_field(pack_ids) -> str:
        return "," + ",".join(pack_ids) + "," if pack_ids else ""
