"""Federation topics: a bureau forwarding what it received to its parent bureau (province → nation).

A child bureau publishes each envelope it stored, **unchanged** (same ``message_id``, ``seq``,
``enterprise_id``, ``region_code``, ``sent_at``), on

    hazmon/v1/fed/<child>/<enterprise>/up/<kind>

where ``<child>`` is the child's username at the parent's broker, so one ACL line ties a child
to its own prefix (``pattern write hazmon/v1/fed/%u/#``). The parent checks the envelope
against the inner topic (`inner_topic`) exactly as an enterprise's, and the enterprise's
region against the child's.
"""

from __future__ import annotations

from hazmon.plant.link.messages import TOPIC_ROOT, LinkError, direction_of

__all__ = ["FED_ROOT", "RESERVED_CHILD_IDS", "fed_topic", "is_fed_topic", "parse_fed_topic"]

FED_ROOT = f"{TOPIC_ROOT}/fed"
RESERVED_CHILD_IDS = frozenset({"up", "down"})  # would make fed topics look like an enterprise's


def fed_topic(child: str, enterprise_id: str, kind: str) -> str:
    """``hazmon/v1/fed/<child>/<enterprise>/up/<kind>``: where a child forwards an up message."""
    return f"{FED_ROOT}/{child}/{enterprise_id}/{direction_of(kind)}/{kind}"


def is_fed_topic(t: str) -> bool:
    """Whether ``t`` has the shape of a federation topic (seven levels under ``hazmon/v1/fed``).

    An enterprise whose id is ``fed`` still has its own five-level topics.
    """
    return t.startswith(f"{FED_ROOT}/") and t.count("/") == 6


def parse_fed_topic(t: str) -> tuple[str, str]:
    """(child, inner topic ``hazmon/v1/<enterprise>/up/<kind>``) of a federation topic.

    Raises:
        LinkError: not a ``hazmon/v1/fed/<child>/<enterprise>/up/<kind>`` topic.
    """
    parts = t.split("/")
    if (
        len(parts) != 7
        or "/".join(parts[:3]) != FED_ROOT
        or not parts[3]
        or not parts[4]
        or parts[5] != "up"
        or not parts[6]
    ):
        raise LinkError(f"topic: {t!r} is not {FED_ROOT}/<child>/<enterprise>/up/<kind>")
    return parts[3], f"{TOPIC_ROOT}/{parts[4]}/up/{parts[6]}"
