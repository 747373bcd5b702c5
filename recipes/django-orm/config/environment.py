"""Reading settings from the environment, strictly: a malformed value is an error, never a silent default."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def env_str(name: str, default: str = "") -> str:
    """The variable's value, stripped; ``default`` if it is unset or empty."""
    return os.environ.get(name, "").strip() or default


def env_flag(name: str, default: bool) -> bool:
    value = env_str(name).lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    msg = f"{name} must be 1 or 0 (or true/false, yes/no, on/off), not {value!r}"
    raise ImproperlyConfigured(msg)


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        msg = f"{name} must be a whole number, not {value!r}"
        raise ImproperlyConfigured(msg) from None
    if number < 0:
        msg = f"{name} must not be negative, not {number}"
        raise ImproperlyConfigured(msg)
    return number
