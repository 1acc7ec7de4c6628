"""ILS v1 endpoints. Each one authenticates the caller (a signed UMS ID request or an ALD token),
reads a small JSON body, calls one licensing service and answers JSON. Refusals are
``{"error": {"code": ..., "message": ...}}`` with a code from LicenseErrorCode, never a 500.

Writes are idempotent by the caller's ``Idempotency-Key``: the first answer is stored with the key in
the same transaction as the write, so a retry (the answer was lost to a timeout) gets that answer
again instead of a second slot. A concurrent retry waits on the key's row and then reads it."""

import datetime
import hashlib
import re
from functools import wraps

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ald_portal import jsondata

from .. import services
from ..contract import (
    HEADER_IDEMPOTENCY_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HEADER_UMS_ID,
    TOKEN_SCHEME,
    LicenseErrorCode,
    LicenseServiceError,
)
from ..models import PACK_ID_RE, IlsRequest

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
MAX_UNITS_PER_REQUEST = 1000

STATUS = {
    LicenseErrorCode.BAD_REQUEST: 400,
    LicenseErrorCode.BAD_CREDENTIAL: 401,
    LicenseErrorCode.REVOKED_CREDENTIAL: 401,
    LicenseErrorCode.PACK_NOT_ASSIGNED: 403,
    LicenseErrorCode.UNKNOWN_PACK: 404,
    LicenseErrorCode.NO_FREE_LICENSE: 409,
    LicenseErrorCode.PACK_EXPIRED: 409,
    LicenseErrorCode.PACK_NOT_ACTIVE: 409,
    LicenseErrorCode.EULA_NOT_ACCEPTED: 409,
    LicenseErrorCode.UNKNOWN_UNIT_ID: 422,
    LicenseErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
}


def _error(code, message):
    return STATUS.get(code, 400), {"error": {"code": code, "message": message}}


def render_json(status, body, replayed=False):
    """The HTTP answer; separate so that tests can lose it after the write has been committed."""
    response = JsonResponse(body, status=status)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _bad(message):
    return LicenseServiceError(LicenseErrorCode.BAD_REQUEST, message)


def authenticate(request):
    """The caller of a request, or LicenseServiceError(bad_credential / revoked_credential)."""
    key = request.headers.get(HEADER_IDEMPOTENCY_KEY, "")
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise _bad(
            f"Header {HEADER_IDEMPOTENCY_KEY} {key!r} is missing or not 8 to 100 letters, digits or . _ : -."
        )
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme != TOKEN_SCHEME or not token.strip():
            raise LicenseServiceError(
                LicenseErrorCode.BAD_CREDENTIAL,
                f"Authorization must be '{TOKEN_SCHEME} <token>', not scheme {scheme!r}.",
            )
        return services.authenticate_token(token.strip())
    if not request.headers.get(HEADER_UMS_ID):
        raise LicenseServiceError(
            LicenseErrorCode.BAD_CREDENTIAL,
            f"No credential: sign the request with the UMS ID ({HEADER_UMS_ID}, {HEADER_TIMESTAMP}, "
            f"{HEADER_SIGNATURE}) or send 'Authorization: {TOKEN_SCHEME} <token>'.",
        )
    return services.authenticate_ums(
        request.headers.get(HEADER_UMS_ID),
        request.headers.get(HEADER_TIMESTAMP),
        key,
        request.headers.get(HEADER_SIGNATURE),
        request.method,
        request.get_full_path(),
        request.body,
    )


def endpoint(method, idempotent_write=False):
    """Method check, authentication, JSON errors; a write runs under its idempotency key."""

    def wrap(handler):
        @csrf_exempt
        @wraps(handler)
        def view(request):
            if request.method != method:
                response = render_json(
                    *_error(
                        LicenseErrorCode.BAD_REQUEST, f"{request.path} takes {method}, not {request.method}."
                    )
                )
                response.status_code = 405
                response["Allow"] = method
                return response
            try:
                caller = authenticate(request)
                if not idempotent_write:
                    return render_json(200, handler(request, caller))
                status, body, replayed = _run_once(request, caller, handler)
            except LicenseServiceError as exc:
                return render_json(*_error(exc.code, exc.message))
            return render_json(status, body, replayed)

        return view

    return wrap


def _run_once(request, caller, handler):
    key = request.headers[HEADER_IDEMPOTENCY_KEY]
    digest = hashlib.sha256(
        request.method.encode() + b"\n" + request.get_full_path().encode() + b"\n" + request.body
    ).hexdigest()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IlsRequest.objects.create(
                    caller=caller.scope, idempotency_key=key, request_digest=digest
                )
        except IntegrityError:
            record = IlsRequest.objects.select_for_update().get(caller=caller.scope, idempotency_key=key)
            if record.request_digest != digest:
                raise LicenseServiceError(
                    LicenseErrorCode.IDEMPOTENCY_KEY_REUSED,
                    f"Idempotency key {key!r} was used before for another request; use a new key.",
                ) from None
            return record.status_code, record.response, True
        try:
            status, body = 200, handler(request, caller)
        except LicenseServiceError as exc:
            status, body = _error(exc.code, exc.message)
        record.status_code, record.response = status, body
        record.save(update_fields=["status_code", "response"])
    return status, body, False


def _json(request) -> dict:
    try:
        data = jsondata.loads(request.body or b"null")
    except (ValueError, RecursionError) as exc:
        raise _bad(f"The body is not JSON (or is nested too deeply): {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise _bad("The body must be a JSON object.")
    bad = jsondata.unstorable_text(data)
    if bad:
        raise _bad(f"{bad} contains a NUL character or a lone surrogate.")
    return data


def _pack_id(value, field="pack_id"):
    if not isinstance(value, str) or not PACK_ID_RE.match(value):
        raise _bad(f"{field} {value!r} is not a Pack ID (PREFIX-XXXXX).")
    return value


def _scope(caller):
    if caller.subscription_key_id is not None:
        return {"subscription_key_id": caller.subscription_key_id}
    return {}


def _fp(caller):
    return caller.ums_fingerprint


@endpoint("GET")
def packs(request, caller):
    return {"packs": [p.as_json() for p in services.packs_for_ums(_fp(caller), **_scope(caller))]}


@endpoint("GET")
def merged_packs(request, caller):
    return {"merged": services.merged_pack_map(caller)}


@endpoint("GET")
def slots(request, caller):
    pack_ids = request.GET.getlist("pack_id") or None
    for p in pack_ids or ():
        _pack_id(p)
    rows = services.active_slots(_fp(caller), pack_ids, **_scope(caller))
    return {"slots": [list(row) for row in rows]}


@endpoint("POST", idempotent_write=True)
def request_licenses(request, caller):
    data = _json(request)
    pack_id = _pack_id(data.get("pack_id"))
    units = data.get("unit_ids")
    if not isinstance(units, list) or not units:
        raise _bad(f"unit_ids {units!r} must be a non-empty list of unit IDs.")
    if len(units) > MAX_UNITS_PER_REQUEST:
        raise _bad(f"unit_ids has {len(units)} entries; at most {MAX_UNITS_PER_REQUEST} per request.")
    result = services.request_licenses(pack_id, units, _fp(caller), **_scope(caller))
    return result.as_json()


@endpoint("POST", idempotent_write=True)
def release_license(request, caller):
    data = _json(request)
    pack_id = _pack_id(data.get("pack_id"))
    unit_id = data.get("unit_id")
    if not isinstance(unit_id, str) or not services.UNIT_ID_RE.match(unit_id):
        raise LicenseServiceError(
            LicenseErrorCode.UNKNOWN_UNIT_ID,
            f"Unit ID {unit_id!r} is not 12 or 18 upper-case hexadecimal digits.",
        )
    services.authorize_pack(pack_id, caller)
    return {"released": services.release_license(pack_id, unit_id, actor=f"UMS ({caller})")}


@endpoint("POST", idempotent_write=True)
def reconcile(request, caller):
    corrected = services.reconcile_pack_counters(caller)
    return {"corrected": {k: list(v) for k, v in corrected.items()}}


@endpoint("POST")
def license_file(request, caller):
    """The signed license file of one license this UMS holds (it writes nothing: no idempotency record)."""
    data = _json(request)
    pack_id = _pack_id(data.get("pack_id"))
    unit_id, service = data.get("unit_id"), data.get("service")
    if not isinstance(unit_id, str) or not isinstance(service, str):
        raise _bad(f"unit_id {unit_id!r} and service {service!r} must be strings.")
    try:
        expires = datetime.date.fromisoformat(data["expires"]) if data.get("expires") else None
        issued_at = datetime.datetime.fromisoformat(data.get("issued_at") or "")
        if issued_at.tzinfo is not None:
            issued_at.astimezone(datetime.UTC)  # year 1 with an offset east of UTC is no time at all
    except (TypeError, ValueError, OverflowError):
        raise _bad(
            f"expires {data.get('expires')!r} must be a date (YYYY-MM-DD) or null and issued_at "
            f"{data.get('issued_at')!r} a date and time (ISO 8601)."
        ) from None
    content = services.license_file_for(caller, pack_id, unit_id, service, expires, issued_at)
    return {"license_file": content.decode()}
