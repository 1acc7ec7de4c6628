"""``field__among=Values(ids)``: membership in a long list of plain values, sent as one parameter.

``field__in=[...]`` walks the list several times before any SQL is written (resolving each element
as a possible expression, type-checking it against a relation, preparing it through the field: a
few microseconds an element) and sends one SQL parameter per element; for the hot paths that test
a batch of thousands of device IDs or unit IDs that costs more than the query. ``among`` takes the
integers or strings as they are, wrapped in ``Values`` so that the query builder passes them on
untouched, and sends the whole list as one value: a JSON array read with ``json_each`` on SQLite
(the JSON1 functions Django's JSONField needs anyway), an array compared with ``= ANY`` on
PostgreSQL. It matches exactly the rows ``__in`` would; no values match no row."""

import json

from django.db.models import Field, ForeignObject, Lookup


class Values:
    """The right-hand side of ``__among``: integers or strings (not iterable itself, which is what
    keeps Django from walking it)."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items if isinstance(items, list) else list(items)
        for value in self.items:
            if type(value) not in (int, str):
                raise TypeError(f"__among takes integers or strings, not {value!r}")

    def __repr__(self):
        return f"Values({len(self.items)} items)"


class Among(Lookup):
    lookup_name = "among"
    prepare_rhs = False

    def get_prep_lookup(self):
        if not isinstance(self.rhs, Values):
            raise TypeError(f"__among takes Values([...]), not {type(self.rhs).__name__}")
        return self.rhs.items

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, self.rhs]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, json.dumps(self.rhs)]


Field.register_lookup(Among)
ForeignObject.register_lookup(Among)  # related fields keep lookups of their own
