"""The hardened CAP 1.2 parser: the sample files parse; every attack and bad document is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.weather.cap import MAX_BYTES, Alert, Reason, Refused, parse

DATA = Path(__file__).parent / "data"
CST = timezone(timedelta(hours=8))


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def alert(name: str) -> Alert:
    a = parse(sample(name), name)
    assert isinstance(a, Alert), a
    return a


def test_the_yellow_lightning_sample_parses_in_full() -> None:
    a = alert("lightning_yellow.xml")
    assert a.identifier == "32011641600000_20260804101500"
    assert a.identifier[:6] == "320116"  # GB/T 35965.1: the identifier carries the region code
    assert (a.sender, a.status, a.msg_type, a.references) == ("南京市六合区气象台", "Actual", "Alert", ())
    assert a.sent == datetime(2026, 8, 4, 10, 15, tzinfo=CST)
    assert a.expires == datetime(2026, 8, 4, 22, 15, tzinfo=CST)
    assert (a.kind, a.colour) == (WarningKind.LIGHTNING, Colour.YELLOW)
    zh, en = a.text("zh"), a.text("en")
    assert zh is not None and en is not None
    assert zh.language == "zh-CN" and en.language == "en-US"
    assert zh.headline == "六合区气象台发布雷电黄色预警信号"
    assert "24小时值班" in zh.instruction
    assert (zh.severity, zh.urgency, zh.certainty) == ("Moderate", "Expected", "Likely")
    area = zh.areas[0]
    assert area.desc == "六合区" and area.region_codes() == ("320116",)
    assert area.polygons[0][0] == (32.20, 118.70) and len(area.polygons[0]) == 5


def test_update_and_cancel_carry_their_references() -> None:
    u, c = alert("lightning_orange_update.xml"), alert("lightning_cancel.xml")
    assert u.msg_type == "Update" and u.references[0][1] == "32011641600000_20260804101500"
    assert u.colour is Colour.ORANGE
    assert c.msg_type == "Cancel" and c.references[0][1] == "32011641600000_20260804140000"


@pytest.mark.parametrize(
    ("severity", "colour"),
    [("Minor", Colour.BLUE), ("Moderate", Colour.YELLOW), ("Severe", Colour.ORANGE), ("Extreme", Colour.RED)],
)
def test_without_a_colour_word_the_severity_gives_the_colour(severity: str, colour: Colour) -> None:
    doc = sample("lightning_yellow.xml").decode().replace("黄色", "").replace("yellow ", "")
    doc = doc.replace("<severity>Moderate</severity>", f"<severity>{severity}</severity>")
    a = parse(doc.encode())
    assert isinstance(a, Alert) and a.colour is colour


def test_the_headline_colour_word_wins_over_the_severity() -> None:
    doc = sample("lightning_yellow.xml").replace(
        b"<severity>Moderate</severity>", b"<severity>Extreme</severity>"
    )
    a = parse(doc)
    assert isinstance(a, Alert) and a.colour is Colour.YELLOW


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>"""


@pytest.mark.parametrize("doc", [XXE, LAUGHS, DTD_ONLY], ids=["xxe", "billion_laughs", "dtd"])
def test_xml_attacks_are_refused_before_any_expansion(doc: bytes) -> None:
    r = parse(doc, "attack.xml")
    assert isinstance(r, Refused) and r.reason is Reason.DTD
    assert r.detail.startswith("attack.xml: ")


def test_xxe_never_reads_the_file() -> None:
    r = parse(XXE)
    assert isinstance(r, Refused)
    assert "root:" not in repr(r)  # /etc/passwd's first line starts with root:


def test_an_oversize_document_is_refused_unparsed() -> None:
    r = parse(b"<" * (MAX_BYTES + 1))
    assert isinstance(r, Refused) and r.reason is Reason.OVERSIZE


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (b"<alert><identifier>x</alert>", Reason.MALFORMED),
        (b"", Reason.MALFORMED),
        (b"\xff\xfe garbage", Reason.MALFORMED),
        (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>', Reason.NOT_CAP),
    ],
    ids=["unclosed", "empty", "garbage", "cap_1_1"],
)
def test_malformed_and_foreign_documents_are_refused(doc: bytes, reason: Reason) -> None:
    r = parse(doc, "bad.xml")
    assert isinstance(r, Refused) and r.reason is reason, r


@pytest.mark.parametrize(
    ("old", "new", "reason", "where"),
    [
        ("<identifier>32011641600000_20260804101500</identifier>", "", Reason.MISSING, "<identifier>"),
        ("<sender>南京市六合区气象台</sender>", "", Reason.MISSING, "<sender>"),
        ("<status>Actual</status>", "<status>Real</status>", Reason.INVALID, "status"),
        ("<msgType>Alert</msgType>", "<msgType>Notice</msgType>", Reason.INVALID, "msgType"),
        ("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>", Reason.MISSING, "references"),
        ("<event>雷电</event>", "", Reason.MISSING, "info[0]: <event>"),
        (
            "<sent>2026-08-04T10:15:00+08:00</sent>",
            "<sent>2026-08-04T10:15:00</sent>",
            Reason.INVALID,
            "offset",
        ),
        (" 32.20,118.70</polygon>", "</polygon>", Reason.INVALID, "polygon"),  # not closed
        ("32.20,118.70 32.20,119.00", "95.0,118.70 32.20,119.00", Reason.INVALID, "WGS 84"),
    ],
)
def test_missing_or_invalid_fields_are_refused_with_the_place(
    old: str, new: str, reason: Reason, where: str
) -> None:
    doc = sample("lightning_yellow.xml").decode()
    assert old in doc
    r = parse(doc.replace(old, new, 1).encode(), "f.xml")
    assert isinstance(r, Refused) and r.reason is reason, r
    assert where in r.detail and r.detail.startswith("f.xml")


def test_sent_times_compare_across_offsets() -> None:
    a = alert("lightning_yellow.xml")
    assert a.sent == datetime(2026, 8, 4, 2, 15, tzinfo=UTC)
