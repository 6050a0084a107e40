"""The daemon config file (``hazmon.yaml``): which plant, which database, and one section per component.

::

    plant: plant.yaml           # the plant file, relative to this file
    data_dir: /var/lib/hazmon   # spool and registry cache live here
    instance: ""                # scale-out: appended to the MQTT client id (see collector/README.md)
    database: {dsn: ..., migrate: true, storage_mode: auto, retention_days: 400}
    http: {host: 127.0.0.1, port: 9108}
    collector: {...}            # hazmon.collector.parse_settings
    rules: {...}                # hazmon.rules.parse_settings      (HOOK, see _COMPONENT_PARSERS)
    alarms: {...}               # hazmon.alarms.parse_settings     (HOOK, see _COMPONENT_PARSERS)

Parsed once with `hazmon.plant.yamlnode`: every problem of the file (and of the
plant file it names) is reported as ``file:line: field.path: reason``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hazmon.collector import CollectorSettings
from hazmon.collector import parse_settings as parse_collector
from hazmon.plant import Plant, load
from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, RETENTION_MIN_DAYS
from hazmon.plant.yamlnode import Node, opt, parse_file, req
from hazmon.store import dsn_from_env

__all__ = ["DaemonConfig", "DatabaseSettings", "HttpSettings", "load_config", "parse_config"]


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    dsn: str = ""  # "" -> $HAZMON_DSN, else the local default
    migrate: bool = True  # apply migrations and load the plant registry on start
    storage_mode: str = "auto"
    retention_days: int = RETENTION_DEFAULT_DAYS

    def resolved_dsn(self) -> str:
        return self.dsn or dsn_from_env()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 9108  # 0: pick a free port (tests); the bound port is logged and on Daemon.http_port


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    path: str
    plant_file: str
    data_dir: str
    instance: str = ""
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    collector: CollectorSettings = field(default_factory=CollectorSettings)
    rules: object | None = None  # what hazmon.rules.parse_settings returns, when that exists
    alarms: object | None = None  # what hazmon.alarms.parse_settings returns, when that exists
    sections_without_parser: tuple[str, ...] = ()  # given, but the component is not installed yet


# ---- HOOK POINT: component sections parsed by their own component -------------------------
# Each entry: section name -> module whose `parse_settings(node: Node) -> Settings | None`
# parses it (recording problems on the node, like hazmon.collector.parse_settings). While the
# module has no parse_settings yet, the section is optional and is kept unparsed (the daemon
# logs that it is ignored).
_COMPONENT_PARSERS: dict[str, str] = {
    "rules": "hazmon.rules",
    "alarms": "hazmon.alarms",
}


def _component_parser(section: str) -> Callable[[Node], object | None] | None:
    mod = importlib.import_module(_COMPONENT_PARSERS[section])
    fn = getattr(mod, "parse_settings", None)
    return fn if callable(fn) else None


def _database(n: Node) -> DatabaseSettings | None:
    m = n.mapping({"dsn", "migrate", "storage_mode", "retention_days"})
    if m is None:
        return None
    d = DatabaseSettings()
    return DatabaseSettings(
        opt(m, "dsn", Node.text, d.dsn),
        opt(m, "migrate", Node.flag, d.migrate),
        opt(m, "storage_mode", lambda x: x.choice(("auto", "plain", "timescaledb")), d.storage_mode),
        opt(m, "retention_days", lambda x: x.whole(RETENTION_MIN_DAYS), d.retention_days),
    )


def _http(n: Node) -> HttpSettings | None:
    m = n.mapping({"host", "port"})
    if m is None:
        return None
    d = HttpSettings()
    port = opt(m, "port", lambda x: x.whole(0), d.port)
    if port > 65535:
        m["port"].problem(f"must be <= 65535, got {port}")
    return HttpSettings(opt(m, "host", Node.text, d.host), port)


def parse_config(n: Node, base_dir: Path) -> DaemonConfig | None:
    """The daemon config from the document's root node (problems recorded on ``n``)."""
    m = n.mapping({"plant", "data_dir", "instance", "database", "http", "collector", *_COMPONENT_PARSERS})
    if m is None:
        return None
    plant = req(m, "plant", n, Node.text)
    data_dir = opt(m, "data_dir", Node.text, "data")
    extra: dict[str, object | None] = {}
    unparsed: list[str] = []
    for section in _COMPONENT_PARSERS:
        if section not in m:
            extra[section] = None
            continue
        parser = _component_parser(section)
        if parser is None:
            unparsed.append(section)
            extra[section] = None
        else:
            extra[section] = parser(m[section])

    def rel(p: str) -> str:
        return str(p if os.path.isabs(p) else (base_dir / p))

    # every section is read before giving up, so one run reports every problem of the file
    instance = opt(m, "instance", lambda x: x.text(r"[A-Za-z0-9_.\-]*", "letters, digits, '_', '-', '.'"), "")
    database = opt(m, "database", _database, DatabaseSettings())
    http = opt(m, "http", _http, HttpSettings())
    collector = opt(m, "collector", parse_collector, CollectorSettings())
    if plant is None:
        return None
    return DaemonConfig(
        path=str(n.ctx.file),
        plant_file=rel(plant),
        data_dir=rel(data_dir),
        instance=instance,
        database=database,
        http=http,
        collector=collector,
        rules=extra["rules"],
        alarms=extra["alarms"],
        sections_without_parser=tuple(unparsed),
    )


def load_config(path: str | Path) -> tuple[DaemonConfig, Plant]:
    """The daemon config and the plant file it names, both checked.

    Raises:
        hazmon.plant.ConfigError: every problem of the config file, or of the plant file.
    """
    p = Path(path)
    cfg = parse_file(p, lambda n: parse_config(n, p.parent))
    return cfg, load(cfg.plant_file)
