from typing import Any

from django.apps import AppConfig
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

from bankaccounts.config import DatabaseConfig


class BankConfig(AppConfig):
    name = "bank"
    verbose_name = "Bank accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Behind PgBouncer (PGBOUNCER_POOL_MODE), the session limits a connection
        # cannot carry as startup options: set, or checked to be the role's, on each
        # new connection (bankaccounts/session_limits.py).
        setup = DatabaseConfig.from_env().new_connection_setup()
        if setup is not None:

            def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
                try:
                    setup(connection.connection)
                except BaseException:
                    # Django keeps a connection whose set-up raised, and the next
                    # query would use it unchecked: closed, the next one connects anew.
                    connection.close()
                    raise

            connection_created.connect(on_connection_created, weak=False)
