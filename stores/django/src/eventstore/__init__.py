"""An event store for ``eventsourcing`` on Django's ORM: models, recorders, and the factory."""
