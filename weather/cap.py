"""CAP 1.2 (GB/T 35965.1-2018 profile) alerts parsed with a hardened XML parser.

`parse` never raises on bad input: it returns an `Alert` or a `Refused` with a stable
reason (the counter's label) and a sentence naming the place. defusedxml refuses any DTD,
entity declaration (billion laughs) and external entity (XXE) before anything is expanded
or read; the document size is checked before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from hazmon.plant.weather_standards import CAP_NS, SEVERITY_COLOUR, Colour, WarningKind

__all__ = ["MAX_BYTES", "Alert", "Area", "Info", "Reason", "Refused", "parse"]

MAX_BYTES = 256 * 1024
"""Largest document accepted (a CAP alert is a few kB; hazmon's choice)."""

_NS = {"cap": CAP_NS}
_STATUS = ("Actual", "Exercise", "System", "Test", "Draft")
_MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")


class Reason(StrEnum):
    """Why a document was refused: the label of its counter."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    DTD = "dtd"  # any DTD, entity declaration (billion laughs) or external entity (XXE)
    NOT_CAP = "not_cap"
    MISSING = "missing_field"
    INVALID = "invalid_field"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    UNKNOWN_REFERENCE = "unknown_reference"
    NOT_ACTUAL = "not_actual"


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Area:
    """One <area>: its description, polygons, circles and geocodes."""

    desc: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # (lat, lon) rings
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius km)
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)

    def region_codes(self) -> tuple[str, ...]:
        """6-digit administrative region codes among the geocodes."""
        return tuple(v for _, v in self.geocodes if len(v) == 6 and v.isdigit())


@dataclass(frozen=True, slots=True)
class Info:
    """One <info> block."""

    language: str
    event: str
    severity: str
    urgency: str
    certainty: str
    event_codes: tuple[tuple[str, str], ...] = ()
    headline: str = ""
    description: str = ""
    instruction: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    """One CAP alert, as received."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    references: tuple[tuple[str, str, datetime | None], ...]  # (sender, identifier, sent)
    infos: tuple[Info, ...]
    xml: bytes  # as received (its declaration may name an encoding other than UTF-8)

    @property
    def kind(self) -> WarningKind | None:
        for i in self.infos:
            k = WarningKind.from_text(i.event) or WarningKind.from_text(i.headline)
            if k is not None:
                return k
        return None

    @property
    def colour(self) -> Colour | None:
        """The colour: a colour word in a headline or event first, the CAP severity otherwise."""
        for i in self.infos:
            c = Colour.from_text(i.headline) or Colour.from_text(i.event)
            if c is not None:
                return c
        for i in self.infos:
            if i.severity in SEVERITY_COLOUR:
                return SEVERITY_COLOUR[i.severity]
        return None

    @property
    def expires(self) -> datetime | None:
        """The latest expiry over the info blocks (None: no expiry given)."""
        ends = [i.expires for i in self.infos if i.expires is not None]
        return max(ends) if ends else None

    @property
    def areas(self) -> tuple[Area, ...]:
        return tuple(a for i in self.infos for a in i.areas)

    def text(self, lang: str) -> Info | None:
        """The info block in `lang` ("zh" or "en"), else the first."""
        for i in self.infos:
            if i.language.lower().startswith(lang):
                return i
        return self.infos[0] if self.infos else None


class _BadError(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _text(el: Element, tag: str, where: str, required: bool = True) -> str:
    child = el.find(f"cap:{tag}", _NS)
    value = (child.text or "").strip() if child is not None else ""
    if required and not value:
        raise _BadError(Reason.MISSING, f"{where}: <{tag}> is missing or empty")
    return value


def _time(el: Element, tag: str, where: str, required: bool = False) -> datetime | None:
    s = _text(el, tag, where, required)
    if not s:
        return None
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise _BadError(Reason.INVALID, f"{where}.{tag}: '{s}' is not a CAP date-time") from None
    if t.tzinfo is None:
        raise _BadError(Reason.INVALID, f"{where}.{tag}: '{s}' has no time-zone offset (CAP requires one)")
    return t


def _point(s: str, where: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in s.split(","))
    except ValueError:
        raise _BadError(Reason.INVALID, f"{where}: '{s}' is not 'lat,lon'") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _BadError(Reason.INVALID, f"{where}: '{s}' is outside WGS 84 ranges")
    return (lat, lon)


def _area(el: Element, where: str) -> Area:
    desc = _text(el, "areaDesc", where)
    polygons = []
    for n, p in enumerate(el.findall("cap:polygon", _NS)):
        pts = tuple(_point(x, f"{where}.polygon[{n}]") for x in (p.text or "").split())
        if len(pts) < 4 or pts[0] != pts[-1]:
            raise _BadError(Reason.INVALID, f"{where}.polygon[{n}]: needs 4+ points, the first = the last")
        polygons.append(pts)
    circles = []
    for n, c in enumerate(el.findall("cap:circle", _NS)):
        parts = (c.text or "").split()
        if len(parts) != 2:
            raise _BadError(Reason.INVALID, f"{where}.circle[{n}]: expected 'lat,lon radius'")
        lat, lon = _point(parts[0], f"{where}.circle[{n}]")
        try:
            r = float(parts[1])
        except ValueError:
            bad = f"{where}.circle[{n}]: radius '{parts[1]}' is not a number"
            raise _BadError(Reason.INVALID, bad) from None
        if not r >= 0:
            raise _BadError(Reason.INVALID, f"{where}.circle[{n}]: radius must be >= 0 km")
        circles.append((lat, lon, r))
    geocodes = tuple(
        (_text(g, "valueName", f"{where}.geocode"), _text(g, "value", f"{where}.geocode"))
        for g in el.findall("cap:geocode", _NS)
    )
    return Area(desc, tuple(polygons), tuple(circles), geocodes)


def _info(el: Element, where: str) -> Info:
    codes = tuple(
        (_text(c, "valueName", f"{where}.eventCode"), _text(c, "value", f"{where}.eventCode"))
        for c in el.findall("cap:eventCode", _NS)
    )
    areas = tuple(_area(a, f"{where}.area[{n}]") for n, a in enumerate(el.findall("cap:area", _NS)))
    return Info(
        language=_text(el, "language", where, required=False) or "en-US",
        event=_text(el, "event", where),
        severity=_text(el, "severity", where),
        urgency=_text(el, "urgency", where),
        certainty=_text(el, "certainty", where),
        event_codes=codes,
        headline=_text(el, "headline", where, required=False),
        description=_text(el, "description", where, required=False),
        instruction=_text(el, "instruction", where, required=False),
        effective=_time(el, "effective", where),
        onset=_time(el, "onset", where),
        expires=_time(el, "expires", where),
        areas=areas,
    )


def _references(s: str, where: str) -> tuple[tuple[str, str, datetime | None], ...]:
    out = []
    for ref in s.split():
        parts = ref.split(",")
        if len(parts) != 3:
            raise _BadError(Reason.INVALID, f"{where}.references: '{ref}' is not 'sender,identifier,sent'")
        try:
            sent = datetime.fromisoformat(parts[2])
        except ValueError:
            sent = None
        out.append((parts[0], parts[1], sent))
    return tuple(out)


def parse(data: bytes, name: str = "<alert>") -> Alert | Refused:
    """Parse one CAP 1.2 alert; `name` (a file name, a URL) prefixes every reason."""
    if len(data) > MAX_BYTES:
        return Refused(Reason.OVERSIZE, f"{name}: {len(data)} bytes, more than {MAX_BYTES}")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        what = type(e).__name__
        return Refused(Reason.DTD, f"{name}: refused, the document declares a DTD or entities ({what})")
    except (ParseError, ValueError) as e:
        return Refused(Reason.MALFORMED, f"{name}: malformed XML: {e}")
    if root.tag != f"{{{CAP_NS}}}alert":
        return Refused(Reason.NOT_CAP, f"{name}: root element is {root.tag}, not a CAP 1.2 <alert>")
    try:
        status = _text(root, "status", name)
        msg_type = _text(root, "msgType", name)
        if status not in _STATUS:
            raise _BadError(Reason.INVALID, f"{name}.status: '{status}' is not one of {', '.join(_STATUS)}")
        if msg_type not in _MSG_TYPES:
            raise _BadError(Reason.INVALID, f"{name}.msgType: '{msg_type}' is not one of {_MSG_TYPES}")
        refs = _references(_text(root, "references", name, required=False), name)
        if msg_type in ("Update", "Cancel") and not refs:
            raise _BadError(Reason.MISSING, f"{name}: a {msg_type} needs <references>")
        infos = tuple(_info(i, f"{name}.info[{n}]") for n, i in enumerate(root.findall("cap:info", _NS)))
        if msg_type in ("Alert", "Update") and not infos:
            raise _BadError(Reason.MISSING, f"{name}: an {msg_type} needs at least one <info>")
        sent = _time(root, "sent", name, required=True)
        assert sent is not None
        return Alert(
            identifier=_text(root, "identifier", name),
            sender=_text(root, "sender", name),
            sent=sent,
            status=status,
            msg_type=msg_type,
            references=refs,
            infos=infos,
            xml=bytes(data),
        )
    except _BadError as b:
        return Refused(b.reason, b.detail)
