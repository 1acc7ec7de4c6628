from django.db import migrations


def create_reconcile_schedule(apps, schema_editor):
    from devices.schedules import ensure_reconcile_schedule

    ensure_reconcile_schedule(schedule_model=apps.get_model("django_q", "Schedule"))


class Migration(migrations.Migration):
    dependencies = [("devices", "0008_reconciliation_and_actions")]

    operations = [migrations.RunPython(create_reconcile_schedule, migrations.RunPython.noop)]
