"""ald_portal.bulk.insert_rows, the bulk insert behind ALD's claims, slots, licenses and executed
actions: all rows or none, inside a transaction or outside one, on SQLite and PostgreSQL."""

import pytest
from django.db import IntegrityError, connection, transaction

from ald_portal import clock
from ald_portal.bulk import insert_rows
from devices.models import LicenseRequest
from tests import factories as f

CLAIM_FIELDS = ["device_id", "service", "pack_id", "claim_token", "claimed_until", "created_at"]


def claim(device, token="t-1"):
    now = clock.now()
    return (device.pk, "WE", "WE-BULK1", token, now, now)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_failing_row_leaves_none_of_the_rows():
    """In autocommit an executemany would commit row by row and stop half way; the insert is one
    transaction instead."""
    first, second = f.device(n=1), f.device(n=2)
    with pytest.raises(IntegrityError):
        insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(first), claim(second), claim(first)])
    assert connection.get_autocommit()
    assert LicenseRequest.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_rows_are_committed():
    first, second = f.device(n=1), f.device(n=2)
    assert insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(first), claim(second)]) == 2
    assert sorted(LicenseRequest.objects.values_list("device_id", flat=True)) == [first.pk, second.pk]


@pytest.mark.django_db(transaction=True)
def test_ignore_conflicts_skips_only_the_conflicting_rows():
    first, second = f.device(n=1), f.device(n=2)
    insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(first, "old")])
    insert_rows(
        LicenseRequest, CLAIM_FIELDS, [claim(first, "new"), claim(second, "new")], ignore_conflicts=True
    )
    assert dict(LicenseRequest.objects.values_list("device_id", "claim_token")) == {
        first.pk: "old",
        second.pk: "new",
    }


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_failure_rolls_back_with_it():
    first = f.device(n=1)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(first)])
            insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(first)])
    assert LicenseRequest.objects.count() == 0


@pytest.mark.django_db
def test_dates_and_times_are_stored_as_given_whether_shared_distinct_or_missing():
    import datetime

    from devices.engine import LICENSE_FIELDS
    from devices.models import DeviceLicense

    devices = [f.device(n=n) for n in (1, 2, 3)]
    issued = clock.now().replace(microsecond=123456)
    expiries = [datetime.date(2027, 1, 31), None, datetime.date(2027, 1, 31)]
    rows = [
        (d.pk, d.unit_id, "WE", "WE-BULK1", "WE", issued, e, False, "ALD", "CURRENT")
        for d, e in zip(devices, expiries, strict=True)
    ]
    insert_rows(DeviceLicense, LICENSE_FIELDS, rows)
    stored = DeviceLicense.objects.order_by("device_id").values_list("issued_at", "expires_at", "revoked_at")
    assert list(stored) == [(issued, e, None) for e in expiries]


@pytest.mark.django_db
def test_a_row_of_the_wrong_length_is_refused_before_anything_is_sent():
    device = f.device(n=1)
    with pytest.raises(ValueError):
        insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(device), claim(device)[:-1]])
    assert LicenseRequest.objects.count() == 0


# --- field__among and ReusableQuery: the batch queries ALD runs per batch ---------------------------


@pytest.mark.django_db
def test_among_matches_exactly_what_in_matches():
    from ald_portal.lookups import Values
    from devices.models import Device

    devices = [f.device(n=i) for i in range(1, 6)]
    ids = [devices[0].pk, devices[2].pk, devices[4].pk, 999_999]
    among = Device.objects.filter(pk__among=Values(ids)).order_by("pk")
    assert list(among) == list(Device.objects.filter(pk__in=ids).order_by("pk"))
    assert [d.pk for d in among] == [devices[0].pk, devices[2].pk, devices[4].pk]
    units = [devices[1].unit_id, "00E0C5FFFFFF"]
    assert list(Device.objects.filter(unit_id__among=Values(units))) == [devices[1]]
    assert not Device.objects.filter(pk__among=Values([])).exists()
    # on a relation (the device of a claim), as ALD asks it
    insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(devices[1]), claim(devices[3])])
    claimed = LicenseRequest.objects.filter(device_id__among=Values([devices[3].pk, devices[4].pk]))
    assert list(claimed.values_list("device_id", flat=True)) == [devices[3].pk]


def test_among_takes_only_plain_integers_and_strings():
    from ald_portal.lookups import Values

    with pytest.raises(TypeError, match=r"__among takes integers or strings, not 1\.5"):
        Values([1, 1.5])
    with pytest.raises(TypeError, match=r"__among takes integers or strings, not None"):
        Values([None])
    with pytest.raises(TypeError, match=r"__among takes Values\(\[\.\.\.\]\), not list"):
        str(LicenseRequest.objects.filter(device_id__among=[1, 2]).query)


@pytest.mark.django_db
def test_a_reusable_query_returns_what_the_queryset_returns_for_each_value():
    """Compiled once, run with one parameter swapped; dates come back as dates, as values_list gives
    them."""
    from ald_portal.bulk import ReusableQuery

    devices = [f.device(n=i) for i in range(1, 4)]
    insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(devices[0], "t-a"), claim(devices[1], "t-a")])
    insert_rows(LicenseRequest, CLAIM_FIELDS, [claim(devices[2], "t-b")])

    def claims(token):
        return (
            LicenseRequest.objects.filter(claim_token=token)
            .order_by("device_id")
            .values_list("device_id", "claimed_until")
        )

    query = ReusableQuery(claims("marker-1"), "marker-1")
    for token in ("t-a", "t-b", "t-none"):
        assert query.rows(token) == list(claims(token))
    assert [d for d, _ in query.rows("t-a")] == [devices[0].pk, devices[1].pk]
    assert query.rows("t-b")[0][1] == clock.now()


def test_a_reusable_query_needs_its_marker_exactly_once():
    from ald_portal.bulk import ReusableQuery

    with pytest.raises(ValueError, match="the marker must be a parameter exactly once, found 0 times"):
        ReusableQuery(LicenseRequest.objects.filter(claim_token="other"), "marker")
    both = LicenseRequest.objects.filter(claim_token="marker", pack_id="marker")
    with pytest.raises(ValueError, match="found 2 times"):
        ReusableQuery(both, "marker")
