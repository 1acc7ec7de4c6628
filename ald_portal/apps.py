from django.apps import AppConfig


class AldPortalConfig(AppConfig):
    name = "ald_portal"
    verbose_name = "ALD Portal"
