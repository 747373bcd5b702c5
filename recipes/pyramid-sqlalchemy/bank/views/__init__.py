"""The HTTP contract as Pyramid views (found by ``config.scan``), and errors as JSON."""
