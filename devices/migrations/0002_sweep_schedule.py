from django.db import migrations


def create_sweep_schedule(apps, schema_editor):
    from devices.schedules import ensure_sweep_schedule

    ensure_sweep_schedule(5, schedule_model=apps.get_model("django_q", "Schedule"))


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0001_initial"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [migrations.RunPython(create_sweep_schedule, migrations.RunPython.noop)]
