import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ald_portal.roles import ROLE_NAMES, ensure_roles


class Command(BaseCommand):
    help = (
        "Create a portal user with one role (ilp-admin, ums-admin or helpdesk), or give an existing user "
        "that role. Prints a new user's password once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_NAMES))
        parser.add_argument("--email", default="")

    def handle(self, username, role, email, **options):
        from django.contrib.auth.models import Group

        username = username.strip()
        if not username:
            raise CommandError("username: must not be empty.")
        ensure_roles()
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(username, email, password)
            self.stdout.write(f"Created {username} with the password: {password}")
        user.groups.add(Group.objects.get(name=ROLE_NAMES[role]))
        self.stdout.write(f"{username} has the role {ROLE_NAMES[role]}.")
