"""django-q2 entry points: thin, each calls one service, and each takes ids, never model instances."""

import logging

from django.db import transaction
from django_q.tasks import async_task

log = logging.getLogger(__name__)

TASK_OPTIONS = {"group": "ald"}


def license_devices(device_ids):
    """Registration trigger: license these devices now."""
    from .engine import run_cycle

    return run_cycle(device_ids=device_ids).as_dict()


def ald_sweep():
    """The scheduled sweep over all devices."""
    from .engine import run_cycle

    return run_cycle().as_dict()


def enqueue_license_devices(device_ids):
    """Queue ALD for new devices once the transaction that created them has committed, so the worker
    never looks for a device that is not there yet."""
    ids = sorted(set(device_ids))
    if ids:
        transaction.on_commit(lambda: async_task("devices.tasks.license_devices", ids, **TASK_OPTIONS))


def enqueue_sweep():
    transaction.on_commit(lambda: async_task("devices.tasks.ald_sweep", **TASK_OPTIONS))


def check_notifications():
    """The scheduled notification check: packs low, used up or expiring, devices waiting."""
    from .notifications import check_notifications as check

    return check().as_dict()


def reconcile_licenses():
    """Scheduled reconciliation of pack counters, slots and device licenses. A licensing service
    that is down or refuses this UMS is an executed action and a warning, not a failed task."""
    from .ils import IlsUnavailable
    from .reconciliation import reconcile

    try:
        return reconcile().summary()
    except IlsUnavailable as exc:
        log.warning("reconciliation not possible: %s", exc)
        return f"Reconciliation not possible: {exc}"
