from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "spinereview.accounts"
    label = "accounts"

    def ready(self) -> None:
        from spinereview.accounts import throttle  # noqa: F401 - connects the login signal receivers
