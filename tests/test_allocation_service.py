"""The licensing service's allocation: invariants 1 and 2 of docs/DESIGN.md on any database."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from ald_portal import clock
from licensing.contract import LicenseErrorCode, LicenseServiceError
from licensing.models import LicenseSlot, PackStatus, ProductPack
from licensing.services import release_license, request_licenses
from tests import factories as f

pytestmark = pytest.mark.django_db

UNITS = [f.mac_for(n) for n in range(1, 8)]


def fp():
    return f.ums().fingerprint


def test_grants_up_to_the_free_licenses_and_denies_the_rest():
    f.pack("WE-AAAAA", total=5)
    result = request_licenses("WE-AAAAA", UNITS, ums_fingerprint=fp())
    assert [g.unit_id for g in result.granted] == UNITS[:5]
    assert result.denied == {u: LicenseErrorCode.NO_FREE_LICENSE for u in UNITS[5:]}
    assert (result.pack.total, result.pack.used, result.pack.free) == (5, 5, 0)
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 5
    assert sorted(LicenseSlot.objects.values_list("unit_id", flat=True)) == UNITS[:5]


def test_asking_twice_for_the_same_unit_returns_the_existing_slot():
    f.pack("WE-AAAAA", total=5)
    first = request_licenses("WE-AAAAA", UNITS[:2], ums_fingerprint=fp())
    again = request_licenses("WE-AAAAA", UNITS[:3], ums_fingerprint=fp())
    assert [g.already_held for g in first.granted] == [False, False]
    held = {g.unit_id: g.already_held for g in again.granted}
    assert held == {UNITS[0]: True, UNITS[1]: True, UNITS[2]: False}
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 3
    assert LicenseSlot.objects.filter(unit_id=UNITS[0]).count() == 1


def test_a_unit_listed_twice_in_one_request_takes_one_slot():
    f.pack("WE-AAAAA", total=5)
    result = request_licenses("WE-AAAAA", [UNITS[0], UNITS[0]], ums_fingerprint=fp())
    assert len(result.granted) == 1
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 1


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"expiry": datetime.date(2026, 12, 2)}, LicenseErrorCode.PACK_EXPIRED),
        ({"start": datetime.date(2026, 12, 4)}, LicenseErrorCode.PACK_NOT_ACTIVE),
        ({"status": PackStatus.ARCHIVED}, LicenseErrorCode.PACK_NOT_ACTIVE),
        ({"status": PackStatus.MERGED}, LicenseErrorCode.PACK_NOT_ACTIVE),
        ({"eula": False}, LicenseErrorCode.EULA_NOT_ACCEPTED),
        ({"assign": False}, LicenseErrorCode.PACK_NOT_ASSIGNED),
    ],
)
def test_packs_that_may_not_hand_out_licenses_refuse_and_change_nothing(kwargs, code):
    f.pack("WE-AAAAA", total=5, **kwargs)
    with pytest.raises(LicenseServiceError) as err:
        request_licenses("WE-AAAAA", UNITS[:1], ums_fingerprint=fp())
    assert err.value.code == code
    assert "WE-AAAAA" in err.value.message or "ORD-" in err.value.message
    assert ProductPack.objects.get(pack_id="WE-AAAAA").used == 0
    assert not LicenseSlot.objects.exists()


def test_expiry_day_itself_is_still_valid_and_the_next_day_is_not():
    f.pack("WE-AAAAA", total=5, expiry=clock.today())
    assert len(request_licenses("WE-AAAAA", UNITS[:1], ums_fingerprint=fp()).granted) == 1
    clock.freeze(clock.now() + datetime.timedelta(days=1))
    with pytest.raises(LicenseServiceError) as err:
        request_licenses("WE-AAAAA", UNITS[1:2], ums_fingerprint=fp())
    assert err.value.code == LicenseErrorCode.PACK_EXPIRED


def test_perpetual_pack_hands_out_licenses():
    f.pack("UDC3-AAAAA", product_type="UDC3", total=2, expiry=None)
    result = request_licenses("UDC3-AAAAA", UNITS[:3], ums_fingerprint=fp())
    assert [g.expiry_date for g in result.granted] == [None, None]
    assert len(result.denied) == 1


def test_unknown_pack_and_malformed_unit_id_are_refused_by_name():
    f.pack("WE-AAAAA", total=5)
    with pytest.raises(LicenseServiceError) as err:
        request_licenses("WE-ZZZZZ", UNITS[:1], ums_fingerprint=fp())
    assert (err.value.code, "WE-ZZZZZ" in err.value.message) == (LicenseErrorCode.UNKNOWN_PACK, True)
    with pytest.raises(LicenseServiceError) as err:
        request_licenses("WE-AAAAA", ["00e0c5:bad"], ums_fingerprint=fp())
    assert err.value.code == LicenseErrorCode.UNKNOWN_UNIT_ID
    assert "00e0c5:bad" in err.value.message
    assert not LicenseSlot.objects.exists()


def test_release_frees_the_slot_once_and_the_unit_can_be_licensed_again():
    f.pack("WE-AAAAA", total=1)
    request_licenses("WE-AAAAA", UNITS[:1], ums_fingerprint=fp())
    assert release_license("WE-AAAAA", UNITS[0]) is True
    assert release_license("WE-AAAAA", UNITS[0]) is False
    pack = ProductPack.objects.get(pack_id="WE-AAAAA")
    assert pack.used == 0
    assert LicenseSlot.objects.filter(released_at__isnull=False).count() == 1
    again = request_licenses("WE-AAAAA", UNITS[1:2], ums_fingerprint=fp())
    assert [g.unit_id for g in again.granted] == [UNITS[1]]


def test_database_refuses_more_used_than_total():
    pack = f.pack("WE-AAAAA", total=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductPack.objects.filter(pk=pack.pk).update(used=F("total_licenses") + 1)


def test_database_refuses_a_second_active_slot_for_one_unit_in_one_pack():
    pack = f.pack("WE-AAAAA", total=2)
    LicenseSlot.objects.create(pack=pack, unit_id=UNITS[0])
    with pytest.raises(IntegrityError), transaction.atomic():
        LicenseSlot.objects.create(pack=pack, unit_id=UNITS[0])


def test_saving_a_pack_read_before_an_allocation_keeps_the_allocation():
    """An import or an admin form holding an older copy of the pack must not write ``used`` back."""
    f.pack("WE-AAAAA", total=5)
    stale = ProductPack.objects.get(pack_id="WE-AAAAA")
    request_licenses("WE-AAAAA", UNITS[:3], ums_fingerprint=fp())
    stale.comment = "renewed order"
    stale.save()
    pack = ProductPack.objects.get(pack_id="WE-AAAAA")
    assert (pack.used, pack.comment) == (3, "renewed order")
