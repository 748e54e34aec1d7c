"""The "ML engineers" group: may register and activate model versions and see every inference job."""

from typing import Any

from django.db import migrations

GROUP = "ML engineers"


def forwards(apps: Any, schema_editor: Any) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="ai", model="modelversion")
    permission, _ = Permission.objects.get_or_create(
        codename="manage_models", content_type=content_type, defaults={"name": "Register and activate AI model versions and see every inference job"}
    )
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)


def backwards(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ai", "0003_serving"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
