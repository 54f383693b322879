"""Write a few fields of many saved rows in one statement, cheaply (decision 0036).

Django's ``bulk_update`` says the same with a ``CASE WHEN pk = … THEN …`` per row and per
field, and building those expressions cost the mail worker 15% of its time (profiled: one
batch of 20 sign-in emails, four fields). ``update_each`` writes one
``UPDATE … SET … FROM (VALUES (…), …)`` instead: the values are parameters, each cast to
its column's type, and the table's rows are matched by primary key. PostgreSQL and SQLite
(3.33 and later) both run it, and both name a ``VALUES`` list's columns ``column1``,
``column2``, … Like ``bulk_update``, it calls no ``save()``, sends no signals and sets no
``auto_now`` fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models, router


def update_each(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of each of ``objs`` (rows of one model) to its row; return how many."""
    if not objs:
        return 0
    model = type(objs[0])
    if any(type(obj) is not model or obj.pk is None for obj in objs):
        raise ValueError("update_each takes saved rows of one model")
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    assert pk is not None
    columns = [model._meta.get_field(name) for name in fields]
    if not all(isinstance(field, models.Field) and field.concrete for field in columns):
        raise ValueError("update_each writes columns of the model's own table")
    cells: list[models.Field[Any, Any]] = [pk, *columns]  # type: ignore[list-item]
    # The type a CAST names (Field.cast_db_type, not in the type stubs): "bigint", "text" …
    row = "(" + ", ".join(f"CAST(%s AS {cell.cast_db_type(connection)})"  # type: ignore[attr-defined]
                          for cell in cells) + ")"
    assignments = ", ".join(f"{quote(str(field.column))} = v.column{place}"
                            for place, field in enumerate(cells[1:], start=2))
    values = ", ".join([row] * len(objs))
    # Names are quoted by the backend, every value is a parameter.
    sql = (f"UPDATE {table} SET {assignments} FROM (VALUES {values}) "  # noqa: S608
           f"AS v WHERE {table}.{quote(pk.column)} = v.column1")
    params = [cell.get_db_prep_save(getattr(obj, cell.attname), connection)
              for obj in objs for cell in cells]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
