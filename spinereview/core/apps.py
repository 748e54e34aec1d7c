from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "spinereview.core"
    label = "core"

    def ready(self) -> None:
        from spinereview.core import checks  # noqa: F401 - registers the system checks
