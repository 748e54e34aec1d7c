from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "spinereview.ai"
    label = "ai"
