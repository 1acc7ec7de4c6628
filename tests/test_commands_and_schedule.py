"""Administrator commands and the sweep schedule."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from devices.models import DeploymentEvent, DeploymentSettings
from devices.schedules import SWEEP_SCHEDULE_NAME, ensure_sweep_schedule
from tests import factories as f

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_migration_created_the_sweep_schedule_every_five_minutes():
    schedule = Schedule.objects.get(name=SWEEP_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "devices.tasks.ald_sweep",
        Schedule.MINUTES,
        5,
        -1,
    )


def test_creating_the_schedule_twice_leaves_one():
    ensure_sweep_schedule(5)
    ensure_sweep_schedule(5)
    run("ald_schedules")
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1


def test_a_duplicate_schedule_left_by_hand_is_collapsed_to_one():
    Schedule.objects.create(
        name=SWEEP_SCHEDULE_NAME, func="devices.tasks.ald_sweep", schedule_type="I", minutes=5
    )
    _, created = ensure_sweep_schedule(7)
    assert created is False
    assert list(Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).values_list("minutes", flat=True)) == [7]


def test_ald_settings_prints_and_changes_the_settings():
    out = run("ald_settings")
    assert "Automatic deployment: off" in out  # IGEL's default
    assert "Automatic license exchange: off, 7 day(s) before expiration" in out
    out = run("ald_settings", "--enable", "--exchange", "--exchange-days", "14", "--sweep-minutes", "10")
    conf = DeploymentSettings.load()
    assert (conf.ald_enabled, conf.exchange_enabled, conf.exchange_days, conf.sweep_minutes) == (
        True,
        True,
        14,
        10,
    )
    assert "Automatic deployment: on" in out and "every 10 minute(s)" in out
    assert Schedule.objects.get(name=SWEEP_SCHEDULE_NAME).minutes == 10
    event = DeploymentEvent.objects.get(action="settings")
    assert event.actor == "manage.py ald_settings"
    assert "Enable automatic deployment: off -> on" in event.message
    run("ald_settings", "--disable", "--no-exchange")
    conf.refresh_from_db()
    assert (conf.ald_enabled, conf.exchange_enabled) == (False, False)


@pytest.mark.parametrize(
    "args, field",
    [
        (["--sweep-minutes", "0"], "sweep_minutes"),
        (["--exchange-days", "-3"], "exchange_days"),
        (["--exchange-days", "100000"], "exchange_days"),
    ],
)
def test_ald_settings_rejects_bad_values_by_name_and_changes_nothing(args, field):
    with pytest.raises(CommandError) as err:
        run("ald_settings", *args)
    assert field in str(err.value) and args[1] in str(err.value)
    conf = DeploymentSettings.load()
    assert (conf.sweep_minutes, conf.exchange_days) == (5, 7)
    assert not DeploymentEvent.objects.exists()


def test_ald_settings_rejects_a_non_number():
    with pytest.raises(CommandError) as err:
        run("ald_settings", "--sweep-minutes", "often")
    assert "'often' is not a whole number" in str(err.value)


def test_ald_run_json_prints_one_object_with_devices_reasons_and_packs():
    f.ald_on()
    f.pack("WE-AAAAA", total=2)
    f.register_all()
    f.devices(3)
    f.device(fw=f.firmware("10.06.190.01", product="IGEL Universal Desktop LX"))
    report = json.loads(run("ald_run", "--json"))
    assert report["devices_licensed"] == 2
    assert report["devices_waiting"] == 2
    assert report["waiting_reasons"] == {"no_free_license": 1, "os_too_old": 1}
    assert report["packs"] == {"WE-AAAAA": {"total": 2, "used": 2, "free": 0}}
    dry = json.loads(run("ald_run", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["devices_licensed"], dry["devices_waiting"]) == (True, 0, 2)


def test_ald_run_says_when_ald_is_off():
    assert run("ald_run").strip() == "Nothing done: automatic deployment is off."


def test_bootstrap_shows_the_admin_password_once_then_only_where_it_is_kept(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()
    call_command("bootstrap", "--no-demo", stdout=first)
    password = (tmp_path / "admin-password.txt").read_text().strip()
    assert (
        f"Log in as admin with the password {password} (kept in {tmp_path / 'admin-password.txt'})."
        in first.getvalue()
    )
    call_command("bootstrap", "--no-demo", stdout=second)
    assert password not in second.getvalue()
    assert f"Log in as admin; the password is in {tmp_path / 'admin-password.txt'}." in second.getvalue()
    assert (tmp_path / "admin-password.txt").stat().st_mode & 0o777 == 0o600
