"""Bulk inserts for the hot paths (ALD writes a claim, a slot, a license and an event per device).

Django's ``bulk_create`` builds a model instance and prepares every value of every row through the
field machinery: about 50 microseconds a row, ten times what the database needs. ``insert_rows``
takes plain tuples in the order of ``fields``, converts only the values that need it (dates and
times, once per distinct value) and sends them in one go: COPY on PostgreSQL (where conflicts are to
be skipped, one INSERT ... SELECT FROM unnest(arrays)) and ``executemany`` on SQLite. It fills no
primary keys and sends no signals, like ``bulk_create``; callers that need the rows back query them."""

from django.db import connection, models, transaction


def _prepared_column(field, conn, values):
    """The column's values as the database takes them: dates, times and JSON go through the field
    (once per distinct value: a batch's rows mostly share their timestamps); the rest as they are."""
    if not isinstance(field, (models.DateTimeField, models.DateField, models.TimeField, models.JSONField)):
        return values
    try:
        prepared = {v: None if v is None else field.get_db_prep_save(v, conn) for v in set(values)}
    except TypeError:  # unhashable values (JSON dicts and lists): one by one
        return [None if v is None else field.get_db_prep_save(v, conn) for v in values]
    return list(map(prepared.__getitem__, values))


def insert_rows(model, fields: list[str], rows, conn=None, ignore_conflicts=False) -> int:
    """INSERT ``rows`` (tuples of values for ``fields``, attribute names such as ``device_id``) into
    ``model``'s table; every other column gets its field's default, the same for all rows. With
    ``ignore_conflicts`` a row that breaks a unique constraint is skipped (ON CONFLICT DO NOTHING).
    Returns the number of rows sent. All rows or none: outside a transaction the insert is one (an
    ``executemany`` in autocommit would commit, and be slowed down, row by row)."""
    conn = conn or connection
    rows = list(rows)
    if not rows:
        return 0
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    concrete = [by_attname[name] for name in fields]
    rest = [f for f in meta.concrete_fields if not f.primary_key and f.attname not in fields]
    given = list(zip(*rows, strict=True))  # column by column: the conversions stay in C loops
    if len(given) != len(concrete):
        raise ValueError(f"{model.__name__}: rows of {len(given)} values for {len(concrete)} fields")
    concrete += rest
    columns_out = [
        _prepared_column(f, conn, col)
        for f, col in zip(concrete, given + [[f.get_default()] * len(rows) for f in rest], strict=True)
    ]
    rows = list(zip(*columns_out, strict=True))
    fields = concrete
    qn = conn.ops.quote_name
    columns = ", ".join(qn(f.column) for f in concrete)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    head = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES "
    with transaction.atomic(using=conn.alias, savepoint=False), conn.cursor() as cursor:
        if conn.vendor == "postgresql" and not ignore_conflicts:
            # COPY: no SQL to parse per row, no parameter limit, the fastest way in
            # (on the driver's cursor, so errors are wrapped into Django's IntegrityError by hand)
            with conn.wrap_database_errors:
                with cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        elif conn.vendor == "postgresql":
            # One statement: the columns as arrays, unnested into rows (executemany would send a
            # statement per row).
            arrays = ", ".join(f"%s::{f.db_type(conn)}[]" for f in fields)
            cursor.execute(
                f"INSERT INTO {qn(meta.db_table)} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING",
                [list(col) for col in columns_out],
            )
        else:
            tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
            cursor.executemany(head + one + tail, rows)
    return len(rows)


def refresh_statistics(*models, conn=None) -> None:
    """ANALYZE the tables of ``models`` on PostgreSQL after a bulk write. Its planner estimates rows
    from statistics that autovacuum refreshes only later; right after tens of thousands of rows
    arrive in a table it still believes empty it picks nested loops that cost seconds per query. A
    no-op on SQLite, whose planner does not depend on them the same way."""
    conn = conn or connection
    if conn.vendor != "postgresql" or not models:
        return
    qn = conn.ops.quote_name
    with conn.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(qn(m._meta.db_table) for m in models))


class ReusableQuery:
    """A queryset compiled to SQL once and run again and again with one parameter changed.

    Building and compiling a queryset with subqueries costs milliseconds of Python, more than the
    database needs to run it; a loop that runs the same query per batch (only a claim token
    differs) pays it once here. ``marker`` is a value the queryset filters on exactly once; ``rows
    (value)`` runs the query with ``value`` in its place and returns the rows as ``values_list``
    would (with the fields' converters). Compiled for the connection of the thread that builds
    it: use it in that thread only, for as long as the data it was built from holds (one cycle)."""

    def __init__(self, queryset, marker):
        self.compiler = queryset.query.get_compiler(using=queryset.db)
        self.sql, params = self.compiler.as_sql()
        slots = [i for i, p in enumerate(params) if p == marker]
        if len(slots) != 1:
            raise ValueError(f"the marker must be a parameter exactly once, found {len(slots)} times")
        self.params, self.slot = list(params), slots[0]
        fields = [s[0] for s in self.compiler.select[: self.compiler.col_count]]
        self.converters = self.compiler.get_converters(fields)

    def rows(self, value) -> list[tuple]:
        params = self.params.copy()
        params[self.slot] = value
        with self.compiler.connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = [tuple(r) for r in self.compiler.apply_converters(rows, self.converters)]
        return rows
