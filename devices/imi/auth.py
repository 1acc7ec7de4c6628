"""Who is calling the IMI: HTTP Basic credentials (on ``POST /v3/login``, or on any request: UMS
12.08.130 "direct authorization") or the API's own JSESSIONID session, valid 30 minutes after the
last request. The portal's login cookie is never accepted here, so a browser logged into the
portal cannot be made to call the API (no CSRF through the API).

Failed credentials from one address in a row are counted; from the fifth failure on, the address
is locked out, for 30 seconds doubling with each further failure up to 15 minutes; every failure
and lock-out is logged."""

import base64
import binascii
import datetime
import hashlib
import logging
import secrets

from django.contrib.auth import authenticate
from django.db import transaction

from ald_portal import clock

from ..models import ImiLoginFailure, ImiSession
from . import errors

log = logging.getLogger("devices.imi")

SESSION_COOKIE = "JSESSIONID"
SESSION_TIMEOUT = datetime.timedelta(minutes=30)
FREE_FAILURES = 4  # the fifth failure in a row locks the address
FIRST_LOCK = datetime.timedelta(seconds=30)
LONGEST_LOCK = datetime.timedelta(minutes=15)
FORGET_FAILURES_AFTER = datetime.timedelta(hours=1)


def client_address(request) -> str:
    # REMOTE_ADDR only: a forwarded-for header is the caller's word, not its address.
    return (request.META.get("REMOTE_ADDR") or "unknown")[:45]


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


# --- failed logins ----------------------------------------------------------------------------------


def lock_for(failures: int) -> datetime.timedelta | None:
    if failures <= FREE_FAILURES:
        return None
    return min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES - 1), LONGEST_LOCK)


def check_not_locked(address: str) -> None:
    row = ImiLoginFailure.objects.filter(address=address).first()
    now = clock.now()
    if row and row.locked_until and row.locked_until > now:
        wait = int((row.locked_until - now).total_seconds()) + 1
        log.warning("IMI login from %s refused: locked out for %d more second(s)", address, wait)
        raise errors.invalid_credentials(headers={"Retry-After": str(wait)})


def record_failure(address: str, username: str) -> None:
    now = clock.now()
    with transaction.atomic():
        row, _ = ImiLoginFailure.objects.select_for_update().get_or_create(address=address)
        if row.failures and row.last_failure_at < now - FORGET_FAILURES_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        row.last_username = username[:150]
        lock = lock_for(row.failures)
        row.locked_until = now + lock if lock else None
        row.save()
    log.warning(
        "IMI login failed for user %r from %s (%d failure(s) in a row)%s",
        username,
        address,
        row.failures,
        f"; address locked out for {int(lock.total_seconds())} s" if lock else "",
    )


def clear_failures(address: str) -> None:
    ImiLoginFailure.objects.filter(address=address).delete()


# --- credentials and sessions -----------------------------------------------------------------------


def basic_credentials(request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return ("", "")  # a Basic header that says nothing readable is a failed login
    username, _, password = decoded.partition(":")
    return username, password


def login_with_credentials(request, credentials):
    """The active user with these credentials, or ITG-0B002 (counted against the address)."""
    address = client_address(request)
    check_not_locked(address)
    username, password = credentials
    user = authenticate(request, username=username, password=password) if username else None
    if user is None or not user.is_active:
        record_failure(address, username)
        raise errors.invalid_credentials()
    clear_failures(address)
    return user


def start_session(request, user) -> str:
    session_id = secrets.token_hex(16).upper()
    ImiSession.objects.create(key_hash=_hash(session_id), user=user, address=client_address(request))
    log.info("IMI login of %s from %s", user.get_username(), client_address(request))
    return session_id


def session_id_of(request) -> str | None:
    return request.COOKIES.get(SESSION_COOKIE) or None


def session_user(session_id: str):
    """The user of a live session; the session's 30 minutes start again. An expired session is
    removed."""
    now = clock.now()
    session = ImiSession.objects.select_related("user").filter(key_hash=_hash(session_id)).first()
    if session is None:
        raise errors.no_session(session_id)
    if session.last_seen_at + SESSION_TIMEOUT <= now or not session.user.is_active:
        session.delete()
        raise errors.no_session(session_id)
    ImiSession.objects.filter(pk=session.pk, last_seen_at__lt=now).update(last_seen_at=now)
    return session.user


def end_session(session_id: str) -> bool:
    deleted, _ = ImiSession.objects.filter(key_hash=_hash(session_id)).delete()
    return bool(deleted)


def forget_expired_sessions() -> int:
    deleted, _ = ImiSession.objects.filter(last_seen_at__lte=clock.now() - SESSION_TIMEOUT).delete()
    return deleted


def request_user(request):
    """The caller of an API request: Basic credentials if sent, else the JSESSIONID session."""
    credentials = basic_credentials(request)
    if credentials is not None:
        return login_with_credentials(request, credentials)
    session_id = session_id_of(request)
    if session_id is None:
        raise errors.no_session_id()
    return session_user(session_id)
