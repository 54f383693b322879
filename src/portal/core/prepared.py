"""Querysets compiled once per process: Django's own SQL for them, kept and run again.

Django turns a queryset into SQL every time it runs it. For most queries that costs a
fraction of a millisecond; for the few that every page or every sign-in runs it was the
largest single cost of the request (the portal home's overview took about 2 ms to compile,
the signed-in person with their organization about 1 ms; docs/performance.md, decision
0036), for SQL that is the same every time but for one value.

``Prepared(build)`` takes a function from one value (an id, a token's hash) to a queryset.
The first run compiles ``build(mark, *shape)`` with Django's compiler, where the mark is a
value no row has, and notes where the mark stands among the SQL's parameters. Every run
after that sends the same SQL with the real value in those places, and turns the rows into
objects the way Django's ``ModelIterable`` does, from the compiler's own description of
the columns: the model, ``select_related`` objects, annotations.

Only for querysets that:

- use the value as a parameter, never in the SQL text or transformed (a filter on a
  column, ``exact``): checked when compiling;
- are built from constants and ``shape`` only (no clock, no setting read at run time);
- need nothing of a queryset but its rows (no ``prefetch_related``, no ``values()``).

``queryset(value, *shape)`` gives the same query as a queryset, so a test holds every
prepared query's SQL and rows to Django's for a real value (tests/core/test_prepared.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models
from django.db.models import QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.models.sql.compiler import SQLCompiler

M = TypeVar("M", bound=models.Model)

# Values no row has (ids count up from 1; hashes are hex), distinctive enough never to be
# another parameter of the same query.
MARKS: dict[type, Any] = {int: -7_340_032_016_093, str: "portal.core.prepared: no such value"}


@dataclass(frozen=True)
class Compiled:
    """A queryset's SQL, its parameters, where the value goes, and the compiler's columns."""

    compiler: SQLCompiler
    sql: str
    params: tuple[Any, ...]
    places: tuple[int, ...]

    def with_value(self, value: Any) -> list[Any]:
        params = list(self.params)
        for place in self.places:
            params[place] = value
        return params


class Prepared(Generic[M]):
    """One queryset shape, compiled once per database alias, value type and shape."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, type, tuple[Hashable, ...]], Compiled] = {}

    def queryset(self, value: Any, *shape: Hashable) -> QuerySet[M]:
        """The query as Django would run it, compiled afresh."""
        return self.build(value, *shape)

    def compiled(self, kind: type, *shape: Hashable, using: str = "default") -> Compiled:
        key = (using, kind, shape)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(kind, shape, using)
        return found

    def _compile(self, kind: type, shape: tuple[Hashable, ...], using: str) -> Compiled:
        mark = MARKS[kind]
        queryset = self.build(mark, *shape)
        state = vars(queryset)  # a queryset's own settings, not in the type stubs
        if state["_prefetch_related_lookups"] or state["_fields"] is not None:
            raise ValueError("a prepared query gives model rows: no prefetch_related or values()")
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        places = tuple(i for i, param in enumerate(params) if param == mark)
        if not places or str(mark) in sql:
            raise ValueError("the value must be a parameter of the SQL, never part of its text")
        return Compiled(compiler=compiler, sql=sql, params=tuple(params), places=places)

    def rows(self, value: Any, *shape: Hashable, using: str = "default") -> list[M]:
        """Run the query for ``value``: the rows, as the queryset would give them."""
        kind = type(value)
        if kind not in MARKS:
            raise TypeError(f"a prepared query takes an int or a str, not {kind.__name__}")
        compiled = self.compiled(kind, *shape, using=using)
        with connections[using].cursor() as cursor:
            cursor.execute(compiled.sql, compiled.with_value(value))
            fetched = cursor.fetchall()
        return list(_objects(compiled.compiler, fetched, using))

    def first(self, value: Any, *shape: Hashable, using: str = "default") -> M | None:
        found = self.rows(value, *shape, using=using)
        return found[0] if found else None


def _objects(compiler: SQLCompiler, fetched: list[Any], db: str) -> Iterator[Any]:
    """Model objects from rows, as Django's ``ModelIterable`` makes them."""
    select, klass_info = compiler.select, compiler.klass_info
    assert klass_info is not None
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    names = [column[0].target.attname for column in select[start:end]]
    populators = get_related_populators(klass_info, select, db)
    for row in compiler.results_iter([fetched]):
        obj = model.from_db(db, names, row[start:end])
        for populator in populators:
            populator.populate(row, obj)
        for name, place in compiler.annotation_col_map.items():
            setattr(obj, name, row[place])
        yield obj
