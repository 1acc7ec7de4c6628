"""Any page number, page size or sort order in a URL gives a page, never a server error."""

import pytest

from tests import factories as f

pytestmark = pytest.mark.django_db

QUERIES = [
    "page=abc",
    "page=0",
    "page=-1",
    "page=99999",
    "page=",
    "page=1e3",
    "page=" + "9" * 40,
    "per_page=-5",
    "per_page=0",
    "per_page=abc",
    "per_page=100000",
    "sort=nonsense",
    "sort=-licenses",
    "license_state=bogus",
    "directory=abc",
    "firmware=-3",
    "q=%00",
]
PAGES = ["/ilp/", "/ums/devices/", "/ums/deployment/"]


@pytest.fixture
def reader(client, django_user_model):
    django_user_model.objects.create_user("reader", password="pw-reader-1")
    client.login(username="reader", password="pw-reader-1")
    f.pack("WE-AAAAA", total=5)
    f.register_all()
    f.devices(3)
    return client


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("query", QUERIES)
def test_odd_parameters_give_a_page(reader, url, query):
    response = reader.get(f"{url}?{query}")
    assert response.status_code == 200
