"""The one clock (docs/DESIGN.md invariant 6): expiry, renewal and exchange read time only from here,
so tests move the clock instead of sleeping."""

import datetime

from django.utils import timezone

_frozen: datetime.datetime | None = None


def now() -> datetime.datetime:
    return _frozen if _frozen is not None else timezone.now()


def today() -> datetime.date:
    return timezone.localdate(now())


def freeze(moment: datetime.datetime | None) -> None:
    """Pin the clock to ``moment`` (aware datetime); ``None`` lets it run again."""
    global _frozen
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    _frozen = moment
