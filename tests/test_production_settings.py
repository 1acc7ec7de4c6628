"""Production mode (DEBUG off): `manage.py check --deploy` passes with the settings the README gives,
and the portal refuses to start with the development secret key, set or left out."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from ald_portal.settings import DEV_SECRET_KEY


def manage(tmp_path, *args, **env):
    # (the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process for Playwright; production does not)
    dropped = {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    base.update(DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}", ALD_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings(tmp_path):
    done = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.parametrize("key", [None, DEV_SECRET_KEY], ids=["no key", "the development key"])
def test_production_refuses_to_start_with_the_development_secret_key(tmp_path, key):
    env = {"DEBUG": "false", "ALLOWED_HOSTS": "portal.example.com"}
    if key:
        env["SECRET_KEY"] = key
    done = manage(tmp_path, "check", **env)
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off: the development key is public." in done.stderr


def test_check_deploy_in_development_mode_names_what_production_needs(tmp_path):
    """The development defaults are not for production, and --deploy says so."""
    done = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    assert "security.W018" in done.stderr  # DEBUG on


def test_the_var_folder_is_made_readable_by_its_owner_only(tmp_path):
    """It holds the SQLite database (with this UMS's private UMS ID key) and the signing key."""
    var = tmp_path / "new-var"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env["ALD_VAR_DIR"] = str(var)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert oct(var.stat().st_mode & 0o777) == "0o700"
