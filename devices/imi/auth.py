"""Who is calling the IMI: HTTP Basic credentials (on ``POST /v3/login``, or on any request: UMS
12.08.130 "direct authorization") or the API's own JSESSIONID session, valid 30 minutes after the
last request. The portal's login cookie is never accepted here, so a browser logged into the
portal cannot be made to call the API (no CSRF through the API).

Failed credentials from one address in a row are counted; from the fifth failure on, the address
is locked out, for 30 seconds doubling with each further failure up to 15 minutes; every failure
and lock-out is logged. Parallel attempts and logins as other accounts do not get round the count
(see "failed logins" below)."""

import base64
import binascii
import datetime
import hashlib
import logging
import secrets
import time

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
# Every password check from an address is admitted under the address's row lock before it runs, and
# its outcome is written under the same lock after. At most as many checks run at once as failures
# are left before the lock-out (at least one), so a burst of parallel guesses is decided one failure
# at a time: a check beyond that waits its turn (up to WAIT_FOR_TURN), and once the fifth failure is
# in, the rest are refused unchecked. Failures are kept per user name: a success forgets only that
# user's failures, so logging in as another account does not wipe the guesses made at this one.

CHECK_RUNS_OUT_AFTER = datetime.timedelta(seconds=60)  # a check counted running that long was killed
WAIT_FOR_TURN = 10.0  # seconds a check waits for the checks running before it
TURN_POLL = 0.05


def lock_for(failures: int) -> datetime.timedelta | None:
    if failures <= FREE_FAILURES:
        return None
    return min(FIRST_LOCK * 2 ** (failures - FREE_FAILURES - 1), LONGEST_LOCK)


def _refuse(address: str, wait: int, why: str):
    log.warning("IMI login from %s refused: %s", address, why)
    return errors.invalid_credentials(headers={"Retry-After": str(wait)})


def admit_check(address: str) -> None:
    """Before a password from ``address`` is checked: refuse a locked address (ITG-0B002 with
    Retry-After), or count the check as running, waiting for a turn when as many checks run as
    failures are left before the lock-out."""
    deadline = time.monotonic() + WAIT_FOR_TURN
    while True:
        now = clock.now()
        with transaction.atomic():
            row, created = ImiLoginFailure.objects.select_for_update().get_or_create(
                address=address, defaults={"checks_running": 1, "last_check_at": now}
            )
            if created:  # nothing known against this address: the check runs
                return
            if row.locked_until and row.locked_until > now:
                wait = int((row.locked_until - now).total_seconds()) + 1
                raise _refuse(address, wait, f"locked out for {wait} more second(s)")
            if row.failures and row.last_failure_at < now - FORGET_FAILURES_AFTER:
                row.failures, row.failures_by_user = 0, {}
            running = row.checks_running
            if running and (row.last_check_at is None or row.last_check_at <= now - CHECK_RUNS_OUT_AFTER):
                running = 0  # counted by a process that died before it could write the outcome
            if running < max(FREE_FAILURES + 1 - row.failures, 1):
                row.checks_running, row.last_check_at = running + 1, now
                row.save()
                return
        if time.monotonic() >= deadline:
            raise _refuse(address, 1, f"{running} login check(s) from this address still running")
        time.sleep(TURN_POLL)


def finish_check(address: str, username: str, succeeded: bool | None) -> datetime.timedelta | None:
    """After the check: a failure is counted for ``username`` (locking the address from the fifth in
    a row), a success forgets that user's failures; ``None`` (the check itself broke) only ends it.
    Returns the lock-out this failure set, if it set one."""
    now = clock.now()
    key = username.replace("\x00", "\\x00")[:150]  # stored as a JSON key and a text column
    with transaction.atomic():
        row, _ = ImiLoginFailure.objects.select_for_update().get_or_create(address=address)
        row.checks_running = max(row.checks_running - 1, 0)
        by_user = dict(row.failures_by_user or {})
        if succeeded:
            by_user.pop(key, None)
        elif succeeded is False:
            by_user[key] = by_user.get(key, 0) + 1
            row.last_failure_at, row.last_username = now, key
        row.failures = sum(by_user.values())
        lock = lock_for(row.failures)
        row.locked_until = row.last_failure_at + lock if lock else None
        row.failures_by_user = by_user
        if not by_user and not row.checks_running:
            row.delete()
        else:
            row.save()
    if succeeded is False:
        log.warning(
            "IMI login failed for user %r from %s (%d failure(s) in a row)%s",
            username,
            address,
            row.failures,
            f"; address locked out for {int(lock.total_seconds())} s" if lock else "",
        )
        return lock
    return None


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
    username, password = credentials
    admit_check(address)
    # no user name, or a NUL in it or in the password (no account has one; PostgreSQL could not even
    # look it up): a failed login without a password check
    checkable = username and "\x00" not in username and "\x00" not in password
    try:
        user = authenticate(request, username=username, password=password) if checkable else None
    except BaseException:
        finish_check(address, username, None)
        raise
    succeeded = user is not None and user.is_active
    lock = finish_check(address, username, succeeded)
    if not succeeded:
        # the failure that locks the address says for how long, as every refusal after it does
        raise errors.invalid_credentials(
            headers={"Retry-After": str(int(lock.total_seconds()) + 1)} if lock else None
        )
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
