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
