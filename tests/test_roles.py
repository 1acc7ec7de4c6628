"""The three roles: groups kept in step after migrate, and the portal_user command."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError

from ald_portal.roles import HELPDESK, ILP_ADMIN, UMS_ADMIN, ensure_roles

pytestmark = pytest.mark.django_db


def _perms(role):
    return set(Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename"))


def test_migrate_leaves_each_role_exactly_its_permissions():
    ilp, ums, helpdesk = _perms(ILP_ADMIN), _perms(UMS_ADMIN), _perms(HELPDESK)
    assert ("licensing", "change_productpack") in ilp and ("devices", "change_device") not in ilp
    assert ("devices", "change_deploymentsettings") in ums and ("licensing", "change_productpack") not in ums
    assert helpdesk and all(codename.startswith("view_") for _, codename in helpdesk)
    # everybody sees both sides
    for role in (ilp, ums):
        assert helpdesk <= role
    assert ("devices", "view_device") in helpdesk and ("licensing", "view_productpack") in helpdesk
    assert not any(app == "auth" for app, _ in ilp | ums | helpdesk)


def test_ensure_roles_is_idempotent_and_repairs_a_changed_group():
    group = Group.objects.get(name=HELPDESK)
    before = _perms(HELPDESK)
    group.permissions.clear()
    ensure_roles()
    ensure_roles()
    assert _perms(HELPDESK) == before
    assert Group.objects.filter(name=HELPDESK).count() == 1


def test_portal_user_creates_a_user_with_one_role(capsys):
    call_command("portal_user", "pat", role="helpdesk")
    out = capsys.readouterr().out
    user = User.objects.get(username="pat")
    assert "Created pat with the password: " in out
    password = out.split("password: ")[1].split()[0]
    assert user.check_password(password)
    assert list(user.groups.values_list("name", flat=True)) == [HELPDESK]
    assert user.has_perm("devices.view_device") and not user.has_perm("devices.change_device")
    # again, with another role: added, no new password
    call_command("portal_user", "pat", role="ums-admin")
    assert "password" not in capsys.readouterr().out
    user = User.objects.get(username="pat")
    assert sorted(user.groups.values_list("name", flat=True)) == sorted([HELPDESK, UMS_ADMIN])


def test_portal_user_refuses_an_unknown_role_and_an_empty_name():
    with pytest.raises(CommandError, match="role"):
        call_command("portal_user", "pat", role="root")
    with pytest.raises(CommandError, match="username"):
        call_command("portal_user", "  ", role="helpdesk")
    assert not User.objects.exists()
