"""The generated dashboards against Grafana's dashboard model and the provisioning."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hazmon.cli import main
from hazmon.grafana.build import ALL_BOARDS, BOARDS, BUREAU_BOARDS, DEFAULT_OUT, check, render, render_json
from hazmon.grafana.common import SCHEMA_VERSION
from hazmon.grafana.queries import DEFAULT_MIN_INTERVAL
from hazmon.grafana.texts import _T, LOCALES

ROOT = Path(__file__).resolve().parents[2]
PROVISIONING = ROOT / "grafana" / "provisioning"
BUREAU_PROVISIONING = PROVISIONING / "bureau-platform"  # a bureau's Grafana (the bureau daemon's database)
# Panel types shipped with Grafana 10/11 that the dashboards use.
CORE_PANEL_TYPES = {"stat", "table", "timeseries", "bargauge"}


def _datasources(folder: Path = PROVISIONING) -> dict[str, str]:
    name = "hazmon.yaml" if folder == PROVISIONING else "hazmon-bureau.yaml"
    doc = yaml.safe_load((folder / "datasources" / name).read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    return {d["uid"]: d["type"] for d in doc["datasources"]}


def _models() -> list[tuple[str, str, dict[str, Any]]]:
    return [(loc, b.folder, render_json(b, loc)) for loc in LOCALES for b in ALL_BOARDS]


def _refs(model: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every data source reference in a dashboard: panels, targets, variables, annotations."""
    out: list[tuple[str, Any]] = []
    for p in model["panels"]:
        out.append((f"panel {p['id']}", p.get("datasource")))
        out += [(f"panel {p['id']} target {t['refId']}", t.get("datasource")) for t in p["targets"]]
    out += [(f"variable {v['name']}", v.get("datasource")) for v in model["templating"]["list"]]
    out += [(f"annotation {a['name']}", a.get("datasource")) for a in model["annotations"]["list"]]
    return out


@pytest.mark.parametrize(
    ("locale", "folder", "model"), _models(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_dashboard_model(locale: str, folder: str, model: dict[str, Any]) -> None:
    assert model["schemaVersion"] == SCHEMA_VERSION
    assert re.fullmatch(r"[a-z0-9-]{1,40}", model["uid"])
    assert model["title"]
    assert model["rows"] == [], "panels only (rows are the pre-5 model)"
    ids = [p["id"] for p in model["panels"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], int] = {}
    for p in model["panels"]:
        assert p["type"] in CORE_PANEL_TYPES, p["type"]
        assert p["title"], p["id"]
        g = p["gridPos"]
        assert g["w"] >= 1 and g["x"] >= 0 and g["x"] + g["w"] <= 24, (p["id"], g)
        assert g["h"] >= 1 and g["y"] >= 0, (p["id"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['id']} overlaps panel {cells[(x, y)]} at {(x, y)}"
                cells[(x, y)] = p["id"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["rawSql"].strip()
            assert t["format"] in ("table", "time_series")
    # a plant board reads the plant's data source, a bureau platform board the bureau's
    ds = _datasources(BUREAU_PROVISIONING if folder == "bureau-platform" else PROVISIONING)
    for where, ref in _refs(model):
        assert isinstance(ref, dict), f"{where}: data source must be a {{type, uid}} reference"
        assert ref.get("uid") in ds, f"{where}: data source uid {ref.get('uid')} is not provisioned"
        assert ds[ref["uid"]] == ref.get("type"), f"{where}: type differs from the provisioned one"
    # every $variable a query uses is defined by the dashboard (or is a Grafana built-in)
    defined = {v["name"] for v in model["templating"]["list"]}
    sqls = [t["rawSql"] for p in model["panels"] for t in p["targets"]]
    sqls += [v["query"] for v in model["templating"]["list"]]
    sqls += [a["target"]["rawSql"] for a in model["annotations"]["list"]]
    for sql in sqls:
        for name in re.findall(r"\$(\w+)", sql):
            assert name.startswith("__") or name in defined, f"${name} is not a variable of {model['uid']}"


def test_locales_differ_only_in_texts() -> None:
    for b in ALL_BOARDS:
        zh, en = render_json(b, "zh"), render_json(b, "en")
        assert [p["id"] for p in zh["panels"]] == [p["id"] for p in en["panels"]]
        assert [p["gridPos"] for p in zh["panels"]] == [p["gridPos"] for p in en["panels"]]
        assert zh["uid"] == en["uid"]
        assert zh["title"] != en["title"]


def test_every_text_has_both_languages() -> None:
    for key, (zh, en) in _T.items():
        assert zh.strip() and en.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or zh.isupper() or key.startswith("limit"), key


def test_committed_json_matches_a_fresh_build() -> None:
    problems = check(DEFAULT_OUT)
    assert problems == [], "run `hazmon grafana build` and commit grafana/dashboards"


def test_check_catches_hand_edits_and_strays(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    assert main(["grafana", "build", "--out", str(out)]) == 0
    assert main(["grafana", "build", "--check", "--out", str(out)]) == 0
    victim = out / "zh" / "control-room" / "overview.json"
    victim.write_text(victim.read_text(encoding="utf-8").replace("控制室总览", "控制室"), encoding="utf-8")
    (out / "en" / "bureau" / "old.json").write_text("{}", encoding="utf-8")
    problems = check(out)
    assert len(problems) == 2
    assert "overview.json: differs from a fresh build" in problems[0]
    assert "old.json: not produced by the build" in problems[1]
    assert main(["grafana", "build", "--check", "--out", str(out)]) == 1
    shutil.rmtree(out / "zh")
    assert any("missing" in p for p in check(out))
    assert main(["grafana", "build", "--out", str(out)]) == 0
    assert check(out) == []


def test_build_is_deterministic() -> None:
    assert render() == render()


def test_provisioning_dashboards_cover_every_folder() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "hazmon.yaml").read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    paths = {p["options"]["path"].rsplit("/", 1)[1] for p in doc["providers"]}
    assert paths == {b.folder for b in BOARDS}
    assert len({p["folderUid"] for p in doc["providers"]}) == len(doc["providers"])
    for p in doc["providers"]:
        assert p["type"] == "file" and p["allowUiUpdates"] is False


def test_datasource_credentials_come_from_the_environment() -> None:
    text = (PROVISIONING / "datasources" / "hazmon.yaml").read_text(encoding="utf-8")
    d = yaml.safe_load(text)["datasources"][0]
    assert d["jsonData"]["timescaledb"] is True
    # the tests expand $__interval with the same minimum interval Grafana will use
    assert d["jsonData"]["timeInterval"] == DEFAULT_MIN_INTERVAL
    assert d["secureJsonData"]["password"] == "${HAZMON_GRAFANA_DB_PASSWORD}"
    assert d["user"] == "${HAZMON_GRAFANA_DB_USER}"
    assert d["jsonData"]["database"] == "${HAZMON_GRAFANA_DB_NAME}"
    assert "password" not in d and "secureJsonData" in d


def test_generated_files_are_under_locale_and_folder() -> None:
    assert sorted(render()) == sorted(
        f"{loc}/{b.folder}/{b.name}.json" for loc in LOCALES for b in ALL_BOARDS
    )


def test_bureau_platform_provisioning() -> None:
    """A bureau's Grafana: its own data source and one provider for the bureau platform's folder."""
    doc = yaml.safe_load(
        (BUREAU_PROVISIONING / "dashboards" / "hazmon-bureau.yaml").read_text(encoding="utf-8")
    )
    assert doc["apiVersion"] == 1
    assert {b.folder for b in BUREAU_BOARDS} == {"bureau-platform"}
    (p,) = doc["providers"]
    assert p["type"] == "file" and p["allowUiUpdates"] is False
    assert p["options"]["path"] == "/var/lib/grafana/dashboards/hazmon-bureau"
    plant = yaml.safe_load((PROVISIONING / "dashboards" / "hazmon.yaml").read_text(encoding="utf-8"))
    assert p["folderUid"] not in {q["folderUid"] for q in plant["providers"]}
    text = (BUREAU_PROVISIONING / "datasources" / "hazmon-bureau.yaml").read_text(encoding="utf-8")
    (d,) = yaml.safe_load(text)["datasources"]
    assert d["uid"] == "hazmon-bureau-pg" and d["uid"] not in _datasources()
    assert d["jsonData"]["timeInterval"] == DEFAULT_MIN_INTERVAL
    assert d["secureJsonData"]["password"] == "${HAZMON_BUREAU_GRAFANA_DB_PASSWORD}"
    assert d["user"] == "${HAZMON_BUREAU_GRAFANA_DB_USER}"
    assert d["jsonData"]["database"] == "${HAZMON_BUREAU_GRAFANA_DB_NAME}"
    assert "password" not in d
