"""Federation, the parent's view of its child bureaus: ``GET /api/v1/children``.

For each child of ``children:`` in bureau.yaml whose region lies inside the token's region (a
province's staff see their cities; a county token at a province sees none of the city children —
the child's traffic is the whole child region's):

- ``id``, ``region`` (the region it may speak for);
- ``last_message``: the last message stored here that it forwarded (message id, enterprise, kind,
  seq, ``received_at`` by this bureau's clock), or null: nothing from it yet;
- ``messages_last_hour``, ``messages_last_24h``: messages it forwarded stored here in that time
  (first time by ``message_id``; a duplicate is not counted, nor is a message that reached this
  bureau first by another way);
- ``enterprises``: the enterprises registered here whose region lies inside the child's (those it
  speaks for), each with ``last_seen``; ``enterprises_via_child_24h``: how many of them it
  forwarded for in the last 24 h;
- ``dead_letters``: the refused messages it forwarded, by reason code (``outside_child_region``,
  ``invalid_schema``, ...), and ``dead_letters_unreplayed`` those not yet replayed.

The messages come from ``bureau_message.via_child`` (migration 0811), the dead letters from their
topic ``hazmon/v1/fed/<child>/...``. Mounted by the daemon through `hazmon.bureau.api.build_routes`'s
``extra``, behind its token check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from aiohttp import web
from psycopg.rows import dict_row

from hazmon.bureau.config import ChildSettings
from hazmon.plant.http_request import parse_query
from hazmon.plant.link.federation import FED_ROOT
from hazmon.plant.regions import Scope, covers, prefix

if TYPE_CHECKING:
    from hazmon.bureau.api import ApiUser, BureauApi

__all__ = ["children_routes", "children_view"]

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(v: object) -> object:
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v if v is None or isinstance(v, str | int | float | bool) else str(v)


def _child(c: psycopg.Cursor[dict[str, Any]], child: ChildSettings, now: datetime) -> dict[str, Any]:
    last = c.execute(
        "SELECT message_id, enterprise_id, kind, seq, received_at FROM bureau_message"
        " WHERE via_child = %s ORDER BY received_at DESC LIMIT 1",
        (child.id,),
    ).fetchone()
    counts = c.execute(
        "SELECT count(*) FILTER (WHERE received_at > %(h)s) AS hour, count(*) AS day,"
        " count(DISTINCT enterprise_id) AS enterprises FROM bureau_message"
        " WHERE via_child = %(c)s AND received_at > %(d)s",
        {"c": child.id, "h": now - timedelta(hours=1), "d": now - timedelta(hours=24)},
    ).fetchone()
    assert counts is not None
    enterprises = c.execute(
        "SELECT enterprise_id AS id, name, region_code, last_message_at AS last_seen FROM bureau_enterprise"
        " WHERE region_code LIKE %s ORDER BY enterprise_id",
        (prefix(child.scope) + "%",),
    ).fetchall()
    fed = f"{FED_ROOT}/{child.id}/"
    dead = c.execute(
        "SELECT reason_code, count(*) AS n, count(*) FILTER (WHERE replayed_at IS NULL) AS unreplayed"
        " FROM bureau_dead_letter WHERE left(topic, %s) = %s GROUP BY reason_code ORDER BY reason_code",
        (len(fed), fed),
    ).fetchall()
    return {
        "id": child.id,
        "region": {"code": child.region.code, "level": child.region.level},
        "last_message": last,
        "messages_last_hour": counts["hour"],
        "messages_last_24h": counts["day"],
        "enterprises": enterprises,
        "enterprises_via_child_24h": counts["enterprises"],
        "dead_letters": {r["reason_code"]: r["n"] for r in dead},
        "dead_letters_unreplayed": {r["reason_code"]: r["unreplayed"] for r in dead if r["unreplayed"]},
    }


def children_view(
    conn: psycopg.Connection[Any], children: Sequence[ChildSettings], scope: Scope, now: datetime
) -> list[dict[str, Any]]:
    """Each child whose region lies inside ``scope`` (the module's docstring); ``now``: the bureau's clock."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [_child(cur, ch, now) for ch in children if covers(scope, ch.region.code)]


def children_routes(
    api: BureauApi, children: Sequence[ChildSettings], guard: Callable[..., Route], prefix_: str
) -> list[web.RouteDef]:
    """``GET {prefix_}/children`` (any token; filtered by its region)."""

    async def list_children(request: web.Request, user: ApiUser) -> web.StreamResponse:
        parse_query(request, None)
        now = api.clock()
        rows = await api.run(lambda c: children_view(c, children, user.scope, now))
        return web.json_response({"children": _json(rows), "count": len(rows), "at": now.isoformat()})

    return [web.get(f"{prefix_}/children", guard(list_children))]
