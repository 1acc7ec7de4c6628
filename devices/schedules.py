"""The sweep schedule, keyed by name: creating it twice leaves one row (django-q2's Schedule.name has
no unique constraint, so we look it up before creating)."""

from django_q.models import Schedule

SWEEP_SCHEDULE_NAME = "ALD sweep"
SWEEP_FUNC = "devices.tasks.ald_sweep"


def ensure_sweep_schedule(minutes: int, schedule_model=Schedule) -> tuple[object, bool]:
    """Create the sweep schedule or bring its interval up to date; returns (schedule, created)."""
    matches = list(schedule_model.objects.filter(name=SWEEP_SCHEDULE_NAME).order_by("pk"))
    for extra in matches[1:]:
        extra.delete()
    if matches:
        schedule = matches[0]
        if schedule.minutes != minutes or schedule.func != SWEEP_FUNC or schedule.schedule_type != "I":
            schedule.minutes = minutes
            schedule.func = SWEEP_FUNC
            schedule.schedule_type = "I"
            schedule.repeats = -1
            schedule.save()
        return schedule, False
    schedule = schedule_model.objects.create(
        name=SWEEP_SCHEDULE_NAME, func=SWEEP_FUNC, schedule_type="I", minutes=minutes, repeats=-1
    )
    return schedule, True
