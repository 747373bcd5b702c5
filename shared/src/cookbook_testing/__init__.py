"""Test kit shared by every recipe: contract suite, real-server harness, real databases."""

import sys

# The suites here are installed as a package, not collected from a test folder,
# so pytest would not rewrite their asserts: a failure would say only
# "AssertionError". Register them before they are imported, when pytest runs
# (cookbook_testing.services runs without it).
if "pytest" in sys.modules:
    import pytest

    pytest.register_assert_rewrite(
        "cookbook_testing.contract", "cookbook_testing.django_checks", "cookbook_testing.standalone"
    )
