import datetime
import os

import pytest
from django.utils import timezone

from ald_portal import clock

# The demo pack list's dates are relative to 2026-12-01; tests run on a fixed day after it.
DEMO_NOW = timezone.make_aware(datetime.datetime(2026, 12, 3, 12, 0))


def missing_service(reason: str):
    """Skip with a visible reason on a machine without the service; in CI (.ci/run sets
    ALD_REQUIRE_SERVICES=1) a missing service is a failure, so nothing skips there."""
    if os.environ.get("ALD_REQUIRE_SERVICES"):
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def frozen_clock():
    """Every test starts on DEMO_NOW; a test moves time with clock.freeze(...)."""
    clock.freeze(DEMO_NOW)
    yield DEMO_NOW
    clock.freeze(None)


@pytest.fixture
def postgres(django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        missing_service("needs PostgreSQL: run with DATABASE_URL=postgresql://... (.ci/run does)")
    return connection


# --- the three roles (ald_portal/roles.py), logged in ----------------------------------------------


def _client_with_role(django_user_model, username, role):
    from django.contrib.auth.models import Group
    from django.test import Client

    user = django_user_model.objects.create_user(username, password=f"pw-{username}-1")
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def helpdesk_client(django_user_model):
    """A read-only helpdesk user: sees every page, every POST answers 403."""
    from ald_portal.roles import HELPDESK

    return _client_with_role(django_user_model, "helpdesk", HELPDESK)


@pytest.fixture
def ilp_admin_client(django_user_model):
    from ald_portal.roles import ILP_ADMIN

    return _client_with_role(django_user_model, "ilp-admin", ILP_ADMIN)


@pytest.fixture
def ums_admin_client(django_user_model):
    from ald_portal.roles import UMS_ADMIN

    return _client_with_role(django_user_model, "ums-admin", UMS_ADMIN)
