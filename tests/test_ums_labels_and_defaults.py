"""Every control on the UMS pages has a label a screen reader reads (a <label for>, or aria-label),
and Licenses > Deployment shows each setting's default beside it."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests import ums_fleet

pytestmark = pytest.mark.django_db


class Controls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.controls, self.labels = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)


@pytest.mark.parametrize(
    "name, args",
    [
        ("device_list", []),
        ("device_licenses", []),
        ("executed_actions", []),
        ("directory_tree", []),
        ("deployment", []),
        ("ald_preview", []),
        ("pack_distribution", ["WE-LONGA"]),
    ],
)
def test_every_control_has_a_label(ums_admin_client, name, args):
    ums_fleet.build()
    html = ums_admin_client.get(reverse(f"devices:{name}", args=args)).content.decode()
    parser = Controls()
    parser.feed(html)
    unlabelled = [c for c in parser.controls if c.get("id") not in parser.labels and not c.get("aria-label")]
    assert unlabelled == []


def test_each_setting_shows_its_default(helpdesk_client):
    html = helpdesk_client.get(reverse("devices:deployment")).content.decode()
    defaults = dict(
        re.findall(
            r'<label for="id_(\w+)">.*?<small class="muted setting-default">Default: ([^<]+)</small>',
            html,
            re.S,
        )
    )
    assert {
        k: defaults.get(k)
        for k in ("ald_enabled", "sweep_minutes", "exchange_enabled", "exchange_days", "notify_free_below")
    } == {
        "ald_enabled": "off",
        "sweep_minutes": "5",
        "exchange_enabled": "off",
        "exchange_days": "7",
        "notify_free_below": "10",
    }
