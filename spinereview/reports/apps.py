from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "spinereview.reports"
    label = "reports"
