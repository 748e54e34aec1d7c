from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "spinereview.accounts"
    label = "accounts"
