"""The device list's directory filter covers the subtree, as distribution conditions do, names
directories by path, and offers the root directory."""

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client, django_user_model):
    django_user_model.objects.create_user("reader", password="pw-reader-1")
    client.login(username="reader", password="pw-reader-1")
    return client


def names(client, query):
    response = client.get(f"/ums/devices/?{query}")
    assert response.status_code == 200
    return sorted(r.name for r in response.context["table"].page.object_list.data)


def test_a_site_shows_the_devices_of_its_departments(reader):
    berlin, portland = f.directory("Berlin"), f.directory("Portland")
    b_sales, p_sales = f.directory("Sales", parent=berlin), f.directory("Sales", parent=portland)
    f.device(name="B-SITE", directory=berlin)
    f.device(name="B-SALES", directory=b_sales)
    f.device(name="P-SALES", directory=p_sales)
    f.device(name="ROOT-1")
    assert names(reader, f"directory={berlin.pk}") == ["B-SALES", "B-SITE"]
    assert names(reader, f"directory={p_sales.pk}") == ["P-SALES"]
    assert names(reader, "directory=root") == ["ROOT-1"]
    html = reader.get("/ums/devices/").content.decode()
    assert "Berlin / Sales" in html and "Portland / Sales" in html


def test_an_unknown_directory_is_a_form_error_not_a_500(reader):
    f.device(name="ANY-1")
    response = reader.get("/ums/devices/?directory=99999")
    assert response.status_code == 200
    assert "directory" in response.context["filter"].form.errors
