"""The Django project: settings from the environment, and the root URLconf."""
