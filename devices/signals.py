from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Device


@receiver(post_save, sender=Device, dispatch_uid="ald_on_device_registration")
def license_new_device(sender, instance, created, raw=False, **kwargs):
    """A device registered without a license is handled within seconds (docs/DESIGN.md section 4)."""
    if created and not raw:
        from .tasks import enqueue_license_devices

        enqueue_license_devices([instance.pk])
