"""Querysets compiled once per process: Django's own SQL for them, kept and run again.

Django turns a queryset into SQL every time it runs it. For most queries that costs a
fraction of a millisecond; for the portal home's overview it was about 2 ms, on every
page, for SQL that is the same every time but for one number (decision 0036,
docs/performance.md).

``Prepared(build)`` takes a function from one integer (an organization's id, say) to a
queryset. The first run compiles ``build(MARK, *shape)`` with Django's compiler, where
``MARK`` is an integer no row has, and notes where ``MARK`` stands among the SQL's
parameters. Every run after that sends the same SQL through ``Model.objects.raw`` with the
real value in those places. Rows are instances of the queryset's model, with its
annotations as attributes, as the queryset would give them.

Only for querysets that:

- use the value as a parameter, never in the SQL text (true of a filter on an integer
  column): checked when compiling, and the value must be an ``int``;
- select the model's own columns and annotations, without ``select_related`` (``raw``
  fills one model): checked when compiling;
- are built from constants and ``shape`` only (no clock, no setting read at run time).

``queryset(value, *shape)`` gives the same query as a queryset, so a test can hold the
prepared SQL to Django's compilation of it for a real value (tests/core/test_prepared.py).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)

# An id no row has (ids count up from 1), distinctive enough never to be another parameter.
MARK = -7_340_032_016_093


@dataclass(frozen=True)
class Compiled:
    """A queryset's SQL, its parameters, and where the value goes among them."""

    model: type[models.Model]
    sql: str
    params: tuple[Any, ...]
    places: tuple[int, ...]

    def with_value(self, value: int) -> list[Any]:
        params = list(self.params)
        for place in self.places:
            params[place] = value
        return params


class Prepared(Generic[M]):
    """One queryset shape, compiled once per database alias and shape."""

    def __init__(self, build: Callable[..., QuerySet[M]]) -> None:
        self.build = build
        self._compiled: dict[tuple[str, tuple[Hashable, ...]], Compiled] = {}

    def queryset(self, value: int, *shape: Hashable) -> QuerySet[M]:
        """The query as Django would run it, compiled afresh."""
        return self.build(value, *shape)

    def compiled(self, *shape: Hashable, using: str = "default") -> Compiled:
        key = (using, shape)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(shape, using)
        return found

    def _compile(self, shape: tuple[Hashable, ...], using: str) -> Compiled:
        queryset = self.build(MARK, *shape)
        query = queryset.query
        if query.select_related:
            raise ValueError("a prepared query fills one model: no select_related")
        sql, params = query.get_compiler(using=using).as_sql()
        places = tuple(i for i, param in enumerate(params) if param == MARK)
        if not places or str(MARK) in sql:
            raise ValueError("the value must be a parameter of the SQL, never part of its text")
        return Compiled(model=queryset.model, sql=sql, params=tuple(params), places=places)

    def rows(self, value: int, *shape: Hashable, using: str = "default") -> list[M]:
        """Run the query for ``value``: the rows, as the queryset would give them."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"a prepared query takes an integer, not {type(value).__name__}")
        compiled = self.compiled(*shape, using=using)
        manager = compiled.model._default_manager.db_manager(using)
        return list(manager.raw(compiled.sql, compiled.with_value(value)))  # type: ignore[arg-type]
