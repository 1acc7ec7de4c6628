"""The device list's license filters: license type (service) and the state of a license (licensed,
expiring, grace, expired), alone or together, and the site; all with the export of the same rows."""

import json

import pytest
from django.urls import reverse

from tests import ums_fleet

pytestmark = pytest.mark.django_db
URL = reverse("devices:device_list")


@pytest.fixture
def fleet(db):
    return ums_fleet.build()


def names(response):
    assert response.status_code == 200
    return [row.record.name for row in response.context["table"].page.object_list]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"license": "grace"}, ["ITC-BER-SALES"]),
        ({"license": "expired"}, ["ITC-BER-OLD"]),
        ({"license": "expiring"}, [ums_fleet.FORMULA_NAME]),
        ({"license": "licensed"}, ["ITC-HAM"]),
        ({"service": "EMP"}, ["ITC-HAM"]),
        ({"service": "WE"}, [ums_fleet.FORMULA_NAME, "ITC-BER-OLD", "ITC-BER-SALES", "ITC-HAM"]),
        ({"service": "WE", "license": "expired"}, ["ITC-BER-OLD"]),
        ({"service": "EMP", "license": "expired"}, []),
        ({"site": "Hamburg HQ"}, ["ITC-HAM"]),
        ({"site": "Berlin", "license": "grace"}, ["ITC-BER-SALES"]),
        ({"license_state": "unlicensed"}, ["ITC-BER-OLD", "ITC-BER-SALES"]),
    ],
)
def test_filter_lists_exactly_the_matching_devices(helpdesk_client, fleet, params, expected):
    assert names(helpdesk_client.get(URL, params)) == expected


def test_filter_choices_name_every_service_and_site(helpdesk_client, fleet):
    form = helpdesk_client.get(URL).context["filter"].form
    assert list(form.fields["service"].choices) == [("", "Any"), ("EMP", "EMP"), ("WE", "WE")]
    assert list(form.fields["site"].choices) == [
        ("", "Any"),
        ("Berlin", "Berlin"),
        ("Hamburg HQ", "Hamburg HQ"),
        ("Munich", "Munich"),
    ]
    assert 'for="id_license"' in helpdesk_client.get(URL).content.decode()


def test_unknown_service_is_an_error_and_lists_nothing(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"service": "NOPE"})
    assert names(response) == []
    assert "Select a valid choice. NOPE is not one of the available choices." in response.content.decode()


def test_export_has_the_devices_of_the_license_filter(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"service": "WE", "license": "expired", "export": "json"})
    assert [row["Name"] for row in json.loads(response.content)] == ["ITC-BER-OLD"]


def test_a_firmware_that_is_no_firmware_is_an_error_naming_the_value(helpdesk_client, fleet):
    response = helpdesk_client.get(URL, {"firmware": "abc"})
    assert names(response) == []
    assert "Firmware &#x27;abc&#x27; is not one of the firmwares." in response.content.decode()


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_an_export_under_a_filter_that_is_not_valid_says_why_instead_of_an_empty_file(
    helpdesk_client, fleet, fmt
):
    response = helpdesk_client.get(URL, {"firmware": "abc", "export": fmt})
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == (
        "No export: a filter is not valid.\nFirmware (firmware): Firmware 'abc' is not one of the firmwares.\n"
    )


@pytest.mark.parametrize(
    "q, expected",
    [
        ("ITC-BER", ["ITC-BER-OLD", "ITC-BER-SALES"]),
        ("00:e0:c5:00:00:03", ["ITC-HAM"]),  # a MAC in any common form
        ("C5 00 00 03", ["ITC-HAM"]),  # a part of one
        ("SALES", ["ITC-BER-SALES"]),  # its hex letters (A, E) are no unit ID
        ("ACE", []),  # only hex letters and no name has them: a part of no unit ID
    ],
)
def test_the_search_matches_unit_ids_only_for_what_is_hex_and_separators(helpdesk_client, fleet, q, expected):
    assert sorted(names(helpdesk_client.get(URL, {"q": q}))) == expected


def test_the_recycle_bin_filter_takes_yes_no_or_any_and_names_anything_else(helpdesk_client, fleet):
    from devices.models import Device

    Device.objects.filter(name="ITC-HAM").update(moved_to_bin=True)
    assert names(helpdesk_client.get(URL, {"moved_to_bin": "true"})) == ["ITC-HAM"]
    assert "ITC-HAM" not in names(helpdesk_client.get(URL, {"moved_to_bin": "false"}))
    assert len(names(helpdesk_client.get(URL, {"moved_to_bin": "unknown"}))) == 5  # every device
    response = helpdesk_client.get(URL, {"moved_to_bin": "yes"})
    assert names(response) == []
    assert (
        "In recycle bin &#x27;yes&#x27; is not one of Any, Yes, No (true, false)."
        in response.content.decode()
    )
    export = helpdesk_client.get(URL, {"moved_to_bin": "bogus", "export": "csv"})
    assert export.status_code == 400
    assert "In recycle bin 'bogus' is not one of Any, Yes, No" in export.content.decode()


def test_the_directory_is_shown_by_its_path_on_the_list_the_export_and_the_device_page(
    helpdesk_client, fleet
):
    from devices.models import Device

    response = helpdesk_client.get(URL, {"q": "ITC-BER-SALES"})
    assert ">Berlin / Sales</td>" in response.content.decode()
    export = json.loads(helpdesk_client.get(URL, {"q": "ITC-BER-SALES", "export": "json"}).content)
    assert [row["Directory"] for row in export] == ["Berlin / Sales"]
    sales = Device.objects.get(name="ITC-BER-SALES")
    page = helpdesk_client.get(reverse("devices:device_detail", args=[sales.pk])).content.decode()
    assert "<dt>Directory</dt><dd>Berlin / Sales</dd>" in page
    root = Device.objects.get(name="ITC-ROOT")
    assert (
        "<dt>Directory</dt><dd>(root)</dd>"
        in helpdesk_client.get(reverse("devices:device_detail", args=[root.pk])).content.decode()
    )
