from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "UMS (devices and license deployment)"

    def ready(self):
        from . import signals  # noqa: F401  (registration trigger for ALD)
