from django.apps import AppConfig


class ImagingConfig(AppConfig):
    name = "spinereview.imaging"
    label = "imaging"
