#!/usr/bin/env python
"""The baseline's manage.py: ``python manage.py create_ledger`` before serving, as the recipe's create_event_store."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ledger_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
