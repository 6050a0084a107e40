"""docker-compose.yml cannot run here (no Docker engine): check it against the repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hazmon.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_expected_services() -> None:
    assert set(SERVICES) == {"timescaledb", "mosquitto", "simulator", "hazmon", "grafana"}
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert SERVICES["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana-oss:11.")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_mounted_files_exist(name: str) -> None:
    for vol in SERVICES[name].get("volumes", []):
        src = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", vol).split(":")[0]  # compose's ${VAR:-default}
        if src.startswith("./"):
            assert (ROOT / src).exists(), f"{name}: mounts {src}, which is not in the repository"
        else:
            assert src in COMPOSE["volumes"], f"{name}: named volume {src} is not declared"


@pytest.mark.parametrize("name", ["hazmon", "simulator"])
def test_hazmon_commands_parse_and_name_existing_files(name: str) -> None:
    svc = SERVICES[name]
    build = svc["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    assert dockerfile.exists()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    args = build_parser().parse_args(svc["command"])  # an unknown command or option exits here
    assert getattr(args, "handler", None) is not None
    for a in svc["command"]:
        if a.endswith((".yaml", ".yml")):
            assert (ROOT / a).exists(), f"{name}: command names {a}, which is not in the repository"


def _container_ports(svc: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in svc.get("ports", [])}


def test_ports_match_what_the_services_listen_on() -> None:
    conf = (ROOT / "docker/mosquitto/mosquitto.conf").read_text()
    listener = int(re.search(r"^listener (\d+)", conf, re.M).group(1))  # type: ignore[union-attr]
    assert _container_ports(SERVICES["mosquitto"]) == {listener}
    sim_url = SERVICES["simulator"]["environment"]["HAZMON_DCS_URL"]
    assert sim_url == SERVICES["hazmon"]["environment"]["HAZMON_DCS_URL"]
    assert _container_ports(SERVICES["simulator"]) == {int(sim_url.split(":")[2].split("/")[0])}
    cfg = yaml.safe_load((ROOT / SERVICES["hazmon"]["command"][2]).read_text())
    assert cfg["http"]["host"] == "0.0.0.0"  # reachable through the published port
    assert _container_ports(SERVICES["hazmon"]) == {cfg["http"]["port"]}
    assert cfg["data_dir"] in {v.split(":")[1] for v in SERVICES["hazmon"]["volumes"]}
    assert _container_ports(SERVICES["timescaledb"]) == {5432}
    assert _container_ports(SERVICES["grafana"]) == {3000}
    gds = SERVICES["hazmon"]["environment"]["HAZMON_GDS_URL"]
    assert gds == f"mqtt://mosquitto:{listener}"


def test_mosquitto_keeps_queued_qos1_messages() -> None:
    conf = (ROOT / "docker/mosquitto/mosquitto.conf").read_text()
    assert re.search(r"^max_queued_messages 0$", conf, re.M)
    assert re.search(r"^persistence true$", conf, re.M)


def test_the_plant_file_reads_the_urls_compose_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    from hazmon.plant import load

    for k, v in SERVICES["hazmon"]["environment"].items():
        monkeypatch.setenv(k, str(v))
    plant = load(ROOT / "examples/plant.yaml")
    assert plant.opcua[0].url == "opc.tcp://simulator:4840/hazmon"
    assert plant.mqtt[0].url == "mqtt://mosquitto:1883"


def _mounts(svc: dict[str, Any], **env: str) -> dict[str, str]:
    """container path -> repository path, with compose's ${VAR:-default} expanded."""

    def expand(v: str) -> str:
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), v)

    return {expand(v).split(":")[1]: expand(v).split(":")[0] for v in svc["volumes"]}


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_grafana_mounts_what_its_provisioning_reads(locale: str) -> None:
    graf = SERVICES["grafana"]
    mounts = _mounts(graf, HAZMON_LOCALE=locale)
    dashboards = ROOT / mounts["/var/lib/grafana/dashboards/hazmon"]
    assert dashboards == ROOT / "grafana" / "dashboards" / locale
    providers = ROOT / mounts["/etc/grafana/provisioning/dashboards"] / "hazmon.yaml"
    for p in yaml.safe_load(providers.read_text())["providers"]:
        sub = p["options"]["path"].removeprefix("/var/lib/grafana/dashboards/hazmon/")
        assert list((dashboards / sub).glob("*.json")), f"provider {p['name']} finds no dashboard"
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dashboards / home.removeprefix("/var/lib/grafana/dashboards/hazmon/")).exists()
    ds = (ROOT / mounts["/etc/grafana/provisioning/datasources"] / "hazmon.yaml").read_text()
    for var in re.findall(r"\$\{(HAZMON_GRAFANA_\w+)\}", ds):
        assert var in graf["environment"], f"the data source reads {var}, which compose does not set"


def test_the_docker_daemon_config_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hazmon.config import load_config

    for k, v in SERVICES["hazmon"]["environment"].items():
        monkeypatch.setenv(k, str(v))
    src = ROOT / SERVICES["hazmon"]["command"][2]
    # a copy whose only change keeps the token file (created at load) out of /var/lib
    text = src.read_text().replace("/var/lib/hazmon/alarm-tokens.yaml", str(tmp_path / "tokens.yaml"))
    text = text.replace("../../examples/plant.yaml", str(ROOT / "examples/plant.yaml"))
    assert text.count(str(tmp_path)) == 1
    copy = tmp_path / "hazmon.yaml"
    copy.write_text(text)
    cfg, plant = load_config(copy)
    assert cfg.data_dir == "/var/lib/hazmon"
    assert cfg.alarms is not None
    assert plant.mqtt[0].url == "mqtt://mosquitto:1883"


def test_timescaledb_image_is_pinned_to_a_supported_version() -> None:
    from hazmon.store.migrate import timescaledb_supported

    tag = SERVICES["timescaledb"]["image"].split(":", 1)[1]
    m = re.fullmatch(r"(\d+\.\d+\.\d+)-pg(\d+)", tag)
    assert m, f"timescaledb image tag {tag!r} is not pinned to a version"
    assert timescaledb_supported(m.group(1))
    assert m.group(1) in (ROOT / "store" / "README.md").read_text()
    assert not timescaledb_supported("2.17.2") and timescaledb_supported("2.23.0-dev")
