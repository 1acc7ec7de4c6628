"""The portal's schedules, each keyed by name: creating one twice leaves one row (django-q2's
Schedule.name has no unique constraint, so we look it up before creating)."""

from django_q.models import Schedule

SWEEP_SCHEDULE_NAME = "ALD sweep"
SWEEP_FUNC = "devices.tasks.ald_sweep"
NOTIFY_SCHEDULE_NAME = "UMS notifications"
NOTIFY_FUNC = "devices.tasks.check_notifications"
NOTIFY_MINUTES = 5
RECONCILE_SCHEDULE_NAME = "License reconciliation"
RECONCILE_FUNC = "devices.tasks.reconcile_licenses"
RECONCILE_MINUTES = 24 * 60


def ensure_schedule(name: str, func: str, minutes: int, schedule_model=Schedule) -> tuple[object, bool]:
    """Create the schedule ``name`` running ``func`` every ``minutes``, or bring it up to date;
    duplicates left by hand collapse to one. Returns (schedule, created)."""
    matches = list(schedule_model.objects.filter(name=name).order_by("pk"))
    for extra in matches[1:]:
        extra.delete()
    wanted = {"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1}
    if matches:
        schedule = matches[0]
        if any(getattr(schedule, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(schedule, k, v)
            schedule.save()
        return schedule, False
    return schedule_model.objects.create(name=name, **wanted), True


def ensure_sweep_schedule(minutes: int, schedule_model=Schedule):
    return ensure_schedule(SWEEP_SCHEDULE_NAME, SWEEP_FUNC, minutes, schedule_model)


def ensure_notification_schedule(minutes: int = NOTIFY_MINUTES, schedule_model=Schedule):
    return ensure_schedule(NOTIFY_SCHEDULE_NAME, NOTIFY_FUNC, minutes, schedule_model)


def ensure_reconcile_schedule(minutes: int = RECONCILE_MINUTES, schedule_model=Schedule):
    return ensure_schedule(RECONCILE_SCHEDULE_NAME, RECONCILE_FUNC, minutes, schedule_model)


def ensure_all(sweep_minutes: int, schedule_model=Schedule) -> list[tuple[object, bool]]:
    return [
        ensure_sweep_schedule(sweep_minutes, schedule_model),
        ensure_notification_schedule(schedule_model=schedule_model),
        ensure_reconcile_schedule(schedule_model=schedule_model),
    ]
