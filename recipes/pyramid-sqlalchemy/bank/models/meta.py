"""The declarative base every ORM model of this app derives from."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Predictable constraint names, so that migrations (Alembic) can refer to them
# later; the same convention as the Pylons starter project.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
