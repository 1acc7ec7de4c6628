"""A restart after downtime does not replay the sweeps it missed: one run, then the next slot."""

import datetime

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.scheduler import scheduler

from devices.models import DeploymentEvent
from devices.schedules import SWEEP_SCHEDULE_NAME

pytestmark = pytest.mark.django_db


def test_catch_up_is_off_in_the_queue_settings():
    assert Conf.CATCH_UP is False


def test_missed_sweep_slots_are_not_replayed_after_downtime(monkeypatch):
    # The scheduler first closes stale connections, as a worker should; here that would close the
    # connection holding the test's transaction (PostgreSQL), so it is left open.
    monkeypatch.setattr("django_q.scheduler.close_old_django_connections", lambda: None)
    broker = get_broker()
    broker.purge_queue()
    for other in Schedule.objects.exclude(name=SWEEP_SCHEDULE_NAME):
        other.delete()  # only the sweep is looked at here
    sweep = Schedule.objects.get(name=SWEEP_SCHEDULE_NAME)
    sweep.next_run = timezone.now() - datetime.timedelta(hours=3)  # 36 slots of 5 minutes missed
    sweep.save()

    scheduler(broker)
    scheduler(broker)  # the next look a moment later finds nothing due

    assert broker.queue_size() == 1
    sweep.refresh_from_db()
    assert timezone.now() < sweep.next_run <= timezone.now() + datetime.timedelta(minutes=5)
    broker.purge_queue()
    assert not DeploymentEvent.objects.exists()
