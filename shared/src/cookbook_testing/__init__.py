"""Test kit shared by every recipe: contract suite, real-server harness, real databases."""
