"""Reconciliation recomputes pack counters from slots and reports where the two sides disagree."""

import datetime

import pytest

from devices.device_licenses import delete_device
from devices.engine import run_cycle
from devices.models import DeploymentEvent, DeviceLicense
from devices.reconciliation import reconcile
from licensing.models import LicenseSlot, ProductPack
from licensing.services import release_license, request_licenses
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def licensed():
    f.ald_on()
    f.pack("WE-AAAAA", total=10)
    f.pack("WE-BBBBB", total=10)
    f.register_all()
    devs = f.devices(3)
    run_cycle()
    return devs


def test_agreeing_sides_give_a_clean_report(licensed):
    report = reconcile()
    assert report.clean
    assert report.summary() == "Reconciliation: counters, slots and device licenses agree."
    assert DeploymentEvent.objects.get(action="reconcile").outcome == "success"


def test_a_drifted_counter_is_corrected_from_the_slots(licensed):
    ProductPack.objects.filter(pack_id="WE-AAAAA").update(used=7)
    report = reconcile()
    assert report.counters_corrected == {"WE-AAAAA": [7, 3]}
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3


def test_slots_without_licenses_and_licenses_without_slots_and_duplicates_are_reported(licensed):
    a, b, c = licensed
    delete_device(a.pk, actor="alice", delete_licenses=False)  # its slot stays bound
    release_license("WE-AAAAA", b.unit_id)  # "Remove hardware" in the License Portal
    request_licenses("WE-BBBBB", [c.unit_id], ums_fingerprint=f.ums().fingerprint)  # a stray second slot
    report = reconcile()
    assert report.slots_without_license == [["WE-AAAAA", a.unit_id], ["WE-BBBBB", c.unit_id]]
    assert report.licenses_without_slot == [["WE-AAAAA", b.unit_id]]
    assert report.duplicates == [{"unit_id": c.unit_id, "service": "WE", "packs": ["WE-AAAAA", "WE-BBBBB"]}]
    assert report.counters_corrected == {}
    assert report.summary() == (
        "Reconciliation: 2 slot(s) without a device license; 1 device license(s) without a slot; "
        "1 unit ID(s) holding slots in several packs of one service."
    )
    assert DeploymentEvent.objects.get(action="reconcile").outcome == "failed"
    assert LicenseSlot.objects.filter(released_at__isnull=True).count() == 3  # reported, not changed


def test_an_exchange_in_progress_is_not_a_duplicate():
    f.exchanged_device()
    assert DeviceLicense.objects.count() == 2
    assert reconcile().clean


def test_licenses_of_a_merged_pack_match_the_slots_in_the_pack_it_was_merged_into():
    from licensing.services import merge_packs

    f.ald_on()
    f.pack("WE-AAAAA", total=2, expiry=datetime.date(2027, 12, 1), subscription_key=None)
    f.pack("WE-BBBBB", total=5, expiry=datetime.date(2027, 12, 1), subscription_key=None)
    f.register_all()
    f.devices(4)
    run_cycle()
    assert set(DeviceLicense.objects.values_list("pack_id", flat=True)) == {"WE-AAAAA", "WE-BBBBB"}
    merge_packs("WE-BBBBB", ["WE-AAAAA"], actor="alice")
    report = reconcile()
    assert report.clean, report.summary()


def test_scheduled_reconciliation_before_the_ums_id_is_registered_is_an_executed_action_not_a_failure():
    """A fresh installation (migrated, nothing registered in the License Portal yet): the daily
    task says why it could not compare, once, and does not fail with a traceback."""
    from devices.tasks import reconcile_licenses

    said = reconcile_licenses()
    assert said.startswith("Reconciliation not possible: bad_credential: UMS ID '")
    assert said.endswith("' is not registered in the License Portal.")
    event = DeploymentEvent.objects.get(action=DeploymentEvent.Action.RECONCILE)
    assert (event.outcome, event.message, event.actor) == (DeploymentEvent.Outcome.FAILED, said, "ALD")


def test_reconcile_now_with_the_licensing_service_down_says_so_and_compares_nothing(
    licensed, admin_client, settings
):
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        settings.ILS_URL = f"http://127.0.0.1:{s.getsockname()[1]}"
    settings.ILS_RETRIES, settings.ILS_BACKOFF_SECONDS, settings.ILS_CONNECT_TIMEOUT = 0, 0.01, 1
    response = admin_client.post("/ums/deployment/", {"action": "reconcile"}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert len(said) == 1 and said[0].startswith("The licensing service cannot be reached: ")
    event = DeploymentEvent.objects.get(action=DeploymentEvent.Action.RECONCILE)
    assert event.outcome == DeploymentEvent.Outcome.FAILED
    assert event.message.startswith("Reconciliation not possible: ") and settings.ILS_URL in event.message
    assert event.actor == "admin"
