from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "spinereview.studies"
    label = "studies"
