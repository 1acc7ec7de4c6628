"""ILP *UMS ID* and *Subscription keys* pages: register, rename, change and download UMS IDs,
assign packs to them, auto assign; generate and delete ALD tokens. Each change goes through one
service in licensing.services, which logs it with the user's name."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from . import services
from .certificates import certificate_subject, load_certificate
from .models import (
    UMS_ID_ACTIONS,
    Company,
    LicensePortalAction,
    ProductPack,
    SubscriptionKey,
    UmsId,
)

CHANGE_UMS_ID = "licensing.change_umsid"
CHANGE_SUBSCRIPTION_KEY = "licensing.change_subscriptionkey"


def _ums_ids():
    return (
        UmsId.objects.select_related("company")
        .annotate(consumed=Count("slots", filter=Q(slots__released_at__isnull=True)))
        .prefetch_related(Prefetch("packs", queryset=ProductPack.objects.order_by("pack_id", "pk")))
        .order_by("name", "pk")
    )


@login_required
@require_safe
def ums_id_list(request):
    return _render_ums_ids(request)


def _render_ums_ids(request, failed=None):
    ums_ids = list(_ums_ids())
    assignable = {}
    for pack in (
        ProductPack.objects.non_archived()
        .filter(company_id__in={u.company_id for u in ums_ids})
        .order_by("pack_id", "pk")
    ):
        assignable.setdefault(pack.company_id, []).append(pack)
    for ums in ums_ids:
        ums.assignable = [p for p in assignable.get(ums.company_id, []) if p.assigned_ums_id != ums.pk]
        ums.subject = ""
        if ums.certificate_pem:
            try:
                ums.subject = certificate_subject(load_certificate(ums.certificate_pem))
            except ValidationError:
                ums.subject = "(not a readable certificate)"
    return render(
        request,
        "licensing/ums_ids.html",
        {
            "ums_ids": ums_ids,
            "companies": Company.objects.order_by("name"),
            "can_change": request.user.has_perm(CHANGE_UMS_ID),
            "events": LicensePortalAction.objects.filter(action__in=UMS_ID_ACTIONS)[:25],
            "failed": failed or {},
        },
        status=400 if failed else 200,
    )


def _actor(request):
    return request.user.get_username()


def _rename(request, ums):
    changed = services.rename_ums_id(ums, request.POST.get("name", ""), actor=_actor(request))
    return f"UMS ID renamed to {ums.name}." if changed else "No change."


def _auto_assign(request, ums):
    on = request.POST.get("auto_assign") == "on"
    changed = services.set_auto_assign(ums, on, actor=_actor(request))
    state = "on: future Product Packs are assigned to it" if on else "off"
    return f"Auto assign for {ums.name} {state}." if changed else "No change."


def _packs_posted(request, ums):
    wanted = request.POST.getlist("packs")
    if not wanted:
        raise ValidationError({"packs": "Choose at least one Product Pack."})
    packs = list(ProductPack.objects.filter(pack_id__in=wanted))
    missing = sorted(set(wanted) - {p.pack_id for p in packs})
    if missing:
        raise ValidationError({"packs": f"Pack {missing[0]!r} does not exist."})
    return packs


def _assign(request, ums):
    packs = _packs_posted(request, ums)
    n = services.assign_packs(ums, packs, actor=_actor(request))
    return f"{n} pack(s) assigned to {ums.name}." if n else "No change."


def _unassign(request, ums):
    n = services.unassign_packs(ums, _packs_posted(request, ums), actor=_actor(request))
    return f"{n} pack(s) unassigned from {ums.name}." if n else "No change."


def _change(request, ums):
    pem = _certificate_posted(request)
    services.change_ums_id(ums, pem, actor=_actor(request))
    return f"UMS ID of {ums.name} changed to {ums.fingerprint}; its {ums.packs.count()} pack assignment(s) are kept."


def _certificate_posted(request):
    upload = request.FILES.get("certificate_file")
    if upload is not None:
        if upload.size > 20_000:
            raise ValidationError(
                {"certificate": f"{upload.name} is {upload.size} bytes; a certificate is smaller."}
            )
        try:
            return upload.read().decode()
        except UnicodeDecodeError:
            raise ValidationError({"certificate": f"{upload.name} is not a PEM text file."}) from None
    return request.POST.get("certificate", "")


UMS_ACTIONS = {
    "rename": _rename,
    "auto-assign": _auto_assign,
    "assign": _assign,
    "unassign": _unassign,
    "change": _change,
}


def _refused(request, key, exc):
    for message in exc.messages:
        messages.error(request, message)
    return _render_ums_ids(request, failed={key: exc.messages})


@login_required
@require_POST
def ums_id_action(request, pk, action):
    if action not in UMS_ACTIONS:
        raise Http404(f"No UMS ID action {action!r}.")
    if not request.user.has_perm(CHANGE_UMS_ID):
        raise PermissionDenied("Changing UMS IDs needs the permission to change UMS IDs.")
    ums = get_object_or_404(UmsId, pk=pk)
    try:
        message = UMS_ACTIONS[action](request, ums)
    except ValidationError as exc:
        return _refused(request, f"{ums.pk}-{action}", exc)
    messages.success(request, message)
    return redirect("licensing:ums_id_list")


@login_required
@require_POST
def ums_id_register(request):
    if not request.user.has_perm(CHANGE_UMS_ID):
        raise PermissionDenied("Registering UMS IDs needs the permission to change UMS IDs.")
    posted = request.POST.get("company", "")
    company = (
        Company.objects.filter(pk=int(posted)).first()
        if posted.isascii() and posted.isdigit() and len(posted) < 19
        else None
    )
    try:
        if company is None:
            raise ValidationError({"company": f"Company {request.POST.get('company', '')!r} does not exist."})
        ums = services.register_ums_certificate(
            company, _certificate_posted(request), request.POST.get("name", ""), actor=_actor(request)
        )
    except ValidationError as exc:
        return _refused(request, "register", exc)
    messages.success(request, f"UMS ID {ums.name} ({ums.fingerprint}) registered.")
    return redirect("licensing:ums_id_list")


@login_required
@require_safe
def ums_id_certificate(request, pk):
    ums = get_object_or_404(UmsId, pk=pk)
    if not ums.certificate_pem:
        raise Http404(f"UMS ID {ums.name} has no certificate on file.")
    response = HttpResponse(ums.certificate_pem, content_type="application/x-x509-ca-cert")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in ums.name)[:60] or "ums-id"
    response["Content-Disposition"] = f'attachment; filename="{safe}.crt"'
    return response


# --- Subscription keys and their ALD tokens ------------------------------------------------------------


@login_required
def _token_answer(request, new_token=None, failed=None):
    """The answer to Generate / Delete ALD token: the new token, shown in this response only."""
    return render(
        request,
        "licensing/ald_token_shown.html",
        {"new_token": new_token, "failed": failed},
        status=400 if failed else 200,
    )


@login_required
@require_POST
def ald_token_action(request, pk, action):
    if action not in ("generate", "delete"):
        raise Http404(f"No ALD token action {action!r}.")
    if not request.user.has_perm(CHANGE_SUBSCRIPTION_KEY):
        raise PermissionDenied("ALD tokens need the permission to change subscription keys.")
    key = get_object_or_404(SubscriptionKey, pk=pk)
    call = services.generate_ald_token if action == "generate" else services.delete_ald_token
    try:
        row, token = call(key, actor=_actor(request))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return _token_answer(request, failed=exc.messages)
    # Shown in this answer only: never in a message (those are kept in the session) nor a redirect.
    response = _token_answer(
        request, new_token={"key": key.key, "token": token, "hint": row.hint, "action": action}
    )
    response["Cache-Control"] = "no-store"
    return response
