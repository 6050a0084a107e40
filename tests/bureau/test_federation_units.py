"""Federation's pure parts: fed topics, the parent's check of a forwarded message, the forward row, config."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from hazmon.bureau.config import load_config
from hazmon.bureau.forward import render
from hazmon.bureau.ingest import IngestLimits, Ingestor, Refused, check_forwarded
from hazmon.plant import ConfigError
from hazmon.plant.link import Envelope, LinkError
from hazmon.plant.link.federation import fed_topic, is_fed_topic, parse_fed_topic
from hazmon.plant.regions import Scope
from hazmon.store.outbox import MalformedRowError
from tests.bureau.helpers import T0, Enterprise

NATION = Scope("000000", "nation")
CHILDREN = {"js-province": Scope("320000", "province"), "zj-province": Scope("330000", "province")}


def test_fed_topic_round_trip_and_refusals() -> None:
    t = fed_topic("js-province", "E1", "alarm_event")
    assert t == "hazmon/v1/fed/js-province/E1/up/alarm_event"
    assert parse_fed_topic(t) == ("js-province", "hazmon/v1/E1/up/alarm_event")
    assert is_fed_topic(t)
    assert not is_fed_topic("hazmon/v1/fed/up/registration")  # an enterprise whose id is 'fed'
    for bad in (
        "hazmon/v1/E1/up/alarm_event",
        "hazmon/v1/fed/js/E1/down/bureau_step",
        "hazmon/v1/fed//E1/up/alarm_event",
        "hazmon/v1/fed/js/E1/up/alarm_event/x",
        "hazmon/v2/fed/js/E1/up/alarm_event",
    ):
        with pytest.raises(LinkError, match="is not hazmon/v1/fed/<child>/<enterprise>/up/<kind>"):
            parse_fed_topic(bad)


def _fwd(ent: Enterprise, child: str = "js-province") -> tuple[bytes, str, Envelope]:
    env = ent.envelope(ent.registration())
    raw, _ = ent.wire(env)
    return raw, fed_topic(child, env.enterprise_id, env.kind), env


def test_a_forwarded_message_inside_the_childs_region_is_taken_unchanged(enterprise: Enterprise) -> None:
    raw, topic, env = _fwd(enterprise)
    got = check_forwarded(raw, topic, IngestLimits(), NATION, CHILDREN)
    assert isinstance(got, Envelope)
    assert (got.message_id, got.seq, got.region_code) == (env.message_id, env.seq, "320116")


def test_outside_the_childs_region_unknown_child_and_inner_mismatch_are_refused(
    enterprise: Enterprise,
) -> None:
    raw, topic, _ = _fwd(enterprise, "zj-province")  # a Jiangsu enterprise forwarded by Zhejiang
    got = check_forwarded(raw, topic, IngestLimits(), NATION, CHILDREN)
    assert got == Refused(
        "outside_child_region",
        "region_code: 320116 is outside child bureau 'zj-province''s province 330000",
        enterprise.id,
    )
    raw, topic, _ = _fwd(enterprise, "ah-province")
    got = check_forwarded(raw, topic, IngestLimits(), NATION, CHILDREN)
    assert isinstance(got, Refused) and got.reason_code == "unknown_child"
    assert got.reason == "topic: child bureau 'ah-province' is not in this bureau's children"
    # the inner topic names another enterprise than the envelope: refused as from an enterprise
    raw, _, env = _fwd(enterprise)
    got = check_forwarded(
        raw, fed_topic("js-province", "E-OTHER", env.kind), IngestLimits(), NATION, CHILDREN
    )
    assert isinstance(got, Refused) and got.reason_code == "topic_mismatch"
    # the parent's own region still applies (a city parent, a child speaking for the province)
    city = Scope("320500", "city")
    got = check_forwarded(
        raw, fed_topic("js-province", env.enterprise_id, env.kind), IngestLimits(), city, CHILDREN
    )
    assert isinstance(got, Refused) and got.reason_code == "outside_region"
    got = check_forwarded(raw, "hazmon/v1/fed/x", IngestLimits(), NATION, CHILDREN)
    assert isinstance(got, Refused) and got.reason_code == "topic_mismatch"


def test_the_ingestor_takes_fed_topics_from_children_and_an_enterprise_named_fed_as_an_enterprise(
    make_db: Callable[[], str], enterprise: Enterprise
) -> None:
    dsn = make_db()
    ing = Ingestor(NATION, IngestLimits(), children=CHILDREN)
    fed = Enterprise(enterprise.plant, "fed")
    with psycopg.connect(dsn, autocommit=True) as conn:
        raw, topic, _ = _fwd(enterprise)
        assert ing.handle(conn, raw, topic, T0).status == "stored"
        raw, topic, _ = _fwd(enterprise, "zj-province")
        o = ing.handle(conn, raw, topic, T0)
        assert o.refused is not None and o.refused.reason_code == "outside_child_region"
        raw, topic = fed.wire(fed.envelope(fed.registration()))
        assert topic == "hazmon/v1/fed/up/registration"
        assert ing.handle(conn, raw, topic, T0).status == "stored"
        rows = conn.execute("SELECT topic, enterprise_id, reason_code FROM bureau_dead_letter").fetchall()
    assert rows == [
        (fed_topic("zj-province", enterprise.id, "registration"), enterprise.id, "outside_child_region")
    ]


def test_a_forward_row_goes_out_as_the_same_bytes_and_a_tampered_one_never(enterprise: Enterprise) -> None:
    raw, topic, env = _fwd(enterprise)
    row = (7, 1, env.message_id, env.enterprise_id, env.kind, raw)
    assert render("js-province", row) == (topic, raw)
    with pytest.raises(MalformedRowError, match="message_id"):
        render("js-province", (7, 1, uuid.uuid4(), env.enterprise_id, env.kind, raw))
    with pytest.raises(MalformedRowError, match="enterprise_id"):
        render("js-province", (7, 1, env.message_id, "E-OTHER", env.kind, raw))
    with pytest.raises(MalformedRowError):
        render("js-province", (7, 1, env.message_id, env.enterprise_id, env.kind, b"{not json"))


def _problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "bureau.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    return [str(p).replace(str(f), "bureau.yaml") for p in e.value.problems]


def test_parent_and_children_mistakes_name_line_field_and_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAZMON_TEST_NO_SUCH_PW", raising=False)
    head = 'id: js\nname: 江苏省应急管理厅\nregion: {code: "320000", level: province}\n'
    got = _problems(
        tmp_path,
        head
        + """parent:
  url: "http://nation.example"
  username: up
  batch: 0
  colour: red
children:
  - {id: down, region: {code: "3201", level: city}}
""",
    )
    assert got == [
        "bureau.yaml:5: parent.url: 'http://nation.example' is not mqtt://host[:port] or mqtts://host[:port]",
        "bureau.yaml:6: parent.username: 'up' is reserved in the link's topics",
        "bureau.yaml:7: parent.batch: must be >= 1, got 0",
        "bureau.yaml:8: parent.colour: unknown key 'colour' (allowed: ack_timeout_s, batch, ca_file, "
        "cert_file, client_id, keepalive_s, key_file, password_env, poll_interval_s, protocol, "
        "retry_max_s, session_expiry_s, url, username)",
        "bureau.yaml:10: children[0].id: 'down' is reserved in the link's topics",
        "bureau.yaml:10: children[0].region.code: '3201' is not a six-digit region code (GB/T 2260)",
    ]
    got = _problems(
        tmp_path,
        head
        + """parent: {url: "mqtts://nation.example", username: js, password_env: HAZMON_TEST_NO_SUCH_PW,
         cert_file: /etc/c.pem}
""",
    )
    assert got == [
        "bureau.yaml:4: parent.password_env: environment variable HAZMON_TEST_NO_SUCH_PW is not set",
        "bureau.yaml:5: parent.cert_file: cert_file and key_file go together",
    ]
    got = _problems(
        tmp_path,
        head
        + """children:
  - {id: nj, region: {code: "320100", level: city}}
  - {id: nj, region: {code: "330100", level: city}}
""",
    )
    assert got == [
        "bureau.yaml:6: children[1].id: child id 'nj' given twice",
        "bureau.yaml:6: children[1].region: city 330100 is not inside this bureau's province 320000",
    ]
    got = _problems(tmp_path, head + "parent: {url: mqtt://nation.example}\n")
    assert got == ["bureau.yaml:4: parent.username: missing required key 'username'"]


def test_a_parent_section_loads(tmp_path: Path) -> None:
    f = tmp_path / "bureau.yaml"
    f.write_text(
        'id: js\nname: x\nregion: {code: "320000", level: province}\n'
        "parent: {url: mqtts://nation.example, username: js-province, batch: 50}\n"
        'children: [{id: nj-city, region: {code: "320100", level: city}}]\n'
    )
    cfg = load_config(f)
    assert cfg.parent is not None
    assert (cfg.parent.host, cfg.parent.port, cfg.parent.tls) == ("nation.example", 8883, True)
    assert (cfg.parent.sender_id, cfg.parent.batch) == ("hazmon-fed-js-province", 50)
    assert [(c.id, c.scope) for c in cfg.children] == [("nj-city", Scope("320100", "city"))]
