"""Searching the activity log: filters on the entry's columns, conditions on its JSON payload,
newest first, a page at a time.

A payload condition is `{op, path, value}`: `path` is a list of keys (letters, digits, `_`,
`-`, `.`, `:`, `@`), never SQL; values are always bound parameters. The ops:

    EQ, NE      a scalar equal (not equal, or absent); null matches a JSON null
    IN          equal to one of a list of scalars
    CONTAINS    an array holding the value, or a string holding it as a substring
    EXISTS      the path is present (value true, the default) or absent (false)
    GT, LT      a number (or a string, compared as text: ISO-8601 times sort) above, below

A value is only ever equal to, or ordered against, one of the same JSON type: "1" is not 1.
On PostgreSQL the payload is JSONB and EQ, IN and CONTAINS on arrays are containment (`@>`)
tests that its GIN index answers; on SQLite they are JSON function calls.

Entries come newest first (by the time shipway recorded them, then id). Pages are cut by a
cursor (the last entry's time and id, opaque to callers): entries recorded while someone
pages are newer, so they never shift a later page.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shipway import durations
from shipway.errors import ValidationError
from shipway.store.tables import AuditEntry

OPS = ("EQ", "NE", "IN", "CONTAINS", "EXISTS", "GT", "LT")
KEY = re.compile(r"[A-Za-z0-9_\-.:@]{1,64}")
MAX_DEPTH = 8
MAX_CONDITIONS = 16
MAX_IN = 100
MAX_VALUE_CHARS = 1024
#: Seconds a search may run before it is stopped, so that none can load the store.
TIMEOUT = 5.0
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Scalar = str | int | float | bool | None


class SearchTimeout(ValidationError):
    """Raised when a search runs past its time: it has to be narrowed."""

    code = "search_timeout"


@dataclass(frozen=True)
class Condition:
    op: str
    path: tuple[str, ...]
    value: Any = None


@dataclass(frozen=True)
class Query:
    organization_id: int
    #: An exact action, or a prefix: "deployment.*".
    action: str | None = None
    subject: str | None = None
    actor: str | None = None
    #: Entries carrying every one of these tags.
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    where: tuple[Condition, ...] = ()
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass
class Page:
    items: list[AuditEntry] = field(default_factory=list)
    #: The cursor of the next page; None on the last.
    next: str | None = None


def condition(raw: object) -> Condition:
    """A payload condition from its JSON form; ValidationError names what is wrong."""
    if not isinstance(raw, Mapping):
        raise ValidationError("a condition is an object {op, path, value}")
    unknown = sorted(set(raw) - {"op", "path", "value"})
    if unknown:
        raise ValidationError(f"a condition has only op, path and value; not {', '.join(unknown)}")
    op = raw.get("op")
    if op not in OPS:
        raise ValidationError(
            f"unknown op {op!r}; the ops are {', '.join(OPS)}", details={"op": op}
        )
    path = raw.get("path")
    if (
        not isinstance(path, list)
        or not 1 <= len(path) <= MAX_DEPTH
        or not all(isinstance(k, str) and KEY.fullmatch(k) for k in path)
    ):
        raise ValidationError(
            f"path must be a list of 1-{MAX_DEPTH} keys, each 1-64 letters, digits or _-.:@",
            details={"path": path},
        )
    value = raw.get("value", True if op == "EXISTS" else None)
    _check_value(op, value)
    return Condition(op, tuple(path), value)


def _check_value(op: str, value: Any) -> None:
    def wrong(expected: str) -> ValidationError:
        return ValidationError(
            f"{op} takes {expected}; got {type(value).__name__}", details={"op": op}
        )

    if op in ("EQ", "NE") and not _is_scalar(value):
        raise wrong("a string, number, boolean or null")
    if op == "IN" and not (
        isinstance(value, list) and 1 <= len(value) <= MAX_IN and all(map(_is_scalar, value))
    ):
        raise wrong(f"a list of 1-{MAX_IN} strings, numbers, booleans or nulls")
    if op == "CONTAINS" and not (_is_scalar(value) and value is not None):
        raise wrong("a string, number or boolean")
    if op == "EXISTS" and not isinstance(value, bool):
        raise wrong("true or false")
    if op in ("GT", "LT") and (isinstance(value, bool) or not isinstance(value, int | float | str)):
        raise wrong("a number or a string")
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and len(item) > MAX_VALUE_CHARS:
            raise ValidationError(f"a value may have at most {MAX_VALUE_CHARS} characters")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def search(session: Session, query: Query, *, timeout: float = TIMEOUT) -> Page:
    """The entries matching QUERY, newest first, and the cursor of the page after;
    SearchTimeout once it has run TIMEOUT seconds."""
    clauses = _filters(session, query)
    if query.cursor is not None:
        clauses.append(_after(query.cursor))
    newest = (
        select(AuditEntry)
        .where(*clauses)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    )
    with _bounded(session, timeout):
        rows = list(session.scalars(newest.limit(query.limit + 1)))
    more = len(rows) > query.limit
    items = rows[: query.limit]
    return Page(items, _cursor(items[-1]) if more else None)


def newer(
    session: Session, query: Query, after: int, *, timeout: float = TIMEOUT
) -> list[AuditEntry]:
    """Up to QUERY.limit entries matching QUERY (its time range and cursor aside) with ids
    above AFTER, oldest first: what a live tail has not seen yet."""
    clauses = _filters(session, replace(query, since=None, until=None))
    oldest = select(AuditEntry).where(*clauses, AuditEntry.id > after).order_by(AuditEntry.id)
    with _bounded(session, timeout):
        return list(session.scalars(oldest.limit(query.limit)))


def last_id(session: Session) -> int:
    """The highest id recorded so far (0 when none is)."""
    return session.scalar(select(func.max(AuditEntry.id))) or 0


def _filters(session: Session, query: Query) -> list[ColumnElement[bool]]:
    if len(query.where) > MAX_CONDITIONS:
        raise ValidationError(f"a search takes at most {MAX_CONDITIONS} payload conditions")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1-{MAX_LIMIT}")
    postgres = session.get_bind().dialect.name == "postgresql"
    clauses: list[ColumnElement[bool]] = [AuditEntry.organization_id == query.organization_id]
    if query.action:
        if query.action.endswith(".*"):
            prefix = query.action[:-1]
            clauses.append(AuditEntry.action.startswith(prefix, autoescape=True))
        else:
            clauses.append(AuditEntry.action == query.action)
    if query.subject:
        clauses.append(AuditEntry.subject == query.subject)
    if query.actor:
        clauses.append(AuditEntry.actor == query.actor)
    for tag in query.tags:
        clauses.append(_contains(postgres, AuditEntry.tags, (), tag))
    if query.since is not None:
        clauses.append(AuditEntry.created_at >= query.since)
    if query.until is not None:
        clauses.append(AuditEntry.created_at < query.until)
    clauses.extend(_payload(postgres, c) for c in query.where)
    return clauses


def moment(raw: str, what: str, now: datetime) -> datetime:
    """RAW as a time: ISO-8601 (UTC unless it says), or a duration before NOW such as 90s,
    15m, 12h, 30d or 2w; ValidationError naming WHAT otherwise."""
    text = raw.strip()
    ago = durations.parse(text)
    if ago is not None:
        return now - ago
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{what} must be an ISO-8601 time (2026-11-23T10:00:00Z) or a duration ago "
            f"({durations.EXAMPLES}); got {raw!r}",
            details={"field": what},
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@contextmanager
def _bounded(session: Session, seconds: float) -> Iterator[None]:
    """Stop what runs inside after SECONDS: PostgreSQL's statement_timeout for this
    transaction, or SQLite's progress handler."""
    connection = session.connection()
    too_slow = SearchTimeout(
        f"the search ran past {seconds:g} s and was stopped; narrow it by action, subject, "
        "actor or time"
    )
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(int(seconds * 1000), 1)}")
        try:
            yield
        except OperationalError as e:
            if "statement timeout" in str(e):
                raise too_slow from None
            raise
        return
    raw: Any = connection.connection.dbapi_connection
    deadline = time.monotonic() + seconds
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        yield
    except OperationalError as e:
        if "interrupted" in str(e):
            raise too_slow from None
        raise
    finally:
        raw.set_progress_handler(None, 0)


def _cursor(entry: AuditEntry) -> str:
    text = f"{entry.created_at.isoformat()}|{entry.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> ColumnElement[bool]:
    """Entries older than the cursor's: before its time, or at its time with a lower id."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment_text, _, number = text.partition("|")
        when = datetime.fromisoformat(moment_text)
        if when.tzinfo is not None and number.isdigit() and 0 < int(number) < 2**63:
            return or_(
                AuditEntry.created_at < when,
                and_(AuditEntry.created_at == when, AuditEntry.id < int(number)),
            )
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationError("the cursor is not one a search handed out", details={"cursor": cursor})


# -- payload conditions, per dialect -----------------------------------------------------------


def _payload(postgres: bool, c: Condition) -> ColumnElement[bool]:
    column = AuditEntry.payload
    if c.op == "EQ":
        return _equals(postgres, column, c.path, c.value)
    if c.op == "NE":
        return not_(_equals(postgres, column, c.path, c.value))
    if c.op == "IN":
        return or_(*(_equals(postgres, column, c.path, v) for v in c.value))
    if c.op == "CONTAINS":
        return _contains(postgres, column, c.path, c.value)
    if c.op == "EXISTS":
        present = _type(postgres, column, c.path).is_not(None)
        return present if c.value else not_(present)
    return _ordered(postgres, column, c.path, c.value, above=c.op == "GT")


def _type(postgres: bool, column: Any, path: Sequence[str]) -> ColumnElement[Any]:
    """The JSON type name of the value at PATH; NULL where there is none."""
    if postgres:
        return func.jsonb_typeof(column.op("#>")(_pg_path(path)))
    return func.json_type(column, _sqlite_path(path))


def _pg_path(path: Sequence[str]) -> ColumnElement[Any]:
    return literal(list(path), ARRAY(String))


def pg_path_literal(path: Sequence[str]) -> ColumnElement[Any]:
    """PATH as a text[] constant written into the SQL, as an index expression has it.
    Safe: every key matched KEY, which has no quotes, commas or braces."""
    if not all(KEY.fullmatch(key) for key in path):
        raise ValueError(f"not a path of keys: {path!r}")
    return literal_column(f"'{{{','.join(path)}}}'::text[]", ARRAY(String))


def _sqlite_path(path: Sequence[str]) -> ColumnElement[str]:
    """PATH as a JSON path written into the SQL, so that an index on the same expression
    (shipway.audit.indexes) can answer it. Safe: every key matched KEY, which has no quotes."""
    return literal_column(f"'{json_path(path)}'", String)


def json_path(path: Sequence[str]) -> str:
    """SQLite's JSON path of PATH: $."a"."b"."""
    if not all(KEY.fullmatch(key) for key in path):
        raise ValueError(f"not a path of keys: {path!r}")
    return "$" + "".join(f'."{key}"' for key in path)


def _nested(path: Sequence[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _json_type(value: Scalar, postgres: bool) -> tuple[str, ...]:
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("boolean",) if postgres else ("true" if value else "false",)
    if isinstance(value, int | float):
        return ("number",) if postgres else ("integer", "real")
    return ("string",) if postgres else ("text",)


def _equals(postgres: bool, column: Any, path: Sequence[str], value: Scalar) -> ColumnElement[bool]:
    kind = _type(postgres, column, path).in_(_json_type(value, postgres))
    if postgres:  # containment, which the GIN index answers; the type rules out arrays
        contained = column.op("@>")(cast(literal(_nested(path, value), JSONB), JSONB))
        if not isinstance(value, str):
            return and_(contained, kind)
        # The same test as text, which an index on an indexed path answers (indexes.py).
        return and_(contained, kind, column.op("#>>")(pg_path_literal(path)) == value)
    if value is None or isinstance(value, bool):
        return kind
    return and_(kind, func.json_extract(column, _sqlite_path(path)) == value)


def _contains(postgres: bool, column: Any, path: Sequence[str], value: Any) -> ColumnElement[bool]:
    """PATH holds an array with VALUE in it, or (VALUE a string) a string with it inside."""
    if postgres:
        in_array: ColumnElement[bool] = column.op("@>")(
            cast(literal(_nested(path, [value]), JSONB), JSONB)
        )
        if not isinstance(value, str) or not path:
            return in_array
        text = column.op("#>>")(_pg_path(path))
        within = case((_type(True, column, path) == "string", func.strpos(text, value) > 0))
        return or_(in_array, within.is_(True))
    where = _sqlite_path(path)
    items = func.json_each(column, where).table_valued("value", "type")
    same: ColumnElement[bool] = items.c.type.in_(_json_type(value, postgres=False))
    if not isinstance(value, bool):  # a boolean's type (true, false) is the whole of it
        same = and_(same, items.c.value == value)
    in_array = and_(
        _type(False, column, path) == "array",
        exists(select(literal(1)).select_from(items).where(same)),
    )
    if not isinstance(value, str):
        return in_array
    inside = and_(
        _type(False, column, path) == "text",
        func.instr(func.json_extract(column, where), value) > 0,
    )
    return or_(in_array, inside)


def _ordered(
    postgres: bool, column: Any, path: Sequence[str], value: int | float | str, *, above: bool
) -> ColumnElement[bool]:
    numeric = not isinstance(value, str)
    found: ColumnElement[Any]
    if postgres:
        kind = "number" if numeric else "string"
        text = column.op("#>>")(_pg_path(path))
        typed = cast(text, Numeric()) if numeric else text
        found = case((_type(True, column, path) == kind, typed))
    else:
        kinds = ("integer", "real") if numeric else ("text",)
        found = case(
            (_type(False, column, path).in_(kinds), func.json_extract(column, _sqlite_path(path)))
        )
    return found > value if above else found < value
