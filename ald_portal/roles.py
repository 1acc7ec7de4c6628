"""The portal's three roles, as Django groups with model permissions.

- ILP administrators change what the License Portal owns: orders (EULA), Product Packs (split, merge,
  remove hardware, comment), UMS IDs and subscription keys (ALD tokens).
- UMS administrators change what the UMS owns: devices, directories, deployment settings, registered
  packs and their distribution conditions, licenses on devices.
- Helpdesk (read-only) sees every page and changes nothing: each POST answers 403.

Every role can view everything; a page checks one ``change`` permission before it changes anything.
The groups are kept in step after every ``migrate`` (``ensure_roles``), so a new model's permissions
reach the roles without a manual step.
"""

from django.contrib.auth.models import Group, Permission

ILP_ADMIN = "ILP administrators"
UMS_ADMIN = "UMS administrators"
HELPDESK = "Helpdesk (read-only)"

# the command line's short names for the groups
ROLE_NAMES = {"ilp-admin": ILP_ADMIN, "ums-admin": UMS_ADMIN, "helpdesk": HELPDESK}

APPS = ("licensing", "devices")
# the models whose add/change/delete each administrator role gets, by app label
ADMINISTERS = {
    ILP_ADMIN: ("licensing",),
    UMS_ADMIN: ("devices",),
    HELPDESK: (),
}


def role_permissions(role):
    """The permissions a role should hold: view on both sides, and add/change/delete on its own."""
    perms = Permission.objects.filter(content_type__app_label__in=APPS)
    own = ADMINISTERS[role]
    return [p for p in perms if p.codename.startswith("view_") or p.content_type.app_label in own]


def ensure_roles(**kwargs):
    """Create the three groups and give each exactly its permissions. Idempotent."""
    for role in ADMINISTERS:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(role_permissions(role))


def describe(user):
    """The roles a user holds, for the page header."""
    if user.is_superuser:
        return ["Superuser"]
    return sorted(user.groups.filter(name__in=ADMINISTERS).values_list("name", flat=True))
