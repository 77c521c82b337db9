"""Database connection upkeep for long-running processes (executor, bridge) and for threads that end
(`threads_end`), the hot paths' SQL built once (`the_row`, `the_row_with`, `rows_insert`) where the ORM
would compile it again for every call, and timestamps read by psycopg's C loader (`fast_timestamps`)."""

import datetime
import functools
import threading
import time
import typing
import uuid
from concurrent import futures

import psycopg
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    models,
)

_last = threading.local()


def connections_refresh(every: float = 1.0) -> None:
    """Django's per-request connection upkeep (drop broken or too old connections), at most once a
    second per thread: each call costs a health-check round trip on the next query."""
    now = time.monotonic()
    if now - getattr(_last, "at", 0.0) >= every:
        _last.at = now
        close_old_connections()


def transient(exc: DatabaseError) -> bool:
    """A passing trouble worth trying again (connection lost, serialization failure, deadlock), as
    opposed to what the database will refuse every time (a value it cannot store, a broken rule)."""
    return isinstance(exc, OperationalError | InterfaceError)


def storable(value):
    """`value` with NUL characters written out as the text `\\u0000`: PostgreSQL refuses NUL in text
    and in JSON, and an agent's output or error must be kept, not lost, when it contains one."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def the_one(queryset):
    """The row of a lookup that finds at most one (a primary or unique key), or None: `.first()` would
    order by the model's ordering, which the ORM spends more time compiling than the query takes."""
    return next(iter(queryset.order_by()[:1]), None)


@functools.cache
def _select(model, where: str, omit: tuple[str, ...], tail: str, extra: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields if f.attname not in omit)
    table = quote(model._meta.db_table)
    return f"SELECT {columns}{extra} FROM {table} WHERE {where} {tail}"  # noqa: S608 - names from the model


def the_row(model, where: str, params: list, *, omit: tuple[str, ...] = (), tail: str = "LIMIT 1", extra: str = ""):
    """The first row of `model` WHERE `where` (hand-written, with %s placeholders) or None; `omit`:
    fields left deferred; `tail`: ORDER BY, LIMIT, FOR UPDATE; `extra`: more columns (", <sql> AS
    name", their placeholders first in `params`), set as attributes. For the engine's hot reads: the
    ORM compiles each query again every time (0.5-2.5 ms of CPU), this SQL is built once, and the row
    is made into an instance without `raw()`'s column matching (a tenth of the executor's CPU)."""
    db = connections[DEFAULT_DB_ALIAS]  # the proxy `connection` costs a context-local lookup per use
    with db.cursor() as cursor:
        cursor.execute(_select(model, where, omit, tail, extra), db_params(params))
        row = cursor.fetchone()
        if row is None:
            return None
        shape = _shape(model, omit)
        obj = _instance(model, shape, row[: len(shape.names)], db)
        for column, value in zip(cursor.description[len(shape.names) :], row[len(shape.names) :], strict=True):
            setattr(obj, column[0], value)  # psycopg Column or a DB-API tuple: the name first
        return obj


def rows_of(model, where: str, params: list, *, omit: tuple[str, ...] = (), tail: str = "") -> list:
    """Every row of `model` WHERE `where`, as `the_row` reads one."""
    db = connections[DEFAULT_DB_ALIAS]
    shape = _shape(model, omit)
    with db.cursor() as cursor:
        cursor.execute(_select(model, where, omit, tail, ""), db_params(params))
        return [_instance(model, shape, row, db) for row in cursor.fetchall()]


def the_rows(*lookups: tuple) -> list:
    """`the_row(model, where, params, omit=..., tail=...)` of each lookup, a tuple of those five, in one
    round trip on PostgreSQL: the SELECTs go as one query string (Django's default client-side binding;
    with server-side binding, in pipeline mode) and run one after the other, each with a snapshot of its
    own, so a SELECT after a row lock sees what the lock waited for, as it would in a query of its own.
    Elsewhere each is its own query."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return [the_row(model, where, params, omit=omit, tail=tail) for model, where, params, omit, tail in lookups]
    if server_side_binding(db):
        rows = []
        statements = [(_select(model, where, omit, tail, ""), params) for model, where, params, omit, tail in lookups]
        for cursor in _pipelined(db, statements):
            with cursor:
                rows.append(cursor.fetchone())
    else:
        with db.cursor() as cursor:
            cursor.execute(
                ";\n".join(_select(model, where, omit, tail, "") for model, where, _, omit, tail in lookups),
                [value for _, _, params, _, _ in lookups for value in params],
            )
            rows = []
            for index in range(len(lookups)):
                if index:
                    cursor.nextset()
                rows.append(cursor.fetchone())
    return [
        None if row is None else _instance(model, _shape(model, omit), row, db)
        for (model, _, _, omit, _), row in zip(lookups, rows, strict=True)
    ]


class _Shape(typing.NamedTuple):
    """The columns a hand-written SELECT reads of a model: their attribute names, and the fields'
    converters of this database (what `from_db_value` and the backend do to a value read)."""

    names: list
    converters: list  # (index, column, converter)


def _shape_of(cols: list) -> _Shape:
    db = connections[DEFAULT_DB_ALIAS]  # one database per process: its converters are those of every row
    converters = [
        (i, col, convert)
        for i, col in enumerate(cols)
        for convert in db.ops.get_db_converters(col) + col.get_db_converters(db)
    ]
    return _Shape([col.target.attname for col in cols], converters)


@functools.cache
def _shape(model, omit: tuple[str, ...]) -> _Shape:
    return _shape_of([f.get_col(model._meta.db_table) for f in model._meta.concrete_fields if f.attname not in omit])


def db_params(params: list) -> list:
    """Parameters of hand-written SQL as this database stores them: elsewhere than PostgreSQL Django
    keeps a UUID as its 32 hex digits and a datetime as naive UTC text."""
    if connection.vendor == "postgresql":
        return params
    return [_stored(value) for value in params]


def _stored(value):
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def placeholders(values) -> str:
    """ "%s, %s, ..." for an IN list of `values`, in a WHERE of `the_row`."""
    return ", ".join(["%s"] * len(values))


def for_update() -> str:
    """The row-lock clause of this database (SQLite has none: it locks the whole database on write)."""
    return "FOR UPDATE" if connection.features.has_select_for_update else ""


INSERT_CHUNK = 1000  # rows per INSERT: far below PostgreSQL's 65,535 parameters for the engine's tables


@functools.cache
def _insert(model, rows: int) -> tuple[list, str]:
    quote = connection.ops.quote_name
    auto = isinstance(model._meta.pk, models.AutoField | models.BigAutoField)
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and auto)]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(f.column) for f in fields)
    values = ", ".join([row] * rows)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    return fields, f"INSERT INTO {table} ({columns}) VALUES {values} RETURNING {pk}"  # noqa: S608 - names from the model


def rows_insert(objs: list) -> list:
    """`bulk_create(objs)` for the hot paths (runs, run logs, events, outbox rows, audit events: models
    without signals or history), with the SQL built once per model and row count: the ORM spent about
    0.5 ms of CPU compiling each such insert (measured in-process). Elsewhere than PostgreSQL it is
    bulk_create. As with bulk_create, no signal is sent and `save()` is not called."""
    rows_insert_together(objs)
    return objs


def rows_insert_together(*groups: list) -> None:
    """`rows_insert` of each list of rows (one model per list), all in one round trip on PostgreSQL:
    with server-side binding (the default, `DATABASE_SERVER_SIDE_BINDING`) each INSERT is its own
    prepared statement and they go in pipeline mode; with client-side binding they go as one query
    string. Their RETURNING results are read one after the other. The executor's unit of work ends with
    three such inserts (run logs, events, outbox rows): each round trip cost about 0.3 ms of its 6.6 ms
    per result (in-process)."""
    groups = [objs for objs in groups if objs]
    if not groups:
        return
    if connection.vendor != "postgresql":
        for objs in groups:
            type(objs[0])._default_manager.bulk_create(objs)
        return
    chunks = [objs[start : start + INSERT_CHUNK] for objs in groups for start in range(0, len(objs), INSERT_CHUNK)]
    statements = []
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy: it costs a context-local lookup per value
    for chunk in chunks:
        fields, sql = _insert(type(chunk[0]), len(chunk))
        statements.append((sql, [f.get_db_prep_save(f.pre_save(obj, True), db) for obj in chunk for f in fields]))
    if len(statements) > 1 and server_side_binding(db):
        for chunk, cursor in zip(chunks, _pipelined(db, statements), strict=True):
            with cursor:
                _keys_set(chunk, cursor.fetchall())
        return
    with db.cursor() as cursor:
        cursor.execute(
            ";\n".join(sql for sql, _ in statements), [value for _, params in statements for value in params]
        )
        for index, chunk in enumerate(chunks):
            if index:
                cursor.nextset()
            _keys_set(chunk, cursor.fetchall())


@functools.cache
def _update(model, fields: tuple[str, ...]) -> tuple[list, str]:
    quote = connection.ops.quote_name
    updated = [model._meta.get_field(name) for name in fields]
    sets = ", ".join(f"{quote(f.column)} = %s" for f in updated)
    table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
    return updated, f"UPDATE {table} SET {sets} WHERE {pk} = %s"  # noqa: S608 - names from the model


def row_update(obj, fields: list[str]) -> None:
    """`obj.save(update_fields=fields)` for the hot paths (a step's result): the SQL built once per model
    and field list, where the ORM compiled the UPDATE again every time (0.5 ms of CPU). As with
    save(), DatabaseError when no row was updated; unlike it, no signal is sent."""
    model = type(obj)
    updated, sql = _update(model, tuple(fields))
    db = connections[DEFAULT_DB_ALIAS]
    params = [f.get_db_prep_save(f.pre_save(obj, False), db) for f in updated]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, db))
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")


def row_save(obj) -> None:
    """`obj.save()` of a row read before, by `row_update` of every field it holds (a deferred field
    stays as it is in the row, as with save()). A new row is saved by save()."""
    if obj._state.adding:
        obj.save()
        return
    deferred = obj.get_deferred_fields()
    row_update(obj, _loaded(type(obj), frozenset(deferred)))


@functools.cache
def _loaded(model, deferred: frozenset) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if not f.primary_key and f.attname not in deferred]


def server_side_binding(db) -> bool:
    """Whether the connection sends parameters apart from the SQL (`DATABASE_SERVER_SIDE_BINDING`): a
    query string then holds one statement only."""
    if db.vendor != "postgresql":
        return False
    db.ensure_connection()
    return not issubclass(db.connection.cursor_factory, psycopg.ClientCursor)


def _pipelined(db, statements: list[tuple[str, list]]) -> list:
    """Each (sql, params) its own (prepared) statement, all sent in psycopg's pipeline mode: one round
    trip. Returns a cursor per statement, holding its result, for the caller to read and close."""
    cursors = []
    with db.wrap_database_errors, db.connection.pipeline():
        for sql, params in statements:
            cursor = db.cursor()
            cursor.execute(sql, params)
            cursors.append(cursor)
    return cursors


def _keys_set(chunk: list, keys: list) -> None:
    for obj, (pk,) in zip(chunk, keys, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, DEFAULT_DB_ALIAS


@functools.cache
def _joined(model, relation: str, where: str) -> tuple[str, _Shape, _Shape]:
    quote = connection.ops.quote_name
    related = model._meta.get_field(relation)
    other = related.related_model
    own = [f.get_col("a") for f in model._meta.concrete_fields]
    theirs = [f.get_col("b") for f in other._meta.concrete_fields]
    columns = ", ".join(f"{quote(col.alias)}.{quote(col.target.column)}" for col in own + theirs)
    own, theirs = _shape_of(own), _shape_of(theirs)
    sql = (
        f"SELECT {columns} FROM {quote(model._meta.db_table)} {quote('a')} "  # noqa: S608 - names from the models
        f"JOIN {quote(other._meta.db_table)} {quote('b')} "
        f"ON {quote('b')}.{quote(related.target_field.column)} = {quote('a')}.{quote(related.column)} WHERE {where}"
    )
    return sql, own, theirs


def _instance(model, shape: _Shape, values, db):
    """The model instance of a row, as the ORM makes it (`from_db`), its values through the converters."""
    if shape.converters:
        values = list(values)
        for i, col, convert in shape.converters:
            values[i] = convert(values[i], col, db)
    return model.from_db(db.alias, shape.names, values)


def the_row_with(model, relation: str, where: str, params: list):
    """`model.objects.select_related(relation).filter(...)`'s first row, or None, with the SQL built once
    (`where` reads the model's columns as a."column"). For lookups on every request (the API key and its
    user): the ORM spent 0.50 ms of CPU on it, mostly compiling the join; this 0.18 in all."""
    sql, own, theirs = _joined(model, relation, where)
    with connection.cursor() as cursor:
        cursor.execute(sql, db_params(params))
        row = cursor.fetchone()
    if row is None:
        return None
    db = connections[DEFAULT_DB_ALIAS]
    obj = _instance(model, own, row[: len(own.names)], db)
    setattr(obj, relation, _instance(model._meta.get_field(relation).related_model, theirs, row[len(own.names) :], db))
    return obj


def fast_timestamps(sender, connection, **kwargs) -> None:
    """On a new PostgreSQL connection: timestamps read by psycopg's C loader.

    Django reads every timestamptz through a Python subclass of psycopg's pure-Python loader (so that it
    can set the tzinfo), 4 us a value: 0.25 ms of CPU for a page of 20 runs. Where the session's time
    zone is UTC and Django's is too (USE_TZ, no TIME_ZONE of the database: always here), the C loader
    returns the same values (aware, `datetime.timezone.utc`). Its `timezone` is what Django compares
    before each cursor to decide whether to install its own loader again."""
    if connection.vendor != "postgresql" or connection.timezone != datetime.UTC:
        return
    loader = _c_timestamptz_loader()
    raw = connection.connection
    if loader is not None and raw.info.parameter_status("TimeZone") in ("UTC", "Etc/UTC"):
        raw.adapters.register_loader("timestamptz", loader)


@functools.cache
def _c_timestamptz_loader():
    import psycopg

    if psycopg.pq.__impl__ not in ("c", "binary"):
        return None
    base = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, psycopg.pq.Format.TEXT)
    if base.__module__ == "psycopg.types.datetime":  # the Python one: nothing to gain
        return None

    class UTCTimestamptzLoader(psycopg.adapt.Loader):
        timezone = datetime.UTC  # the C class takes no attribute (nor subclass): it is called from here

        def __init__(self, oid, context=None):
            super().__init__(oid, context)
            self.load = base(oid, context).load  # the C loader's own, called without a frame of ours

        def load(self, data):  # replaced by the instance's (Loader declares it abstract)
            raise NotImplementedError

    return UTCTimestamptzLoader


def threads_end(executor) -> None:
    """Ends a ThreadPoolExecutor whose threads used the database, each thread's connection closed first
    (a thread's connection is its own: the executor's shutdown alone leaves them open until garbage
    collection, and a process that goes on, such as a test run, keeps them). A barrier gives each thread
    exactly one close."""
    if executor._shutdown:  # ended already
        return
    count = len(executor._threads)
    if count:
        barrier = threading.Barrier(count)

        def close():
            try:
                barrier.wait(timeout=10)
            finally:
                connections.close_all()

        futures.wait([executor.submit(close) for _ in range(count)], timeout=30)
    executor.shutdown(wait=False)
