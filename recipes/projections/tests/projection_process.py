"""The recipe's process, ``python run_projection.py``, run for real and watched through its log."""

from __future__ import annotations

from pathlib import Path

from cookbook_testing.processes import ManagedProcess


class ProjectionProcess(ManagedProcess):
    """``python run_projection.py views`` (or ``alerts``)."""

    def __init__(self, recipe_dir: Path, env: dict[str, str], which: str = "views") -> None:
        super().__init__(f"projection-{which}", "python", ["run_projection.py", which], recipe_dir, env)
        self.which = which

    def is_ready(self) -> bool:
        # Logged once its runner is built and subscribed.
        return f"{self.which}: following BankAccounts from position" in self.log()

    def is_standing_by(self) -> bool:
        return f"{self.which}: standing by: another process holds the lock" in self.log()

    def is_following(self) -> bool:
        return self.is_ready()
