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

__all__ = ["RequestError", "bearer", "parse_body", "parse_model", "parse_query"]

M = TypeVar("M", bound=BaseModel)


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
