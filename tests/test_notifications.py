"""UMS notifications: packs with few free licenses, packs used up, packs expiring in 120/60/7 days,
devices waiting for a license; each recorded and mailed once per condition, again only when the
condition cleared and came back; the notifications page; the schedule; the threshold setting.

Conditions come from real data (factories, refresh from the licensing service, ALD cycles) and time
moves only through clock.freeze."""

import datetime
import io
import re
import smtplib
import threading
from datetime import date

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from ald_portal import clock
from devices import notifications as notifications_module
from devices import tasks
from devices.engine import run_cycle
from devices.models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    LicenseWait,
    Notification,
    RegisteredPack,
)
from devices.notifications import check_notifications, recipients
from devices.schedules import (
    NOTIFY_FUNC,
    NOTIFY_SCHEDULE_NAME,
    SWEEP_SCHEDULE_NAME,
    ensure_notification_schedule,
)
from devices.services import refresh_registered_packs, update_deployment_settings
from licensing.models import ProductPack
from tests import factories as f
from tests.conftest import DEMO_NOW

PAGE = reverse("devices:notifications")
PREFIX = "[ALD Portal UMS] "
ADMIN_MAILS = ["ops@example.com", "root@example.com", "Team@example.com"]  # the domain is lower-cased


def local(year, month, day, hour=12, minute=0, second=0):
    """A wall-clock moment in TIME_ZONE (Europe/Berlin)."""
    return timezone.make_aware(datetime.datetime(year, month, day, hour, minute, second))


def at_noon(day: date):
    clock.freeze(local(day.year, day.month, day.day))


def subjects(mailoutbox):
    return [m.subject.removeprefix(PREFIX) for m in mailoutbox]


def open_keys():
    return sorted(Notification.objects.filter(resolved_at__isnull=True).values_list("key", flat=True))


def set_total(pack_id, total):
    """The pack got more (or fewer) licenses in the License Portal; the UMS refreshes."""
    ProductPack.objects.filter(pack_id=pack_id).update(total_licenses=total)
    refresh_registered_packs()


@pytest.fixture
def admins(db, django_user_model):
    """Who gets the mails: active superusers and holders of change_deploymentsettings (directly or
    by group). Not: a reader, an inactive superuser, an administrator without an address."""
    perm = Permission.objects.get(codename="change_deploymentsettings")
    django_user_model.objects.create_superuser("root", "root@example.com")
    ops = django_user_model.objects.create_user("ops", "ops@example.com")
    ops.user_permissions.add(perm)
    group = Group.objects.get_or_create(name="UMS administrators")[0]  # the role exists after migrate
    group.permissions.add(perm)
    team = django_user_model.objects.create_user("team", "Team@Example.com")
    team.groups.add(group)
    django_user_model.objects.create_user("reader", "reader@example.com")
    gone = django_user_model.objects.create_superuser("gone", "gone@example.com")
    gone.is_active = False
    gone.save()
    django_user_model.objects.create_superuser("nomail", "")


@pytest.fixture
def check(django_capture_on_commit_callbacks):
    """Run the check as the scheduled task does: the mails go once the rows are committed."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return check_notifications()

    return run


# --- expiry: 120, 60 and 7 days ----------------------------------------------------------------------
def test_expiry_reminders_come_120_60_and_7_days_before_each_on_its_day(admins, check, mailoutbox):
    expiry = date(2027, 6, 30)
    f.pack("WE-EXP01", total=50, expiry=expiry, product_name="IGEL Workspace Edition")
    f.register_all()
    seen = []
    for days, new in [(121, None), (120, 120), (61, None), (60, 60), (8, None), (7, 7), (0, None)]:
        at_noon(expiry - datetime.timedelta(days=days))
        for _ in range(3):  # the schedule runs often: one mail per window all the same
            check()
        if new is not None:
            seen.append(f"Pack WE-EXP01 expires in {days} day(s), on 2027-06-30")
        assert subjects(mailoutbox) == seen, f"{days} days before expiry"
    assert open_keys() == [
        "pack-expiry-120:WE-EXP01:2027-06-30",
        "pack-expiry-60:WE-EXP01:2027-06-30",
        "pack-expiry-7:WE-EXP01:2027-06-30",
    ]
    levels = dict(Notification.objects.values_list("key", "level"))
    assert levels["pack-expiry-120:WE-EXP01:2027-06-30"] == "info"
    assert levels["pack-expiry-7:WE-EXP01:2027-06-30"] == "warning"
    mail = mailoutbox[-1]
    assert mail.to == ADMIN_MAILS
    assert (
        "Pack WE-EXP01 (IGEL Workspace Edition) expires in 7 day(s), on 2027-06-30 (7-day reminder)"
        in mail.body
    )
    assert "0 of 50 license(s) are used" in mail.body

    at_noon(expiry + datetime.timedelta(days=1))  # expired: the reminders are over
    check()
    assert open_keys() == [] and len(mailoutbox) == 3


def test_a_pack_first_seen_50_days_before_expiry_gets_the_60_day_reminder_only(admins, check, mailoutbox):
    expiry = DEMO_NOW.date() + datetime.timedelta(days=50)
    f.pack("WE-LATE1", total=50, expiry=expiry)
    f.register_all()
    check()
    check()
    assert subjects(mailoutbox) == [f"Pack WE-LATE1 expires in 50 day(s), on {expiry.isoformat()}"]
    assert open_keys() == [f"pack-expiry-60:WE-LATE1:{expiry.isoformat()}"]
    at_noon(expiry - datetime.timedelta(days=7))
    check()
    assert subjects(mailoutbox)[1:] == [f"Pack WE-LATE1 expires in 7 day(s), on {expiry.isoformat()}"]


def test_a_renewed_pack_is_reminded_again_for_its_new_expiry(admins, check, mailoutbox):
    old, new = date(2026, 12, 10), date(2027, 12, 10)
    f.pack("WE-RNW01", total=50, expiry=old)
    f.register_all()
    check()
    assert subjects(mailoutbox) == ["Pack WE-RNW01 expires in 7 day(s), on 2026-12-10"]

    ProductPack.objects.filter(pack_id="WE-RNW01").update(expiry_date=new)  # renewed in the License Portal
    refresh_registered_packs()
    check()
    assert len(mailoutbox) == 1  # nothing to say yet: a year to go
    assert open_keys() == []
    old_row = Notification.objects.get(key="pack-expiry-7:WE-RNW01:2026-12-10")
    assert old_row.resolved_at == DEMO_NOW

    for days in (120, 60, 7):
        at_noon(new - datetime.timedelta(days=days))
        check()
    assert subjects(mailoutbox)[1:] == [
        "Pack WE-RNW01 expires in 120 day(s), on 2027-12-10",
        "Pack WE-RNW01 expires in 60 day(s), on 2027-12-10",
        "Pack WE-RNW01 expires in 7 day(s), on 2027-12-10",
    ]


@pytest.mark.parametrize(
    "expiry, eighth_day, seventh_day",
    [
        # Summer time starts 2027-03-28: between the 7-day reminder and the expiry a day has 23 hours.
        (date(2027, 4, 2), date(2027, 3, 25), date(2027, 3, 26)),
        # Winter time starts 2026-10-25: a day has 25 hours.
        (date(2026, 10, 31), date(2026, 10, 23), date(2026, 10, 24)),
    ],
)
def test_seven_day_reminder_comes_on_the_right_local_day_across_a_daylight_saving_change(
    admins, check, mailoutbox, expiry, eighth_day, seventh_day
):
    at_noon(eighth_day - datetime.timedelta(days=30))
    f.pack("WE-DST01", total=50, expiry=expiry)
    f.register_all()

    clock.freeze(local(eighth_day.year, eighth_day.month, eighth_day.day, 23, 59, 30))
    check()
    assert open_keys() == [f"pack-expiry-60:WE-DST01:{expiry.isoformat()}"]  # 8 days: not yet

    clock.freeze(local(seventh_day.year, seventh_day.month, seventh_day.day, 0, 0, 30))
    assert clock.now().astimezone(datetime.UTC).date() == eighth_day  # in UTC it is still the day before
    check()
    assert open_keys() == [
        f"pack-expiry-60:WE-DST01:{expiry.isoformat()}",
        f"pack-expiry-7:WE-DST01:{expiry.isoformat()}",
    ]
    assert subjects(mailoutbox)[-1] == f"Pack WE-DST01 expires in 7 day(s), on {expiry.isoformat()}"
    raised = Notification.objects.get(key=f"pack-expiry-7:WE-DST01:{expiry.isoformat()}").created_at
    assert timezone.localtime(raised).date() == seventh_day


def test_a_perpetual_pack_is_never_reminded(admins, check, mailoutbox):
    f.pack("UDC3-PERP1", product_type="UDC3", total=50, expiry=None)
    f.register_all()
    at_noon(date(2036, 1, 1))
    check()
    assert mailoutbox == [] and not Notification.objects.exists()


# --- free licenses: below the limit, used up ---------------------------------------------------------
def licensed_fleet(pack_id="WE-LOW01", total=20, devices=12, **pack):
    f.pack(pack_id, total=total, product_name="IGEL Workspace Edition", **pack)
    f.register_all()
    f.devices(devices)
    f.ald_on()
    run_cycle()


def test_a_pack_below_the_limit_is_notified_once(admins, check, mailoutbox):
    licensed_fleet(total=20, devices=12)
    assert RegisteredPack.objects.get(pack_id="WE-LOW01").free == 8
    for _ in range(3):
        check()
    assert subjects(mailoutbox) == ["Pack WE-LOW01: 8 free license(s) left"]
    assert mailoutbox[0].to == ADMIN_MAILS
    assert (
        "Pack WE-LOW01 (IGEL Workspace Edition) has 8 free license(s) of 20 (12 used), fewer than the "
        "notification limit of 10." in mailoutbox[0].body
    )
    n = Notification.objects.get()
    assert (n.key, n.kind, n.level, n.pack_id, n.mail_status) == (
        "pack-low:WE-LOW01",
        "pack_low",
        "info",
        "WE-LOW01",
        "sent",
    )
    assert n.snapshot == {"total": 20, "used": 12, "free": 8, "limit": 10}
    assert (n.mailed_at, n.mailed_to, n.mail_attempts) == (DEMO_NOW, ", ".join(ADMIN_MAILS), 1)


@pytest.mark.parametrize(
    "devices, limit, expected",
    [
        (10, 10, []),  # 10 free: not below 10
        (11, 10, ["pack-low:WE-LOW01"]),  # 9 free
        (19, 10, ["pack-low:WE-LOW01"]),  # 1 free
        (20, 10, ["pack-used-up:WE-LOW01"]),  # none free: used up, not "low"
        (19, 0, []),  # limit 0: no "low" notifications at all
        (15, 6, ["pack-low:WE-LOW01"]),  # 5 free, limit 6
        (14, 6, []),  # 6 free, limit 6
    ],
)
def test_the_limit_is_a_strict_bound_and_zero_free_is_used_up(admins, check, devices, limit, expected):
    DeploymentSettings.objects.update_or_create(pk=1, defaults={"notify_free_below": limit})
    licensed_fleet(total=20, devices=devices)
    check()
    assert open_keys() == expected


def test_a_used_up_pack_is_a_warning_and_its_waiting_devices_are_summarised(admins, check, mailoutbox):
    licensed_fleet("WE-FULL1", total=5, devices=7)
    check()
    check()
    assert sorted(subjects(mailoutbox)) == [
        "2 device(s) waiting for a license",
        "Pack WE-FULL1: all 5 license(s) used",
    ]
    used_up = Notification.objects.get(kind="pack_used_up")
    assert (used_up.key, used_up.level) == ("pack-used-up:WE-FULL1", "warning")
    assert used_up.message.startswith(
        "Pack WE-FULL1 (IGEL Workspace Edition): all 5 license(s) are used (5 used)."
    )
    waiting = Notification.objects.get(kind="waiting")
    assert (
        waiting.message
        == "2 device(s) wait for a license:\nWE: 2 device(s) - No free license in any eligible pack"
    )
    assert not Notification.objects.filter(kind="pack_low").exists()


def test_a_condition_that_clears_and_returns_is_notified_again(admins, check, mailoutbox):
    licensed_fleet(total=20, devices=12)  # 8 free
    check()
    set_total("WE-LOW01", 30)  # 18 free: cleared
    check()
    assert open_keys() == [] and len(mailoutbox) == 1
    assert Notification.objects.get().resolved_at == DEMO_NOW

    clock.freeze(DEMO_NOW + datetime.timedelta(hours=2))
    f.devices(12, start=5000)  # 24 used: 6 free, below the limit again
    run_cycle()
    check()
    check()
    assert subjects(mailoutbox) == [
        "Pack WE-LOW01: 8 free license(s) left",
        "Pack WE-LOW01: 6 free license(s) left",
    ]
    rows = list(Notification.objects.order_by("pk").values_list("key", "resolved_at"))
    assert rows == [("pack-low:WE-LOW01", DEMO_NOW), ("pack-low:WE-LOW01", None)]


def test_a_deactivated_pack_raises_nothing_and_its_open_notifications_clear(admins, check, mailoutbox):
    licensed_fleet("WE-OFF01", total=20, devices=12, expiry=DEMO_NOW.date() + datetime.timedelta(days=5))
    check()
    assert open_keys() == ["pack-expiry-7:WE-OFF01:2026-12-08", "pack-low:WE-OFF01"]
    RegisteredPack.objects.filter(pack_id="WE-OFF01").update(active=False)
    check()
    assert open_keys() == [] and len(mailoutbox) == 2


# --- waiting devices ---------------------------------------------------------------------------------
def waiting_subjects(mailoutbox):
    return [s for s in subjects(mailoutbox) if "waiting" in s]


def test_waiting_devices_are_notified_when_the_set_grows_or_a_reason_appears(admins, check, mailoutbox):
    fw10 = f.firmware("10.06.190.01", product="IGEL Universal Desktop LX")
    f.pack("WE-WAIT1", total=3, product_name="IGEL Workspace Edition")
    f.register_all()
    f.devices(5)
    old = f.device(900, fw=fw10, name="OLD-0900")
    f.ald_on()
    run_cycle()
    check()
    assert waiting_subjects(mailoutbox) == ["3 device(s) waiting for a license"]
    first = Notification.objects.get(kind="waiting")
    assert first.message == (
        "3 device(s) wait for a license:\n"
        "WE: 2 device(s) - No free license in any eligible pack\n"
        "WE: 1 device(s) - IGEL OS version too old for this license type"
    )
    assert first.key.startswith("waiting:") and len(first.key) == len("waiting:") + 20

    for _ in range(2):  # sweeps with nothing new: no mail
        run_cycle()
        check()
    assert len(waiting_subjects(mailoutbox)) == 1

    f.device(901, name="NEW-0901")  # one more device waits: the set grew
    run_cycle()
    check()
    assert waiting_subjects(mailoutbox)[1:] == ["4 device(s) waiting for a license"]
    first.refresh_from_db()
    assert first.resolved_at is not None  # replaced by the newer summary

    set_total("WE-WAIT1", 5)  # two more licensed: fewer wait, nothing to tell
    run_cycle()
    check()
    assert LicenseWait.objects.count() == 2
    assert len(waiting_subjects(mailoutbox)) == 2
    assert Notification.objects.get(kind="waiting", resolved_at__isnull=True).subject == (
        "4 device(s) waiting for a license"
    )

    RegisteredPack.objects.filter(pack_id="WE-WAIT1").update(active=False)  # no eligible pack: a new reason
    run_cycle()
    check()
    assert set(LicenseWait.objects.values_list("reason", flat=True)) == {"no_eligible_pack"}
    assert waiting_subjects(mailoutbox)[2:] == ["2 device(s) waiting for a license"]
    assert Notification.objects.get(kind="waiting", resolved_at__isnull=True).message == (
        "2 device(s) wait for a license:\nWE: 2 device(s) - No eligible pack"
    )

    RegisteredPack.objects.filter(pack_id="WE-WAIT1").update(active=True)
    set_total("WE-WAIT1", 6)
    Device.objects.filter(pk=old.pk).update(moved_to_bin=True)
    run_cycle()
    check()
    assert not LicenseWait.objects.exists()
    assert not Notification.objects.filter(kind="waiting", resolved_at__isnull=True).exists()
    assert len(waiting_subjects(mailoutbox)) == 3


# --- mail --------------------------------------------------------------------------------------------
def test_recipients_are_active_administrators_with_an_address(admins):
    assert recipients() == ADMIN_MAILS


def test_without_recipients_the_notification_is_still_recorded(check, mailoutbox, django_user_model):
    django_user_model.objects.create_user("reader", "reader@example.com")
    licensed_fleet(total=20, devices=12)
    check()
    check()
    assert mailoutbox == []
    n = Notification.objects.get()
    assert (n.key, n.mail_status, n.mailed_at, n.mail_attempts) == (
        "pack-low:WE-LOW01",
        "no_recipients",
        None,
        1,
    )


def test_a_failed_mail_is_kept_and_sent_by_the_next_check(admins, check, mailoutbox, monkeypatch):
    licensed_fleet(total=20, devices=12)
    real = notifications_module.send_mail

    def down(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(notifications_module, "send_mail", down)
    check()
    n = Notification.objects.get()
    assert (n.mail_status, n.mail_attempts, n.mail_claimed_until) == ("failed", 1, None)
    assert n.mail_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert mailoutbox == []

    monkeypatch.setattr(notifications_module, "send_mail", real)
    check()
    check()
    n.refresh_from_db()
    assert (n.mail_status, n.mail_attempts, n.mail_error) == ("sent", 2, "")
    assert subjects(mailoutbox) == ["Pack WE-LOW01: 8 free license(s) left"]


def test_the_mail_goes_only_after_the_commit(admins, mailoutbox, django_capture_on_commit_callbacks):
    licensed_fleet(total=20, devices=12)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        check_notifications()
    assert Notification.objects.count() == 1
    assert mailoutbox == []  # not committed yet: a rollback here would leave no mail behind
    for callback in callbacks:
        callback()
    assert subjects(mailoutbox) == ["Pack WE-LOW01: 8 free license(s) left"]


def test_a_claim_left_by_a_dead_worker_lapses_and_the_mail_is_sent(admins, check, mailoutbox):
    licensed_fleet(total=20, devices=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(notifications_module, "send_pending_mails", lambda *a, **k: 0)
        check()
    # a worker claimed the mail and died before sending it
    Notification.objects.update(mail_claimed_until=DEMO_NOW + datetime.timedelta(minutes=5), mail_attempts=1)
    check()
    assert mailoutbox == []  # the claim still runs
    clock.freeze(DEMO_NOW + datetime.timedelta(minutes=5))
    check()
    assert subjects(mailoutbox) == ["Pack WE-LOW01: 8 free license(s) left"]
    assert Notification.objects.get().mail_attempts == 2


def test_the_task_runs_the_check(admins, mailoutbox, django_capture_on_commit_callbacks):
    licensed_fleet(total=20, devices=12)
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.check_notifications()
    assert result == {"raised": ["pack-low:WE-LOW01"], "resolved": []}
    assert len(mailoutbox) == 1


# --- concurrency (PostgreSQL) ------------------------------------------------------------------------
def race(target, workers):
    barrier = threading.Barrier(workers)
    errors = []

    def work():
        try:
            barrier.wait(timeout=30)
            target()
        except Exception as exc:  # reported below; a worker must not die silently
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [t for t in threads if t.is_alive()], "a worker hung"
    assert errors == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_four_workers_checking_at_once_raise_and_mail_each_notification_once(postgres, admins, mailoutbox):
    assert connection.vendor == "postgresql"
    expiry = DEMO_NOW.date() + datetime.timedelta(days=60)
    f.pack("WE-RACE1", total=20, expiry=expiry)  # 12 used, 8 free: low
    f.pack("WE-RACE2", total=5)  # used up
    f.register_all()
    f.devices(30)  # WE-RACE1 (earlier registered, then most used) and WE-RACE2 fill up; 13 wait
    f.ald_on()
    run_cycle()
    RegisteredPack.objects.filter(pack_id="WE-RACE1").update(used=12)  # as after a refresh: 8 free
    RegisteredPack.objects.filter(pack_id="WE-RACE2").update(used=5)

    for round_, day in enumerate((expiry - datetime.timedelta(days=60), expiry - datetime.timedelta(days=7))):
        at_noon(day)
        race(check_notifications, 4)
        keys = list(Notification.objects.values_list("key", flat=True))
        assert len(keys) == len(set(keys)), f"round {round_}: a key raised twice"
    expected = sorted(
        [
            "pack-low:WE-RACE1",
            "pack-used-up:WE-RACE2",
            f"pack-expiry-60:WE-RACE1:{expiry.isoformat()}",
            f"pack-expiry-7:WE-RACE1:{expiry.isoformat()}",
            Notification.objects.get(kind="waiting").key,
        ]
    )
    assert sorted(keys) == expected
    assert len(mailoutbox) == 5
    assert len(set(subjects(mailoutbox))) == 5
    rows = Notification.objects.values_list("mail_status", "mail_attempts")
    assert set(rows) == {("sent", 1)}


# --- threshold setting -------------------------------------------------------------------------------
def settings_post(**overrides):
    data = {"ald_enabled": "on", "sweep_minutes": "5", "exchange_days": "7", "notify_free_below": "10"}
    data.update(overrides)
    return data


def test_the_limit_is_changed_on_the_deployment_page_and_used_by_the_next_check(admin_client, check):
    licensed_fleet(total=20, devices=12)  # 8 free
    response = admin_client.post(reverse("devices:deployment"), settings_post(notify_free_below="8"))
    assert response.status_code == 302
    assert DeploymentSettings.load().notify_free_below == 8
    event = DeploymentEvent.objects.filter(action="settings").latest("pk")
    assert event.message == "Notify when free licenses of a pack fall below: 10 -> 8"
    check()
    assert open_keys() == []  # 8 free is not below 8
    update_deployment_settings("test", notify_free_below=9)
    check()
    assert open_keys() == ["pack-low:WE-LOW01"]


def test_the_deployment_page_shows_the_limit(admin_client, db):
    response = admin_client.get(reverse("devices:deployment"))
    assert response.context["form"]["notify_free_below"].value() == 10
    assert 'name="notify_free_below"' in response.content.decode()


@pytest.mark.parametrize("bad", ["-1", "100001", "ten", "2.5", ""])
def test_a_bad_limit_is_a_form_error_naming_the_field(admin_client, db, bad):
    response = admin_client.post(reverse("devices:deployment"), settings_post(notify_free_below=bad))
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["notify_free_below"]
    alerts = re.findall(r'<span class="error"[^>]*role="alert"[^>]*>(.*?)</span>', response.content.decode())
    assert len(alerts) == 1 and alerts[0].startswith("Notify when free licenses of a pack fall below:")
    assert DeploymentSettings.load().notify_free_below == 10


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [-1, 100_001, "5", 2.0, True, None])
def test_the_service_refuses_a_bad_limit_naming_field_and_value(bad):
    with pytest.raises(ValidationError) as err:
        update_deployment_settings("test", notify_free_below=bad)
    (message,) = err.value.message_dict["notify_free_below"]
    assert message == f"notify_free_below must be a whole number from 0 to 100000, not {bad!r}."
    assert DeploymentSettings.load().notify_free_below == 10
    assert not DeploymentEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("good", [0, 100_000])
def test_the_service_accepts_the_limits_of_the_range(good):
    update_deployment_settings("test", notify_free_below=good)
    assert DeploymentSettings.load().notify_free_below == good


# --- schedule ----------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_migration_created_the_notification_schedule():
    schedule = Schedule.objects.get(name=NOTIFY_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        NOTIFY_FUNC,
        Schedule.MINUTES,
        5,
        -1,
    )
    assert NOTIFY_FUNC == "devices.tasks.check_notifications" and callable(tasks.check_notifications)


@pytest.mark.django_db
def test_creating_the_notification_schedule_twice_leaves_one():
    _, created = ensure_notification_schedule()
    assert created is False  # the migration made it
    ensure_notification_schedule()
    out = io.StringIO()
    call_command("ald_schedules", stdout=out)
    assert Schedule.objects.filter(name=NOTIFY_SCHEDULE_NAME).count() == 1
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1
    assert "Kept schedule 'UMS notifications': every 5 minute(s)." in out.getvalue()


@pytest.mark.django_db
def test_a_missing_or_duplicated_notification_schedule_is_repaired():
    Schedule.objects.filter(name=NOTIFY_SCHEDULE_NAME).delete()
    _, created = ensure_notification_schedule()
    assert created is True
    Schedule.objects.create(
        name=NOTIFY_SCHEDULE_NAME, func="devices.tasks.elsewhere", schedule_type="I", minutes=60
    )
    ensure_notification_schedule()
    assert list(Schedule.objects.filter(name=NOTIFY_SCHEDULE_NAME).values_list("func", "minutes")) == [
        (NOTIFY_FUNC, 5)
    ]


# --- the notifications page --------------------------------------------------------------------------
@pytest.fixture
def reader_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-viewer-123"))
    return client


def page_rows(response):
    """The rows of the notifications table as {column: text}."""
    html = response.content.decode()
    table = re.search(r'<table class="table">(.*?)</table>', html, re.S).group(1)
    header = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)]
    rows = []
    for tr in re.findall(r"<tr data-key[^>]*>(.*?)</tr>", table, re.S):
        cells = [
            " ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)
        ]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


@pytest.mark.django_db
def test_anonymous_user_is_sent_to_the_login_page(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={PAGE}"


def test_read_only_user_reads_the_notifications(reader_client, admins, check):
    licensed_fleet("WE-FULL1", total=5, devices=7)
    check()
    set_total("WE-FULL1", 20)  # 15 free now: used up cleared, 2 more licensed by the next sweep
    clock.freeze(DEMO_NOW + datetime.timedelta(minutes=30))
    check()
    response = reader_client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<a href="{PAGE}">Notifications</a>' in html  # in the menu
    assert "fewer than 10 free" in html
    rows = {r["Notification"]: r for r in page_rows(response)}
    assert sorted(rows) == ["2 device(s) waiting for a license", "Pack WE-FULL1: all 5 license(s) used"]
    used_up = rows["Pack WE-FULL1: all 5 license(s) used"]
    assert used_up["Raised"] == "2026-12-03 12:00"
    assert used_up["Level"] == "Warning"
    assert used_up["Pack ID"] == "WE-FULL1"
    assert used_up["State"] == "Cleared 2026-12-03 12:30"
    assert used_up["E-mail"] == "Sent 2026-12-03 12:00 to 3 recipient(s)"
    assert rows["2 device(s) waiting for a license"]["State"] == "Open"  # no sweep ran yet

    open_only = page_rows(reader_client.get(PAGE, {"state": "open"}))
    assert [r["Notification"] for r in open_only] == ["2 device(s) waiting for a license"]
    by_kind = page_rows(reader_client.get(PAGE, {"kind": "pack_used_up"}))
    assert [r["Pack ID"] for r in by_kind] == ["WE-FULL1"]


def make_notifications(first, count):
    now = clock.now()
    Notification.objects.bulk_create(
        Notification(
            key=f"pack-low:WE-{i:05d}",
            kind="pack_low",
            level="info",
            pack_id=f"WE-{i:05d}",
            subject=f"Pack WE-{i:05d}: 3 free license(s) left",
            message="line one\nline two",
            snapshot={"free": 3},
            created_at=now - datetime.timedelta(minutes=i),
            resolved_at=now if i % 2 else None,
            mail_status="sent",
            mailed_at=now,
            mailed_to="a@example.com, b@example.com",
        )
        for i in range(first, first + count)
    )


def count_queries(client, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(PAGE, params or {})
    assert response.status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sorted({s for s in sql if sql.count(s) > 1}) == []  # nothing asked twice
    return len(sql), response


@pytest.mark.parametrize("params", [{}, {"state": "open", "kind": "pack_low"}])
def test_queries_do_not_grow_with_notifications(reader_client, db, params):
    DeploymentSettings.load()
    make_notifications(0, 10)
    small, response = count_queries(reader_client, params)
    shown_small = len(page_rows(response))
    make_notifications(10, 190)
    large, response = count_queries(reader_client, params)
    shown_large = len(page_rows(response))
    assert small == large, f"{small} queries for 10 notifications, {large} for 200"
    assert large <= 6  # session, user, settings, count, rows
    assert (shown_small, shown_large) == ((10, 50) if not params else (5, 50))


def test_pages_are_newest_first_and_neither_repeat_nor_skip(reader_client, db):
    make_notifications(0, 120)
    Notification.objects.update(created_at=DEMO_NOW)  # all at once: only the tie-break orders them
    seen = []
    for page in (1, 2, 3):
        seen += [r["Pack ID"] for r in page_rows(reader_client.get(PAGE, {"page": page}))]
    assert len(seen) == 120 and sorted(seen) == [f"WE-{i:05d}" for i in range(120)]
    assert seen[0] == "WE-00119"  # the newest row first


@pytest.mark.parametrize(
    "params, shown",
    [
        ({"page": "abc"}, 50),  # not a number: the first page
        ({"page": "-1"}, 10),  # out of range: the last page
        ({"page": "99999"}, 10),
        ({"state": "weird", "kind": "nope"}, 50),  # unknown filters are ignored
    ],
)
def test_odd_parameters_still_give_the_page(reader_client, db, params, shown):
    make_notifications(0, 60)
    response = reader_client.get(PAGE, params)
    assert response.status_code == 200
    assert len(page_rows(response)) == shown
