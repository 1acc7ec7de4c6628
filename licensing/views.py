import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, Count, F, Max, Min, Prefetch, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.views.decorators.http import require_POST, require_safe
from django_filters.views import FilterView
from django_tables2 import RequestConfig, SingleTableMixin

from ald_portal.exports import FORMATS, ExportMixin, export_response, unknown_format_response

from . import services
from .contract import LicenseServiceError
from .filtersets import ActivityFilterSet, OrderFilterSet, PackFilterSet, SubscriptionKeyFilterSet
from .forms import AcceptEulaForm, CommentForm, MergeForm, RemoveHardwareForm, SplitForm
from .models import (
    PACK_ID_RE,
    AldToken,
    LicensePortalAction,
    Order,
    PackSizeChange,
    PackStatus,
    ProductPack,
    SubscriptionKey,
)
from .tables import (
    LicensePortalActionTable,
    LicenseSlotTable,
    OrderTable,
    PackSizeChangeTable,
    PackTable,
    SubscriptionKeyTable,
)

CHANGE_PERMISSION = "licensing.change_productpack"
ORDER_CHANGE_PERMISSION = "licensing.change_order"


def export_requested(request, table, basename):
    """``?export=csv|xlsx|json`` on a page with a table: the whole sorted table as a file, else None."""
    fmt = request.GET.get("export")
    if not fmt:
        return None
    if fmt not in FORMATS:
        return unknown_format_response(fmt, FORMATS)
    RequestConfig(request, paginate=False).configure(table)
    return export_response(table, fmt, basename)


class PackListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    export_basename = "packs"
    filterset_class = PackFilterSet
    table_class = PackTable
    template_name = "licensing/pack_list.html"
    # The table paginates; paginate_by on the view would paginate (and count) a second time.
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return ProductPack.objects.select_related("assigned_ums", "subscription_key").order_by(
            "pack_id", "pk"
        )


def _pack(pack_id):
    if not PACK_ID_RE.match(pack_id):  # no such pack; and never a NUL byte in a query
        raise Http404(f"No Product Pack {pack_id!r}.")
    return get_object_or_404(
        ProductPack.objects.select_related(
            "company", "order", "subscription_key", "assigned_ums", "merged_into"
        ),
        pack_id=pack_id,
    )


@login_required
@require_safe
def pack_detail(request, pack_id):
    return _render_pack(request, _pack(pack_id))


def _render_pack(request, pack, bound=None):
    """The pack page (ILP pack management dialog); ``bound`` holds the one posted form that failed."""
    can_change = request.user.has_perm(CHANGE_PERMISSION)
    candidates = list(services.merge_candidates(pack))
    forms = {
        "split": SplitForm(),
        "merge": MergeForm(candidates=candidates),
        "remove_hardware": RemoveHardwareForm(),
        "comment": CommentForm(initial={"comment": pack.comment}),
        "eula": AcceptEulaForm(),
    }
    forms.update(bound or {})
    ticked = forms["remove_hardware"].data.getlist("unit_ids") if forms["remove_hardware"].is_bound else ()
    slots = pack.slots.filter(released_at__isnull=True).select_related("ums").order_by("unit_id", "pk")
    if bound is None:  # the licenses of the pack as a file: unit ID, bound at, UMS ID
        exported = export_requested(
            request, LicenseSlotTable(slots, exclude=("device", "remove")), f"{pack.pack_id}-licenses"
        )
        if exported is not None:
            return exported
    licenses = LicenseSlotTable(
        slots, ticked=ticked, disabled=not can_change or pack.status == PackStatus.MERGED
    )
    RequestConfig(request, paginate={"per_page": 50}).configure(licenses)
    actions = LicensePortalActionTable(
        LicensePortalAction.objects.filter(
            Q(pack_id=pack.pack_id) | Q(related_packs__contains=f",{pack.pack_id},")
        ).order_by("-at", "-pk"),
        prefix="actions-",
        exclude=("subscription_key",),
    )
    RequestConfig(request, paginate={"per_page": 25}).configure(actions)
    history = PackSizeChangeTable(
        PackSizeChange.objects.filter(pack=pack).order_by("-at", "-pk"), prefix="history-"
    )
    RequestConfig(request, paginate={"per_page": 25}).configure(history)
    return render(
        request,
        "licensing/pack_detail.html",
        {
            "pack": pack,
            "forms": forms,
            "candidates": candidates,
            "licenses": licenses,
            "history": history,
            "actions": actions,
            "can_change": can_change,
            "retired": pack.status in (PackStatus.MERGED, PackStatus.ARCHIVED),
            # a refused form is shown even where its section would be hidden, so its error is seen
            "failed": next(iter(bound or {}), None),
        },
    )


def _split(request, pack, data):
    new = services.split_pack(pack.pack_id, mode=data["mode"], count=data["count"], actor=_actor(request))
    return f"Split {new.total_licenses} licenses off {pack.pack_id} into the new pack {new.pack_id}."


def _merge(request, pack, data):
    target = services.merge_packs(pack.pack_id, data["packs"], actor=_actor(request))
    return (
        f"Merged {', '.join(data['packs'])} into {pack.pack_id}: "
        f"now {target.total_licenses} licenses, {target.used} used."
    )


def _remove_hardware(request, pack, data):
    result = services.remove_hardware(
        pack.pack_id, data["unit_ids"], actor=_actor(request), accept_terms=data["accept_terms"]
    )
    parts = []
    if result.removed:
        parts.append(
            f"Removed hardware {', '.join(result.removed)} from {result.pack_id}: "
            f"{len(result.removed)} license(s) freed."
        )
    if result.not_held:
        parts.append(f"{', '.join(result.not_held)} held no license in {result.pack_id} (already removed).")
    return " ".join(parts)


def _comment(request, pack, data):
    changed = services.set_pack_comment(pack.pack_id, data["comment"], actor=_actor(request))
    return f"Comment of {pack.pack_id} saved." if changed else "No change."


def _accept_eula(request, pack, data):
    order, accepted_now = services.accept_eula(pack.pack_id, actor=_actor(request))
    at = formats.date_format(timezone.localtime(order.eula_accepted_at), "SHORT_DATETIME_FORMAT")
    if accepted_now:
        return (
            f"EULA of order {order.number} accepted by {order.eula_accepted_by} at {at}: "
            "it covers every pack of the order."
        )
    return f"The EULA of order {order.number} was already accepted by {order.eula_accepted_by} at {at}."


ACTIONS = {
    # action in the URL: (its form on the page, form class, service call returning the success message)
    "split": ("split", SplitForm, _split),
    "merge": ("merge", MergeForm, _merge),
    "remove-hardware": ("remove_hardware", RemoveHardwareForm, _remove_hardware),
    "comment": ("comment", CommentForm, _comment),
    "accept-eula": ("eula", AcceptEulaForm, _accept_eula),
}


def _actor(request):
    return request.user.get_username()


@login_required
@require_POST
def pack_action(request, pack_id, action):
    if action not in ACTIONS:
        raise Http404(f"No pack action {action!r}.")
    if not request.user.has_perm(CHANGE_PERMISSION):
        raise PermissionDenied("Changing Product Packs needs the permission to change Product Packs.")
    pack = _pack(pack_id)
    key, form_class, call = ACTIONS[action]
    extra = {"candidates": services.merge_candidates(pack)} if form_class is MergeForm else {}
    form = form_class(request.POST, **extra)
    if form.is_valid():
        try:
            message = call(request, pack, form.cleaned_data)
        except ValidationError as exc:  # the service has the last word on the rules
            _add_service_error(form, exc)
        except LicenseServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, message)
            return redirect("licensing:pack_detail", pack_id=pack.pack_id)
    return _render_pack(request, pack, {key: form})


def _add_service_error(form, exc):
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, ValidationError(errors))


# --- Orders -------------------------------------------------------------------------------------------
# Sort keys without NULLs, so SQLite and PostgreSQL (which put NULLs at opposite ends) list alike:
# an order without a date is the oldest; a key with perpetual packs only expires last.
EARLIEST, LATEST = datetime.date(1, 1, 1), datetime.date(9999, 12, 31)


def _orders():
    return Order.objects.select_related("company").annotate(
        pack_count=Count("packs", filter=~Q(packs__status=PackStatus.MERGED)),
        license_count=Coalesce(Sum("packs__total_licenses"), 0),
        ordered_on=Coalesce("order_date", Value(EARLIEST)),
    )


class OrderListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    """ILP *Orders*: the orders with their EULA state; the EULA is accepted from the list too."""

    export_basename = "orders"
    filterset_class = OrderFilterSet
    table_class = OrderTable
    template_name = "licensing/order_list.html"
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return _orders().order_by("-ordered_on", "-pk")

    def get_table_kwargs(self):
        return {"can_change": self.request.user.has_perm(ORDER_CHANGE_PERMISSION)}


def _order(number):
    if "\x00" in number:
        raise Http404("No such order.")
    return get_object_or_404(_orders(), number=number)


@login_required
@require_safe
def order_detail(request, number):
    """ILP *Order details*: the order, its EULA and its subscriptions (packs)."""
    order = _order(number)
    packs = PackTable(
        ProductPack.objects.filter(order=order)
        .select_related("assigned_ums", "subscription_key")
        .order_by("pack_id", "pk"),
        request=request,
    )
    exported = export_requested(request, packs, f"order-{order.number}-packs")
    if exported is not None:
        return exported
    RequestConfig(request, paginate={"per_page": 50}).configure(packs)
    return render(
        request,
        "licensing/order_detail.html",
        {
            "order": order,
            "packs": packs,
            "keys": list(
                SubscriptionKey.objects.filter(packs__order=order)
                .distinct()
                .order_by("key")
                .values_list("key", flat=True)
            ),
            "can_change": request.user.has_perm(ORDER_CHANGE_PERMISSION),
        },
    )


@login_required
@require_POST
def order_accept_eula(request, number):
    if not request.user.has_perm(ORDER_CHANGE_PERMISSION):
        raise PermissionDenied("Accepting an EULA needs the permission to change orders.")
    order = _order(number)
    try:
        order, accepted_now = services.accept_order_eula(order.number, actor=_actor(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        at = formats.date_format(timezone.localtime(order.eula_accepted_at), "SHORT_DATETIME_FORMAT")
        if accepted_now:
            messages.success(
                request,
                f"EULA of order {order.number} accepted by {order.eula_accepted_by} at {at}: "
                "it covers every pack of the order.",
            )
        else:
            messages.info(
                request,
                f"The EULA of order {order.number} was already accepted by {order.eula_accepted_by} at {at}.",
            )
    if request.POST.get("next") == "list":
        return redirect("licensing:order_list")
    return redirect("licensing:order_detail", number=order.number)


# --- Subscription keys -------------------------------------------------------------------------------
class SubscriptionKeyListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    """ILP *Subscription keys*: each key with its expiration date (its packs' latest expiry), packs
    and orders. ALD token actions (generate, delete) belong in the table's "ALD token" column."""

    export_basename = "subscription-keys"
    filterset_class = SubscriptionKeyFilterSet
    table_class = SubscriptionKeyTable
    template_name = "licensing/subscription_key_list.html"
    table_pagination = {"per_page": 50}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # the ALD token cell reads this from the page's context
        context["can_change_keys"] = self.request.user.has_perm("licensing.change_subscriptionkey")
        return context

    def get_queryset(self):
        live = ~Q(packs__status=PackStatus.MERGED)
        return (
            SubscriptionKey.objects.select_related("company")
            .annotate(
                license_count=Coalesce(Sum("packs__total_licenses", filter=live), 0),
                start=Min("packs__start_date", filter=live),
                expiration=Max("packs__expiry_date", filter=live),
                live_count=Count("packs", filter=live),
            )
            .annotate(
                starts_on=Coalesce("start", Value(EARLIEST)),
                # perpetual packs only: last of all; no pack at all: first
                expires_on=Case(
                    When(expiration__isnull=False, then=F("expiration")),
                    When(live_count__gt=0, then=Value(LATEST)),
                    default=Value(EARLIEST),
                ),
            )
            .prefetch_related(
                Prefetch(
                    "packs",
                    queryset=ProductPack.objects.exclude(status=PackStatus.MERGED)
                    .select_related("order")
                    .order_by("pack_id"),
                    to_attr="live_packs",
                ),
                Prefetch(
                    "ald_tokens", queryset=AldToken.objects.filter(revoked_at__isnull=True), to_attr="current"
                ),
            )
            .order_by("key", "pk")
        )


# --- Activity -----------------------------------------------------------------------------------------
class ActivityListView(LoginRequiredMixin, ExportMixin, SingleTableMixin, FilterView):
    """Every change made in the License Portal, who made it, newest first."""

    export_basename = "license-portal-activity"
    filterset_class = ActivityFilterSet
    table_class = LicensePortalActionTable
    template_name = "licensing/activity_list.html"
    table_pagination = {"per_page": 50}

    def get_queryset(self):
        return LicensePortalAction.objects.order_by("-at", "-pk")
