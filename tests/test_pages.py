"""The first pages: ILP dashboard, UMS device list, Licenses > Deployment and the Django admin.

Each page is checked for who may see it, that it shows the right values for data made through the
services (factories + one ALD cycle), and that its number of queries does not grow with its rows."""

import datetime
import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats

from ald_portal import clock
from devices import views as device_views
from devices.engine import run_cycle
from devices.models import (
    DeploymentEvent,
    DeploymentSettings,
    Device,
    DeviceCommand,
    DeviceLicense,
    Directory,
    DistributionMethod,
    ImiLoginFailure,
    ImiSession,
    LicenseRequest,
    LicenseWait,
    RegisteredPack,
    WaitingReason,
)
from devices.services import refresh_registered_packs
from licensing.models import Company, ProductPack, SubscriptionKey, service_for
from tests import factories
from tests.conftest import DEMO_NOW

DASHBOARD = reverse("licensing:dashboard")
DEVICES = reverse("devices:device_list")
DEPLOYMENT = reverse("devices:deployment")
PAGES = [DASHBOARD, DEVICES, DEPLOYMENT]
PASSWORD = "s3cret-enough"


# --- reading rendered tables -----------------------------------------------------------------------
class _Cell:
    def __init__(self):
        self.parts, self.classes = [], set()

    @property
    def text(self):
        return " ".join("".join(self.parts).split())


class _TableParser(HTMLParser):
    """Every <table> of a page as its header texts and body rows (cells keep the CSS classes of the
    elements inside them, so a test can see which consumption bar colour a row shows)."""

    def __init__(self):
        super().__init__()
        self.tables, self._table, self._row, self._cell = [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = {"attrs": attrs, "header": [], "rows": []}
            self.tables.append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = {"attrs": attrs, "cells": [], "kinds": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = _Cell()
            self._row["cells"].append(self._cell)
            self._row["kinds"].append(tag)
        if self._cell is not None and attrs.get("class"):
            self._cell.classes.update(attrs["class"].split())

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if all(k == "th" for k in self._row["kinds"]):
                self._table["header"] = [c.text for c in self._row["cells"]]
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.parts.append(data)


def table(response, first_header):
    """The rendered table whose first column is ``first_header``, as a list of {header: _Cell}."""
    parser = _TableParser()
    parser.feed(response.content.decode())
    for t in parser.tables:
        if t["header"][:1] == [""]:  # a selection column of checkboxes comes first
            t["header"] = t["header"][1:]
            for r in t["rows"]:
                r["cells"] = r["cells"][1:] if len(r["cells"]) > 1 else r["cells"]
        if t["header"] and t["header"][0] == first_header:
            rows = []
            for r in t["rows"]:
                if len(r["cells"]) == 1:  # the "no rows" line
                    continue
                row = dict(zip(t["header"], r["cells"], strict=True))
                row["_attrs"] = r["attrs"]
                rows.append(row)
            return rows
    raise AssertionError(f"no table starting with column {first_header!r} on the page")


def texts(rows, column):
    return [r[column].text for r in rows]


def short_date(d):
    return formats.date_format(d, "SHORT_DATE_FORMAT")


# --- users -----------------------------------------------------------------------------------------
@pytest.fixture
def reader(django_user_model):
    """A logged-in user with no permissions at all: may read every page, change nothing."""
    return django_user_model.objects.create_user("reader", password=PASSWORD)


@pytest.fixture
def reader_client(client, reader):
    client.force_login(reader)
    return client


@pytest.fixture
def ums_admin(django_user_model):
    """A UMS administrator: not a superuser, holds exactly the permission the Deployment form needs."""
    user = django_user_model.objects.create_user("umsadmin", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="change_deploymentsettings"))
    return user


# --- a small real fleet ---------------------------------------------------------------------------
@pytest.fixture
def fleet(db):
    """Two WE packs (10 + 10), an EMP pack of 3 for Bremen, a perpetual UDC3 pack nobody gets, an
    archived WE pack; 12 devices in Berlin, 5 in Bremen, one with IGEL OS 10 and one in the recycle
    bin; ALD on and one cycle run. Expected, worked out by hand from docs/DOMAIN.md's rules:
    WE 17 of 20 used (OS 10 device waits), EMP 3 of 3 (two Bremen devices wait), the bin device
    gets nothing."""
    factories.company("Acme GmbH", "GA-000001")
    fw11 = factories.firmware("11.08.440.01")
    fw10 = factories.firmware("10.06.190.01", product="IGEL Universal Desktop LX")
    berlin, bremen = factories.directory("Berlin"), factories.directory("Bremen")
    factories.pack("WE-AAAAA", total=10)
    factories.pack("WE-BBBBB", total=10)
    factories.pack("EMP-CCCCC", product_type="EMP", total=3)
    factories.pack("UDC3-DDDDD", product_type="UDC3", total=15, expiry=None)
    factories.pack("WE-ZZZZZ", total=50, status="ARCHIVED")
    factories.register_all(conditions={"EMP-CCCCC": [bremen]})
    for n in range(1, 13):
        factories.device(n, fw=fw11, directory=berlin, name=f"BER-{n:04d}")
    for n in range(13, 18):
        factories.device(n, fw=fw11, directory=bremen, name=f"BRE-{n:04d}")
    factories.device(18, fw=fw10, directory=berlin, name="OLD-0018")
    factories.device(19, fw=fw11, directory=berlin, name="BIN-0019", moved_to_bin=True)
    factories.ald_on()
    run_cycle()
    return {"berlin": berlin, "bremen": bremen, "fw11": fw11, "fw10": fw10}


WAITING = ["BRE-0016", "BRE-0017", "OLD-0018"]
LICENSED = [f"BER-{n:04d}" for n in range(1, 13)] + ["BRE-0013", "BRE-0014", "BRE-0015"]
UNLICENSED = ["BIN-0019"]


# --- every page: who may see it ----------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_anonymous_user_is_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.django_db
def test_anonymous_post_to_deployment_is_sent_to_login_and_changes_nothing(client):
    response = client.post(DEPLOYMENT, {"ald_enabled": "on", "sweep_minutes": 9, "exchange_days": 7})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    conf = DeploymentSettings.load()
    assert (conf.ald_enabled, conf.sweep_minutes) == (False, 5)


@pytest.mark.parametrize(
    "url, shown",
    [(DASHBOARD, "GA-000001"), (DEVICES, "BER-0001"), (DEPLOYMENT, "EMP-CCCCC")],
)
def test_read_only_user_can_read_every_page(reader_client, fleet, url, shown):
    response = reader_client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    assert shown in content
    assert '<span>reader</span> <button type="submit">Log out</button>' in content


def test_login_form_logs_in_and_lands_on_the_dashboard(client, reader, fleet):
    response = client.post(reverse("login"), {"username": "reader", "password": PASSWORD}, follow=True)
    assert response.redirect_chain == [(DASHBOARD, 302)]
    assert response.context["user"] == reader


# --- ILP dashboard ----------------------------------------------------------------------------------
def test_dashboard_shows_company_and_global_account_id(reader_client, fleet):
    response = reader_client.get(DASHBOARD)
    assert "Acme GmbH · Global Account ID <strong>GA-000001</strong>" in response.content.decode()


def test_dashboard_consumption_per_product_type_after_an_ald_cycle(reader_client, fleet):
    rows = {r["_attrs"]["data-product-type"]: r for r in table(reader_client.get(DASHBOARD), "Product type")}
    assert sorted(rows) == ["EMP", "UDC3", "WE"]  # the archived pack's type has no pack in force
    we = rows["WE"]
    assert [we[c].text for c in ("Packs", "Used", "Total", "Free", "Consumption")] == [
        "2",
        "17",
        "20",
        "3",
        "85%",
    ]
    assert "util-amber" in we["Consumption"].classes
    emp = rows["EMP"]
    assert [emp[c].text for c in ("Used", "Total", "Free", "Consumption")] == ["3", "3", "0", "100%"]
    assert "util-red" in emp["Consumption"].classes
    udc3 = rows["UDC3"]
    assert [udc3[c].text for c in ("Used", "Total", "Free")] == ["0", "15", "15"]
    assert "util-ok" in udc3["Consumption"].classes


@pytest.mark.django_db
@pytest.mark.parametrize(
    "used, level",
    [(0, "ok"), (74, "ok"), (75, "amber"), (89, "amber"), (90, "red"), (100, "red")],
)
def test_dashboard_consumption_bar_is_amber_from_75_and_red_from_90_percent(client, reader, used, level):
    factories.company()
    pack = factories.pack("WE-QQQQQ", total=100, assign=False)
    ProductPack.objects.filter(pk=pack.pk).update(used=used)  # as if the ILS had bound `used` slots
    client.force_login(reader)
    (we,) = table(client.get(DASHBOARD), "Product type")
    assert we["Consumption"].text == f"{used}%"
    assert f"util-{level}" in we["Consumption"].classes
    assert {"util-ok", "util-amber", "util-red"} & we["Consumption"].classes == {f"util-{level}"}


def test_dashboard_lists_non_archived_packs_with_used_free_and_expiry(reader_client, fleet):
    rows = table(reader_client.get(DASHBOARD), "Pack ID")
    assert texts(rows, "Pack ID") == ["EMP-CCCCC", "UDC3-DDDDD", "WE-AAAAA", "WE-BBBBB"]  # no WE-ZZZZZ
    by_id = {r["Pack ID"].text: r for r in rows}
    expiry = short_date(clock.today() + datetime.timedelta(days=365))
    assert [by_id["WE-AAAAA"][c].text for c in ("Total", "Used", "Free", "Expiry")] == [
        "10",
        "10",
        "0",
        expiry,
    ]
    assert [by_id["WE-BBBBB"][c].text for c in ("Total", "Used", "Free", "Expiry")] == [
        "10",
        "7",
        "3",
        expiry,
    ]
    assert [by_id["EMP-CCCCC"][c].text for c in ("Used", "Free")] == ["3", "0"]
    assert by_id["UDC3-DDDDD"]["Expiry"].text == "perpetual"
    assert by_id["WE-BBBBB"]["Status"].text == "Active"


def test_dashboard_pack_table_sorts_by_the_column_clicked(reader_client, fleet):
    rows = table(reader_client.get(DASHBOARD, {"sort": "-used"}), "Pack ID")
    # used: WE-AAAAA 10, WE-BBBBB 7, EMP-CCCCC 3, UDC3-DDDDD 0
    assert texts(rows, "Pack ID") == ["WE-AAAAA", "WE-BBBBB", "EMP-CCCCC", "UDC3-DDDDD"]


def test_dashboard_pack_table_pages_keep_a_stable_order(reader_client, db):
    factories.company()
    for i in range(60):  # all with the same used, total and expiry: only the tie-break orders them
        factories.pack(f"WE-{i:05d}", total=5, assign=False)
    seen = []
    for page in (1, 2):
        seen += texts(
            table(reader_client.get(DASHBOARD, {"sort": "total", "page": page}), "Pack ID"), "Pack ID"
        )
    assert sorted(seen) == [f"WE-{i:05d}" for i in range(60)]


# --- UMS device list --------------------------------------------------------------------------------
def device_names(response):
    return texts(table(response, "Name"), "Name")


def test_device_list_shows_every_device_with_its_license_state(reader_client, fleet):
    rows = table(reader_client.get(DEVICES), "Name")
    state = {r["Name"].text: r["License state"].text for r in rows}
    assert len(rows) == 19
    assert all(state[n].startswith("Licensed") for n in LICENSED)
    assert state["BRE-0016"] == "Waiting EMP: No free license in any eligible pack"
    assert state["OLD-0018"] == "Waiting WE: IGEL OS version too old for this license type"
    assert state["BIN-0019"] == "Unlicensed in recycle bin"
    licenses = {r["Name"].text: r["Licenses"].text for r in rows}
    assert licenses["BER-0001"] == "WE (WE-AAAAA)"
    assert licenses["BRE-0013"] == "EMP (EMP-CCCCC), WE (WE-BBBBB)"
    assert licenses["BIN-0019"] == "—"


@pytest.mark.parametrize(
    "state, expected",
    [("waiting", WAITING), ("licensed", LICENSED), ("unlicensed", UNLICENSED)],
)
def test_device_list_filtered_by_license_state_shows_exactly_those_devices(
    reader_client, fleet, state, expected
):
    response = reader_client.get(DEVICES, {"license_state": state})
    assert device_names(response) == sorted(expected)
    assert f"{len(expected)} device(s)".encode() in response.content


def test_waiting_filter_matches_the_devices_the_engine_left_waiting(reader_client, fleet):
    waiting = set(LicenseWait.objects.values_list("device__name", flat=True))
    assert waiting == set(WAITING)
    assert set(device_names(reader_client.get(DEVICES, {"license_state": "waiting"}))) == waiting
    reasons = dict(LicenseWait.objects.values_list("device__name", "reason"))
    assert reasons["OLD-0018"] == WaitingReason.OS_TOO_OLD
    assert reasons["BRE-0017"] == WaitingReason.NO_FREE_LICENSE


def test_device_list_filters_by_directory_and_firmware(reader_client, fleet):
    bremen = reader_client.get(DEVICES, {"directory": fleet["bremen"].pk})
    assert device_names(bremen) == [f"BRE-{n:04d}" for n in range(13, 18)]
    old = reader_client.get(DEVICES, {"firmware": fleet["fw10"].pk})
    assert device_names(old) == ["OLD-0018"]
    both = reader_client.get(DEVICES, {"directory": fleet["berlin"].pk, "license_state": "unlicensed"})
    assert device_names(both) == ["BIN-0019"]


def test_device_list_filters_by_recycle_bin(reader_client, fleet):
    response = reader_client.get(DEVICES, {"moved_to_bin": "true"})
    assert device_names(response) == ["BIN-0019"]
    assert len(device_names(reader_client.get(DEVICES, {"moved_to_bin": "false"}))) == 18
    assert re.search(
        r'<option value="unknown" selected>Any</option>', reader_client.get(DEVICES).content.decode()
    )


def test_device_list_search_finds_a_device_by_mac(reader_client, fleet):
    response = reader_client.get(DEVICES, {"q": "00:e0:c5:00:00:0d"})  # device 13, typed as a MAC
    assert device_names(response) == ["BRE-0013"]


@pytest.mark.parametrize("sort", ["name", "-name", "site", "-site", "firmware", "directory", "license_state"])
def test_device_list_pages_neither_repeat_nor_skip_a_device(reader_client, db, sort):
    fw = factories.firmware()
    d = factories.directory("Same")
    # Same name, site, firmware and directory for all: only the tie-break on the key orders them.
    factories.devices(120, fw=fw, directory=d, site="Berlin")
    Device.objects.update(name="ITC-SAME")
    seen = []
    for page in (1, 2, 3):
        rows = table(reader_client.get(DEVICES, {"sort": sort, "page": page}), "Name")
        seen += texts(rows, "Unit ID")
    assert len(seen) == 120
    assert sorted(seen) == sorted(Device.objects.values_list("unit_id", flat=True))


def test_device_list_is_paginated_50_per_page(reader_client, db):
    factories.devices(120)
    assert len(table(reader_client.get(DEVICES), "Name")) == 50
    last = reader_client.get(DEVICES, {"page": 3})
    assert len(table(last, "Name")) == 20
    assert b"120 device(s)" in last.content


# --- Licenses > Deployment -------------------------------------------------------------------------
def settings_form(**overrides):
    data = {
        "ald_enabled": "on",
        "sweep_minutes": "5",
        "exchange_enabled": "",
        "exchange_days": "7",
        "notify_free_below": "10",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


def conf_values():
    conf = DeploymentSettings.load()
    return (conf.ald_enabled, conf.sweep_minutes, conf.exchange_enabled, conf.exchange_days)


def test_deployment_page_shows_settings_registered_packs_and_actions(reader_client, fleet):
    response = reader_client.get(DEPLOYMENT)
    form = response.context["form"]
    assert (form["ald_enabled"].value(), form["sweep_minutes"].value(), form["exchange_days"].value()) == (
        True,
        5,
        7,
    )
    packs = {r["Pack ID"].text: r for r in table(response, "Pack ID")}
    assert sorted(packs) == ["EMP-CCCCC", "UDC3-DDDDD", "WE-AAAAA", "WE-BBBBB", "WE-ZZZZZ"]
    assert [packs["WE-BBBBB"][c].text for c in ("Total", "Used", "Free", "Consumption")] == [
        "10",
        "7",
        "3",
        "70%",
    ]
    assert packs["EMP-CCCCC"]["Conditions"].text == "Bremen"
    assert packs["EMP-CCCCC"]["Distribution method"].text == "Enabled (with conditions)"
    assert packs["WE-AAAAA"]["Conditions"].text == "—"
    assert "util-red" in packs["EMP-CCCCC"]["Consumption"].classes


def test_read_only_user_sees_the_settings_but_no_save_button(reader_client, fleet):
    response = reader_client.get(DEPLOYMENT)
    assert b"Read-only" in response.content
    assert not re.search(rb'<button type="submit">Save</button>', response.content)
    assert re.search(rb"<fieldset[^>]*\bdisabled\b", response.content)


def test_executed_actions_are_listed_newest_first(reader_client, db):
    for day in (3, 1, 2):
        clock.freeze(DEMO_NOW - datetime.timedelta(days=day))
        DeploymentEvent.objects.create(action=DeploymentEvent.Action.SETTINGS, message=f"{day} days ago")
    clock.freeze(DEMO_NOW)
    for n in (1, 2):  # the same moment: the later row is the newer one
        DeploymentEvent.objects.create(action=DeploymentEvent.Action.SETTINGS, message=f"now {n}")
    rows = table(reader_client.get(DEPLOYMENT), "At")
    assert texts(rows, "Message") == ["now 2", "now 1", "1 days ago", "2 days ago", "3 days ago"]


def test_user_without_permission_gets_403_and_nothing_changes(reader_client, fleet):
    before, events = conf_values(), DeploymentEvent.objects.count()
    response = reader_client.post(DEPLOYMENT, settings_form(ald_enabled="", sweep_minutes="9"))
    assert response.status_code == 403
    assert "Changing deployment settings needs the UMS administrator role." in response.content.decode()
    assert conf_values() == before
    assert DeploymentEvent.objects.count() == events


@pytest.mark.parametrize("who", ["superuser", "ums_admin"])
def test_administrator_change_goes_through_the_service_and_is_an_executed_action(
    client, fleet, admin_user, ums_admin, monkeypatch, who
):
    user = admin_user if who == "superuser" else ums_admin
    calls = []
    real = device_views.update_deployment_settings

    def spy(actor, **changes):
        calls.append((actor, changes))
        return real(actor, **changes)

    monkeypatch.setattr(device_views, "update_deployment_settings", spy)
    client.force_login(user)
    response = client.post(
        DEPLOYMENT,
        settings_form(ald_enabled="", sweep_minutes="15", exchange_enabled="on", exchange_days="14"),
    )
    assert response.status_code == 302 and response["Location"] == DEPLOYMENT
    assert calls == [
        (
            user.username,
            {
                "ald_enabled": False,
                "sweep_minutes": 15,
                "exchange_enabled": True,
                "exchange_days": 14,
                "notify_free_below": 10,
                # the proxy, unchanged (no proxy)
                "proxy_enabled": False,
                "proxy_host": "",
                "proxy_port": None,
                "proxy_user": "",
                "proxy_password": "",
            },
        )
    ]
    assert conf_values() == (False, 15, True, 14)
    page = client.get(DEPLOYMENT)
    made = (
        "Enable automatic deployment: on -> off; Sweep every (minutes): 5 -> 15; "
        "Enable automatic license exchange: off -> on; "
        "Licenses are exchanged N days before expiration: 7 -> 14"
    )
    assert [str(m) for m in page.context["messages"]] == [made]
    newest = table(page, "At")[0]
    assert [newest[c].text for c in ("Actor", "Action", "Outcome", "Message")] == [
        user.username,
        "Settings changed",
        "Success",
        made,
    ]


def test_saving_unchanged_settings_says_no_change_and_adds_no_action(client, fleet, admin_user):
    client.force_login(admin_user)
    events = DeploymentEvent.objects.count()
    response = client.post(DEPLOYMENT, settings_form(), follow=True)
    assert [str(m) for m in response.context["messages"]] == ["No change."]
    assert DeploymentEvent.objects.count() == events


@pytest.mark.parametrize("bad", ["0", "-1", "99999", "abc", "1.5", ""])
def test_bad_sweep_minutes_give_a_form_error_naming_the_field(client, fleet, admin_user, bad):
    client.force_login(admin_user)
    before, events = conf_values(), DeploymentEvent.objects.count()
    data = settings_form(ald_enabled="", exchange_days="30")  # valid changes that must not be saved either
    data["sweep_minutes"] = bad
    response = client.post(DEPLOYMENT, data)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["sweep_minutes"]
    alerts = re.findall(r'<span class="error"[^>]*role="alert"[^>]*>(.*?)</span>', response.content.decode())
    assert len(alerts) == 1 and alerts[0].startswith("Sweep every (minutes):")
    assert conf_values() == before
    assert DeploymentEvent.objects.count() == events


@pytest.mark.parametrize(
    "bad, message",
    [
        ("0", "greater than or equal to 1"),
        ("-1", "greater than or equal to 1"),
        ("10081", "less than or equal to 10080"),
    ],
)
def test_out_of_range_error_states_the_real_limits(client, fleet, admin_user, bad, message):
    client.force_login(admin_user)
    response = client.post(DEPLOYMENT, settings_form(exchange_days=bad))
    assert message in " ".join(response.context["form"].errors["exchange_days"])


@pytest.mark.parametrize("minutes", ["1", "10080"])
def test_sweep_minutes_limits_are_accepted(client, fleet, admin_user, minutes):
    client.force_login(admin_user)
    response = client.post(DEPLOYMENT, settings_form(sweep_minutes=minutes))
    assert response.status_code == 302
    assert DeploymentSettings.load().sweep_minutes == int(minutes)


def test_a_rule_the_service_refuses_becomes_a_form_error(client, fleet, admin_user, monkeypatch):
    from django.core.exceptions import ValidationError

    def refuse(actor, **changes):
        raise ValidationError({"exchange_days": "exchange_days must not exceed the sweep interval."})

    monkeypatch.setattr(device_views, "update_deployment_settings", refuse)
    client.force_login(admin_user)
    response = client.post(DEPLOYMENT, settings_form(exchange_days="9"))
    assert response.status_code == 200
    assert response.context["form"].errors["exchange_days"] == [
        "exchange_days must not exceed the sweep interval."
    ]


# --- Django admin ------------------------------------------------------------------------------------
ADMIN_MODELS = [m for label in ("licensing", "devices") for m in apps.get_app_config(label).get_models()]


def test_every_licensing_and_devices_model_is_in_the_admin():
    assert {m.__name__ for m in ADMIN_MODELS} >= {"ProductPack", "LicenseSlot", "Device", "DeploymentEvent"}
    assert [m.__name__ for m in ADMIN_MODELS if not admin.site.is_registered(m)] == []


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: f"{m._meta.app_label}.{m.__name__}")
def test_admin_changelist_lists_every_row_for_a_superuser(admin_client, fleet, model):
    device = Device.objects.get(name="BRE-0016")
    LicenseRequest.objects.create(
        device=device, service="EMP", pack_id="EMP-CCCCC", claim_token="t", claimed_until=clock.now()
    )
    # what the IMI API writes: a command sent, a session, a failed login
    DeviceCommand.objects.create(device=device, command="reboot", exec_id="ID-1", actor="admin")
    ImiSession.objects.create(key_hash="0" * 64, user=User.objects.get(username="admin"), address="127.0.0.1")
    ImiLoginFailure.objects.create(address="127.0.0.1", failures=1)
    key = SubscriptionKey.objects.create(company=Company.objects.get(), key="SK-TEST-0001")
    from devices.services import register_ald_token
    from licensing.models import IlsRequest
    from licensing.services import generate_ald_token

    register_ald_token(generate_ald_token(key, actor="admin")[1], actor="admin")
    IlsRequest.objects.create(caller="ums:1", idempotency_key="k-00000001", request_digest="0" * 64)
    from devices.notifications import check_notifications
    from devices.reconciliation import reconcile
    from licensing.services import set_pack_comment

    check_notifications()  # EMP-CCCCC is used up
    reconcile()
    set_pack_comment("WE-AAAAA", "seen in the admin", actor="tester")  # a License Portal action
    rows = model._default_manager.count()
    assert rows > 0  # every changelist renders real rows, so a broken list_display shows up
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows


def test_admin_is_closed_to_a_user_without_staff_status(reader_client):
    response = reader_client.get(reverse("admin:devices_device_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- queries do not grow with rows --------------------------------------------------------------------
def grow(first, count):
    """``count`` more of everything: WE packs (every other one empty, so devices both get licenses
    and wait), assigned, registered, each with conditions on three directories; devices; and the
    executed actions that registering and one ALD cycle write."""
    company = factories.company()
    ums = factories.ums()
    key = SubscriptionKey.objects.get_or_create(company=company, key="SK-GROW-0001")[0]
    today = clock.today()
    ids = [f"WE-{i:05d}" for i in range(first, first + count)]
    ProductPack.objects.bulk_create(
        [
            ProductPack(
                pack_id=pack_id,
                company=company,
                product_name="IGEL Workspace Edition",
                product_type="WE",
                service=service_for("WE", pack_id),
                total_licenses=i % 2,
                start_date=today - datetime.timedelta(days=1),
                expiry_date=today + datetime.timedelta(days=1 + i),
                subscription_key=key,
                assigned_ums=ums,
            )
            for i, pack_id in enumerate(ids, start=first)
        ]
    )
    refresh_registered_packs()
    dirs = list(Directory.objects.order_by("pk")[:3])
    while len(dirs) < 3:
        dirs.append(Directory.objects.create(name=f"Dir {len(dirs)}"))
    new = RegisteredPack.objects.filter(pack_id__in=ids)
    new.update(distribution_method=DistributionMethod.CONDITIONS)
    through = RegisteredPack.condition_directories.through
    through.objects.bulk_create(
        [
            through(registeredpack_id=pk, directory_id=d.pk)
            for pk in new.values_list("pk", flat=True)
            for d in dirs
        ]
    )
    factories.devices(count, start=10_000 + first, directory=dirs[0])
    factories.ald_on()
    run_cycle()


def count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sorted({s for s in sql if sql.count(s) > 1}) == []  # nothing asked twice (e.g. a 2nd COUNT)
    return len(sql), response


def rows_shown(url, response):
    if url == DEPLOYMENT:
        return len(response.context["packs"].rows), len(response.context["events"].page.object_list)
    return len(response.context["table"].page.object_list)


@pytest.mark.parametrize("url", PAGES)
def test_queries_per_page_do_not_grow_with_rows(reader_client, url):
    grow(0, 10)
    assert (Device.objects.count(), RegisteredPack.objects.count()) == (10, 10)
    small, response = count_queries(reader_client, url)
    shown_small = rows_shown(url, response)
    grow(10, 490)
    assert (Device.objects.count(), RegisteredPack.objects.count(), ProductPack.objects.count()) == (
        500,
        500,
        500,
    )
    assert DeploymentEvent.objects.count() >= 1000
    assert LicenseWait.objects.count() == 250 and DeviceLicense.objects.count() == 250
    large, response = count_queries(reader_client, url)
    shown_large = rows_shown(url, response)
    assert small == large, f"{url}: {small} queries for 10 rows, {large} for 500"
    # session, user, (permissions,) the counts, the rows and their prefetches, summaries, the ALD tokens
    assert large <= 13
    expected = {DASHBOARD: (10, 50), DEVICES: (10, 50), DEPLOYMENT: ((10, 20), (500, 25))}[url]
    assert (shown_small, shown_large) == expected


@pytest.mark.django_db
def test_a_device_with_a_pending_exchange_is_shown_licensed_with_the_reason(client, django_user_model):
    from devices.engine import run_cycle
    from devices.models import LicenseWait
    from tests import factories as fac

    fac.ald_on(exchange_enabled=True, exchange_days=30)
    fac.pack("WE-AAAAA", total=5, expiry=datetime.date(2026, 12, 20))
    fac.register_all()
    dev = fac.device(name="EXCH-0001")
    run_cycle()
    run_cycle()
    assert LicenseWait.objects.get(device=dev).reason == "no_later_pack"
    django_user_model.objects.create_user("reader", password="pw-reader-1")
    client.login(username="reader", password="pw-reader-1")
    html = client.get("/ums/devices/?license_state=licensed").content.decode()
    assert "EXCH-0001" in html
    assert "WE: exchange pending, No pack with a later expiry and a free license to exchange to" in html
    assert "EXCH-0001" not in client.get("/ums/devices/?license_state=waiting").content.decode()


def test_the_ums_address_opens_its_devices(helpdesk_client):
    response = helpdesk_client.get("/ums/")
    assert response.status_code == 302 and response["Location"] == "/ums/devices/"


def test_the_portal_has_an_icon_and_favicon_ico_leads_to_it(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    login = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
