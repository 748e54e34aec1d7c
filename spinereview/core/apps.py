from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "spinereview.core"
    label = "core"

    def ready(self) -> None:
        from spinereview.core import checks, log_redaction

        checks.register_all()
        log_redaction.install()  # every log record of this process, whatever logger or handler
