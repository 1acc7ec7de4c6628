from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AldPortalConfig(AppConfig):
    name = "ald_portal"
    verbose_name = "ALD Portal"

    def ready(self):
        from . import lookups  # noqa: F401 (registers field__among)
        from .roles import ensure_roles

        # after every migrate (all apps' permissions exist by then): the role groups hold their permissions
        post_migrate.connect(ensure_roles, dispatch_uid="ald_portal.ensure_roles")
