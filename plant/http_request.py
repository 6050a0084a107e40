"""Reading an HTTP API request against pydantic models: one 400 wording for every hazmon API.

The alarm, supervision, weather and bureau APIs share these: a request error names the part
and the field (``query.limit: must be <= 1000``, ``body.level: 'x' is not one of: ...``) before
anything is read from or written to a database, and never becomes a traceback or a 500.
Bodies are parsed by pydantic's own JSON parser (strict JSON, UTF-8 only, bounded nesting).
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from hazmon.plant.schema import describe

__all__ = ["RequestError", "bearer", "jsonable", "parse_body", "parse_model", "parse_query", "query_flag",
           "query_whole"]  # fmt: skip

M = TypeVar("M", bound=BaseModel)


def query_flag(v: object) -> object:
    """A query flag (a ``BeforeValidator``): ``true``/``false`` as booleans, else left to the model."""
    return {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v


def query_whole(v: object) -> object:
    """A path or query number (a ``BeforeValidator``): digits as an int, anything else left to the model."""
    return int(v) if isinstance(v, str) and v.isdigit() and len(v) < 19 else v


def jsonable(v: object) -> object:
    """An answer's rows as JSON values: dates and times in ISO 8601, anything else odd as its text."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v if v is None or isinstance(v, str | int | float | bool) else str(v)


class RequestError(Exception):
    """A request that does not match its schema; the message names field and reason."""


def parse_model(model: type[M], values: dict[str, str], part: str) -> M:
    """``values`` (path or query) validated by ``model``; RequestError naming ``part.field``."""
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise RequestError(describe(e, part)) from e


def parse_query(request: web.Request, model: type[M] | None) -> M | None:
    """The query string by ``model``; none allowed when ``model`` is None; a key given twice refused."""
    keys = [k for k, _ in request.query.items()]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise RequestError(f"query.{twice[0]}: given twice")
    if model is None:
        if keys:
            raise RequestError(f"query.{keys[0]}: unknown parameter")
        return None
    return parse_model(model, dict(request.query), "query")


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The JSON body by ``model`` (an empty body is ``{}``)."""
    raw = await request.read() if request.can_read_body else b""
    try:
        return model.model_validate_json(raw) if raw.strip() else model.model_validate({})
    except ValidationError as e:
        raise RequestError(describe(e, "body")) from e


def bearer(request: web.Request) -> str | None:
    """The bearer token, or None; RequestError when it is not printable ASCII (RFC 6750 §2.1)."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        return None
    token = auth[7:].strip()
    if not token.isascii() or not token.isprintable():
        raise RequestError("Authorization: a bearer token is printable ASCII (RFC 6750 §2.1)")
    return token
