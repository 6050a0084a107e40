"""Each broken plant file is its own small file with its exact message (file:line: path: reason)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hazmon.plant import ConfigError, load, loads
from hazmon.plant.standards import Grade

BROKEN = Path(__file__).parent / "broken"
BASE = (BROKEN / "_base.yaml.txt").read_text(encoding="utf-8")

CASES: dict[str, list[str]] = {
    "unknown_key": [
        "28: hazard_sources[0].sensors[0].colour: unknown key 'colour' (allowed: binding, chemical, "
        "description, equipment, key, kind, limits, period_s, position, range, tag, unit)"
    ],
    "wrong_type": ["13: hazard_sources[0].people_within_500m: expected a whole number, got text 'many'"],
    "duplicate_tag": ["31: hazard_sources[0].sensors[1].tag: duplicate tag 'LT-1' (first at line 23)"],
    "limit_outside_range": [
        "30: hazard_sources[0].sensors[0].limits.hh: limit 2.6 is outside the measuring range [0, 2.4]"
    ],
    "limits_out_of_order": ["30: hazard_sources[0].sensors[0].limits.h: h (1.9) must be below hh (1.8)"],
    "unknown_chemical": [
        "15: hazard_sources[0].chemicals[0].chemical: unknown chemical 'unobtainium' "
        "(use a hazmon id or CAS number of hazmon.plant.standards, or give its GB 18218-2018 Table 2 "
        "category with q_t and beta)"
    ],
    "undeclared_endpoint": [
        "37: hazard_sources[0].sensors[1].binding.endpoint: endpoint 'scada' is not declared under "
        "endpoints.opcua or endpoints.mqtt"
    ],
    "unit_for_kind": [
        "25: hazard_sources[0].sensors[0].unit: unit 'ppm' is not valid for a level sensor (use one of: %, m, mm)"
    ],
    "missing_key": ["31: hazard_sources[0].sensors[1].period_s: missing required key 'period_s'"],
    "bad_region_code": ["4: enterprise.region.code: '32011' is not a 6-digit region code"],
    "range_inverted": ["26: hazard_sources[0].sensors[0].range: range low (2.4) must be below high (0)"],
    "negative_quantity": ["15: hazard_sources[0].chemicals[0].max_t: must be > 0, got -3"],
    "opcua_field_on_mqtt": [
        "37: hazard_sources[0].sensors[1].binding.node: 'node' is for OPC UA bindings; endpoint 'gds' is MQTT"
    ],
    "bad_node_id": [
        "29: hazard_sources[0].sensors[0].binding.node: 'LT-1' is not an OPC UA node id (ns=2;s=...)"
    ],
    "gas_without_chemical": [
        "31: hazard_sources[0].sensors[1].chemical: a gas_toxic sensor needs 'chemical' (the gas it detects)"
    ],
    "undeclared_equipment": [
        "23: hazard_sources[0].sensors[0].equipment: equipment 'V-9' is not declared in this hazard source"
    ],
    "duplicate_endpoint": [
        "9: endpoints.mqtt[0].name: endpoint name 'dcs' is used twice (first at line 7)",
        "37: hazard_sources[0].sensors[1].binding.endpoint: endpoint 'gds' is not declared under "
        "endpoints.opcua or endpoints.mqtt",
    ],
    "bad_url": ["7: endpoints.opcua[0].url: 'http://127.0.0.1/x' is not an opc.tcp:// URL"],
    "not_yaml": ["13: (file): not valid YAML: expected ',' or ']', but got ':'"],
    "missing_responsible": [
        "17: hazard_sources[0].responsible.operational: missing required key 'operational'"
    ],
    # a plant file saved on a Chinese Windows machine: GBK, not UTF-8
    "gbk_encoded": [
        "3: (file): not UTF-8: byte 0xb2 at column 9 (byte offset 34); it reads as GBK (GB18030), as saved "
        "on a Chinese Windows machine: convert it with `iconv -f GBK -t UTF-8 gbk_encoded.yaml > "
        "gbk_encoded.utf8.yaml` and use that file"
    ],
    "nul_character": [
        "13: (file): a NUL character (U+0000) at column 26: not a text file? (a YAML file is UTF-8 text; "
        "UTF-16 files are full of NULs)"
    ],
    "deep_nesting": ["38: (file): nested too deeply (more than 64 levels)"],
    "infinite_quantity": ["15: hazard_sources[0].chemicals[0].max_t: expected a finite number, got '.inf'"],
    "port_out_of_range": [
        "9: endpoints.mqtt[0].url: port 99999 in 'mqtt://127.0.0.1:99999' is not a TCP port (1-65535)"
    ],
    "duplicate_mqtt_binding": [
        "36: hazard_sources[0].sensors[1].binding.topic: MQTT topic 'plant/cl2/AT-1' and field 'v' of endpoint "
        "'gds' is already bound to sensor 'AT-0' (line 23): only payload: batch topics carry several sensors"
    ],
    "duplicate_opcua_node": [
        "37: hazard_sources[0].sensors[1].binding.node: OPC UA node 'ns=2;s=LT-1' of endpoint 'dcs' is already "
        "bound to sensor 'LT-1' (line 23): one node feeds one sensor"
    ],
    "toxic_without_limits_data": [
        "36: hazard_sources[0].sensors[1].chemical: 'hydrogen' has no OEL or IDLH: give limits explicitly"
    ],
}


def test_every_broken_file_has_a_case() -> None:
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(CASES)
    assert len(CASES) >= 15


def test_base_of_the_broken_files_is_valid() -> None:
    plant = loads(BASE, "base.yaml")
    assert [s.tag for s in plant.sensors()] == ["LT-1", "AT-1"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_file_reports_exact_message(name: str) -> None:
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(ConfigError) as e:
        load(path)
    assert [str(p) for p in e.value.problems] == [f"{path}:{m}" for m in CASES[name]]


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = (
        BASE.replace("    people_within_500m: 120", "    people_within_500m: many")
        .replace("{hh: 2.0, h: 1.9,", "{hh: 2.6, h: 1.9,")
        .replace("      - tag: AT-1", "      - tag: LT-1")
    )
    with pytest.raises(ConfigError) as e:
        loads(text, "multi.yaml")
    assert [str(p) for p in e.value.problems] == [
        "multi.yaml:13: hazard_sources[0].people_within_500m: expected a whole number, got text 'many'",
        "multi.yaml:30: hazard_sources[0].sensors[0].limits.hh: limit 2.6 is outside the measuring range [0, 2.4]",
    ]  # the hazard source itself could not be built, so its tags are not compared


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"empty.yaml:1: \(file\): the file is empty"):
        load(empty)
    with pytest.raises(ConfigError, match=r"missing.yaml:0: \(file\): cannot read: No such file"):
        load(tmp_path / "missing.yaml")


def test_hazmon_check_prints_problems_and_fails() -> None:
    path = BROKEN / "duplicate_tag.yaml"
    r = subprocess.run([sys.executable, "-m", "hazmon", "check", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{path}:31: hazard_sources[0].sensors[1].tag: duplicate tag 'LT-1' (first at line 23)" in r.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "hazmon", "check", "examples/plant.yaml"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert ok.returncode == 0, ok.stderr
    assert "3 hazard sources, 43 sensors" in ok.stdout


def test_example_plant_is_realistic(example_plant: object) -> None:
    from hazmon.plant import Plant, SensorKind

    assert isinstance(example_plant, Plant)
    sensors = example_plant.sensors()
    assert len(sensors) >= 40
    kinds = {s.kind for s in sensors}
    assert {
        SensorKind.LEVEL,
        SensorKind.TEMPERATURE,
        SensorKind.PRESSURE,
        SensorKind.GAS_TOXIC,
        SensorKind.GAS_COMBUSTIBLE,
    } <= kinds
    assert {hs.id for hs in example_plant.hazard_sources} == {"cl2-tankfarm", "lpg-spheres", "meoh-tankfarm"}


def test_endpoint_urls_take_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    text = BASE.replace(
        '"opc.tcp://127.0.0.1:4840/x"', '"${HZ_TEST_DCS:-opc.tcp://127.0.0.1:4840/x}"'
    ).replace('"mqtt://127.0.0.1:1883"', '"${HZ_TEST_GDS}"')
    monkeypatch.delenv("HZ_TEST_DCS", raising=False)
    monkeypatch.setenv("HZ_TEST_GDS", "mqtt://mosquitto:1883")
    p = loads(text, "env.yaml")
    assert (p.opcua[0].url, p.mqtt[0].url) == ("opc.tcp://127.0.0.1:4840/x", "mqtt://mosquitto:1883")
    monkeypatch.delenv("HZ_TEST_GDS")
    with pytest.raises(ConfigError) as e:
        loads(text, "env.yaml")
    assert [str(x) for x in e.value.problems] == [
        "env.yaml:9: endpoints.mqtt[0].url: environment variable HZ_TEST_GDS is not set and has no default "
        "(${NAME:-default})"
    ]


def test_plant_file_overrides_the_tier_table() -> None:
    from hazmon.plant.standards import TIER_TABLE, Grade, Level, Tier

    assert loads(BASE, "t.yaml").tiers == TIER_TABLE
    p = loads(BASE + "tiers:\n  first: {2: orange}\n  fault: {1: orange}\n", "t.yaml")
    assert p.tiers[Level.FIRST][Grade.TWO] is Tier.ORANGE
    assert p.tiers[Level.FAULT][Grade.ONE] is Tier.ORANGE
    assert p.tiers[Level.SECOND] == TIER_TABLE[Level.SECOND]
    assert TIER_TABLE[Level.FIRST][Grade.TWO] is Tier.YELLOW  # the cited table itself is untouched
    with pytest.raises(ConfigError) as e:
        loads(BASE + "tiers:\n  first: {5: purple}\n", "t.yaml")
    assert [str(x) for x in e.value.problems] == [
        "t.yaml:39: tiers.first.5: unknown key '5' (allowed: 1, 2, 3, 4)",
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (".inf", "expected a finite number, got '.inf'"),
        ("-.inf", "expected a finite number, got '-.inf'"),
        (".nan", "expected a finite number, got '.nan'"),
        ("-3", "must be > 0, got -3"),
    ],
)
def test_quantity_must_be_finite_and_positive(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads(BASE.replace("max_t: 30", f"max_t: {value}"), "q.yaml")
    assert [str(p) for p in e.value.problems] == [f"q.yaml:15: hazard_sources[0].chemicals[0].max_t: {reason}"]


def test_batch_sensors_share_a_topic_but_not_with_a_single_sensor() -> None:
    batch = BASE.replace(
        'binding: {endpoint: dcs, node: "ns=2;s=LT-1"}', "binding: {endpoint: gds, topic: plant/b, payload: batch}"
    ).replace("binding: {endpoint: gds, topic: plant/cl2/AT-1}", "binding: {endpoint: gds, topic: plant/b, payload: batch}")
    assert [s.tag for s in loads(batch, "b.yaml").sensors()] == ["LT-1", "AT-1"]
    mixed = batch.replace(
        "binding: {endpoint: gds, topic: plant/b, payload: batch}\n        limits",
        "binding: {endpoint: gds, topic: plant/b}\n        limits",
    )
    with pytest.raises(ConfigError) as e:
        loads(mixed, "b.yaml")
    assert [str(p) for p in e.value.problems] == [
        "b.yaml:37: hazard_sources[0].sensors[1].binding.topic: MQTT topic 'plant/b' of endpoint 'gds' is "
        "already bound to sensor 'LT-1' (line 23): only payload: batch topics carry several sensors"
    ]
    # the same topic on another broker is another topic
    other = BASE.replace(
        '    - {name: gds, url: "mqtt://127.0.0.1:1883"}',
        '    - {name: gds, url: "mqtt://127.0.0.1:1883"}\n    - {name: gds2, url: "mqtt://127.0.0.1:1884"}',
    ).replace('binding: {endpoint: dcs, node: "ns=2;s=LT-1"}', "binding: {endpoint: gds2, topic: plant/cl2/AT-1}")
    assert len(loads(other, "o.yaml").sensors()) == 2


@pytest.mark.parametrize(
    ("chemicals", "problems"),
    [
        # a flammable gas Table 1 does not name: W2, Q 10 t, β 1.5 (verified)
        ("{chemical: 某中间体, category: W2, q_t: 10, beta: 1.5, max_t: 20}", []),
        (
            "{chemical: 某中间体, category: W2, q_t: 20, beta: 1.5, max_t: 20}",
            ["15: hazard_sources[0].chemicals[0].q_t: GB 18218-2018 gives Q (Table 2) = 10 t for W2 "
             "(易燃气体，类别1和类别2), got 20"],
        ),
        (
            "{chemical: 某中间体, category: W2, q_t: 10, beta: 1, max_t: 20}",
            ["15: hazard_sources[0].chemicals[0].beta: GB 18218-2018 gives β (Table 4) = 1.5 for W2 "
             "(易燃气体，类别1和类别2), got 1"],
        ),
        (
            "{chemical: 某中间体, category: Z1, q_t: 10, beta: 1, max_t: 20}",
            ["15: hazard_sources[0].chemicals[0].category: 'Z1' is not a GB 18218-2018 Table 2 category (one of: "
             "J1, J2, J3, J4, J5, W1.1, W1.2, W1.3, W2, W3, W4, W5.1, W5.2, W5.3, W5.4, W6.1, W6.2, W7.1, W7.2, "
             "W8, W9.1, W9.2, W10, W11)"],
        ),
        (
            "{chemical: 某中间体, category: W2, beta: 1.5, max_t: 20}",
            ["15: hazard_sources[0].chemicals[0].q_t: missing required key 'q_t'"],
        ),
        (
            "{chemical: chlorine, q_t: 10, max_t: 20}",
            ["15: hazard_sources[0].chemicals[0].q_t: 'chlorine' is in hazmon.plant.standards, which gives its "
             "Q and β: remove q_t"],
        ),
    ],
)
def test_a_chemical_outside_the_table_is_graded_by_its_category(chemicals: str, problems: list[str]) -> None:
    from hazmon.plant import grade_source

    text = BASE.replace("{chemical: chlorine, max_t: 30}", chemicals)
    if problems:
        with pytest.raises(ConfigError) as e:
            loads(text, "c.yaml")
        assert [str(p) for p in e.value.problems] == [f"c.yaml:{p}" for p in problems]
        return
    hs = loads(text, "c.yaml").hazard_sources[0]
    c = hs.inventory[0].chemical
    assert (c.id, c.q_t, c.beta, c.category, c.grading_verified) == ("某中间体", 10.0, 1.5, "W2", True)
    g = grade_source(hs)  # S = 20/10 = 2; R = 2.0 · 1.5 · 2 = 6 -> 四级
    assert (g.s, g.r, g.grade) == (2.0, 6.0, Grade.FOUR)


def test_an_unverified_category_q_is_taken_from_the_file_and_flagged() -> None:
    from hazmon.plant import grade_source

    # W5.3's Q (1000 t) is transcribed unverified: the file's Q is used, the grading flagged
    text = BASE.replace("{chemical: chlorine, max_t: 30}", "{chemical: 某溶剂, category: W5.3, q_t: 1000, beta: 1, max_t: 2000}")
    g = grade_source(loads(text, "c.yaml").hazard_sources[0])
    assert (g.s, g.r, g.grade, g.verified) == (2.0, 4.0, Grade.FOUR, False)


@pytest.mark.parametrize(
    ("escape", "reason"),
    [
        ("\\0", "contains a NUL character (U+0000) at position 2"),
        ("\\ud800", "contains a lone surrogate (U+D800) at position 2: not Unicode text"),
    ],
)
def test_an_escaped_nul_or_surrogate_is_refused(escape: str, reason: str) -> None:
    # the YAML escape gets past the reader; PostgreSQL (`db load`) could not store it
    with pytest.raises(ConfigError) as e:
        loads(BASE.replace("name: 液氯储罐区", f'name: "液氯{escape}储罐区"'), "n.yaml")
    assert [str(p) for p in e.value.problems] == [f"n.yaml:12: hazard_sources[0].name: {reason}"]
