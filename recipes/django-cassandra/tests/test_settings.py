"""Production settings from the environment: ``manage.py check --deploy``, clear refusals, the schema command."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from cookbook_testing.django_checks import DjangoSettingsChecks


class TestSettings(DjangoSettingsChecks):
    """The test kit's Django checks (no store variable needed), and the Cassandra settings' refusals."""

    store_variables = ("CASSANDRA_",)

    malformed_store_settings = [
        ({"CASSANDRA_HOSTS": "a:9042,b:9043"}, "every host must use the same CQL port"),
        ({"CASSANDRA_HOSTS": " , "}, "names no host"),
        ({"CASSANDRA_KEYSPACE": "bank-accounts"}, "CASSANDRA_KEYSPACE must be letters, digits and underscores"),
        ({"CASSANDRA_USERNAME": "bank"}, "CASSANDRA_USERNAME is set but CASSANDRA_PASSWORD is not"),
    ]

    def test_create_event_store_makes_the_keyspace_and_tables_and_can_run_again(
        self,
        recipe_dir: Path,
        cassandra_hosts_setting: str,
        new_keyspace: Callable[[], str],
        count_cassandra_events: Callable[[Mapping[str, str]], int],
    ) -> None:
        keyspace = new_keyspace()
        env = {
            "DJANGO_SECRET_KEY": os.environ["DJANGO_SECRET_KEY"],
            "CASSANDRA_HOSTS": cassandra_hosts_setting,
            "CASSANDRA_KEYSPACE": keyspace,
        }
        for _ in range(2):  # idempotent: safe on every deploy
            result = self.manage(recipe_dir, "create_event_store", **env)
            assert result.returncode == 0, result.stderr
            assert f"Event store ready in keyspace {keyspace}" in result.stdout
        assert count_cassandra_events(env) == 0  # the events table exists, empty
