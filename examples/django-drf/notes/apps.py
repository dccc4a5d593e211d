import os

from django.apps import AppConfig


def _record_opener(sender, connection, **kwargs):
    # Remember which process opened each database connection, so /api/whoami
    # can tell a connection opened by this process from one inherited
    # across fork().
    connection.opened_by_pid = os.getpid()


class NotesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notes"

    def ready(self):
        from django.db.backends.signals import connection_created

        connection_created.connect(_record_opener, dispatch_uid="notes.record_opener")
