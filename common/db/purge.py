"""Hard-delete soft-deleted rows (`lamina-manage db purge --before DATE`).

A row is purged when it is soft-deleted (deleted true) with deleted_at before the date.
Tables go children first (the reverse of their foreign-key order), in one transaction:
rows of a table without soft delete (metadata, extra specs, ...) go with the purged parent
they point at; a soft-deleted parent that a row still kept points at is kept too, so no
foreign key is ever left dangling."""

from sqlalchemy import and_, delete, exists, not_, or_, select, true

from common.db import models
from common.db.session import writer


def _soft_deletable(table):
    return "deleted" in table.c and "deleted_at" in table.c


def _purgeable(table, before):
    return and_(table.c.deleted == true(), table.c.deleted_at.is_not(None),
                table.c.deleted_at < before)


def purge_deleted(before):
    """Purge soft-deleted rows older than `before` (a naive UTC datetime); returns
    [(table name, rows deleted)] in the order the tables were purged."""
    tables = models.Base.metadata.sorted_tables
    counts = []
    with writer() as s:
        for table in reversed(tables):
            conditions = []
            if _soft_deletable(table):
                conditions.append(_purgeable(table, before))
                # kept: a row of another table still points at it
                for child in tables:
                    for fk in child.foreign_keys:
                        if fk.column.table is table:
                            conditions.append(not_(exists().where(fk.parent == fk.column)))
            else:
                # a row without soft delete goes with the purged parent it points at
                parents = [fk for fk in table.foreign_keys
                           if _soft_deletable(fk.column.table)]
                if not parents:
                    continue
                for fk in parents:
                    parent = fk.column.table
                    conditions.append(fk.parent.in_(select(fk.column).where(
                        _purgeable(parent, before))))
            if not conditions:
                continue
            if _soft_deletable(table):
                stmt = delete(table).where(and_(*conditions))
            else:
                # any one purged parent takes it
                stmt = delete(table).where(or_(*conditions))
            result = s.execute(stmt)
            counts.append((table.name, result.rowcount))
    return counts
