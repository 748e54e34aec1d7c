"""Store every existing protocol in the normalised form the viewer and services now read."""

from django.db import migrations


def normalise(apps, schema_editor):
    from spinereview.studies.protocols import protocol_validate

    for study in apps.get_model("studies", "ReaderStudy").objects.all():
        study.protocol = protocol_validate(study.protocol)
        study.save(update_fields=["protocol"])


class Migration(migrations.Migration):
    dependencies = [("studies", "0002_reading_protocols_phases_masks_adjudication_audit")]
    operations = [migrations.RunPython(normalise, migrations.RunPython.noop)]
