from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "spinereview.core"
    label = "core"
