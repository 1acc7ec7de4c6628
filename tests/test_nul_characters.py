"""A NUL character in the address names no page (404) and in a posted form field is a 400 naming the
field, before any view runs: SQLite would store it silently, PostgreSQL fails deep in a query.
(Query parameters go to the filter forms, which say what is wrong: tests/test_page_parameters.py.)"""

import pytest

from licensing.models import UmsId
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_an_address_with_a_nul_names_no_page(ums_admin_client):
    response = ums_admin_client.get("/ums/deployment/packs/WE%00/distribution/")
    assert response.status_code == 404
    assert "No page at '/ums/deployment/packs/WE\\x00/distribution/'" in response.content.decode()


def test_a_form_field_with_a_nul_is_a_400_naming_it(ums_admin_client):
    response = ums_admin_client.post("/ums/deployment/", {"action": "activate", "pack_id": "WE\x00"})
    assert response.status_code == 400
    assert "The form field 'pack_id' contains a NUL character: 'WE\\x00'." in response.content.decode()


def test_a_list_field_names_the_value_that_has_the_nul(ums_admin_client):
    response = ums_admin_client.post(
        "/ums/deployment/packs/WE-AAAAA/distribution/", {"directories": ["12", "abc", "7\x00"]}
    )
    assert response.status_code == 400
    assert "The form field 'directories' contains a NUL character: '7\\x00'." in response.content.decode()


def test_a_ums_id_rename_with_a_nul_changes_nothing(ilp_admin_client):
    ums = f.ums()
    response = ilp_admin_client.post(f"/ilp/ums-ids/{ums.pk}/rename/", {"name": "a\x00b"})
    assert response.status_code == 400
    assert UmsId.objects.get(pk=ums.pk).name == ums.name
