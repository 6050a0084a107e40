"""The daemon config file (``hazmon.yaml``): which plant, which database, and one section per component.

::

    plant: plant.yaml           # the plant file, relative to this file
    data_dir: /var/lib/hazmon   # spool and registry cache live here
    instance: ""                # scale-out: appended to the MQTT client id (see collector/README.md)
    database: {dsn: ..., migrate: true, storage_mode: auto, retention_days: 400, assessments_refresh_s: 60,
               compress_after_days: 7, retention_1m_days: 730, retention_1h_days: 3650}
    http: {host: 127.0.0.1, port: 9108}
    collector: {...}            # hazmon.collector.parse_settings
    rules: {...}                # hazmon.rules.parse_settings
    alarms: {...}               # hazmon.alarms.parse_settings
    uplink: {...}               # hazmon.uplink.parse_settings (the bureau link; disabled by default)

Parsed once with `hazmon.plant.yamlnode`: every problem of the file (and of the
plant file it names) is reported as ``file:line: field.path: reason``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hazmon.alarms import AlarmSettings
from hazmon.alarms import parse_settings as parse_alarms
from hazmon.collector import CollectorSettings
from hazmon.collector import parse_settings as parse_collector
from hazmon.plant import Plant, load
from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, RETENTION_MIN_DAYS
from hazmon.plant.yamlnode import Node, opt, parse_file, port_problem, req
from hazmon.rules import RulesSettings
from hazmon.rules import parse_settings as parse_rules
from hazmon.store import StorageSettings, dsn_from_env
from hazmon.uplink import UplinkSettings
from hazmon.uplink import parse_settings as parse_uplink

__all__ = ["DaemonConfig", "DatabaseSettings", "HttpSettings", "load_config", "parse_config"]


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    dsn: str = ""  # "" -> $HAZMON_DSN, else the local default
    migrate: bool = True  # apply migrations and load the plant registry on start
    storage_mode: str = "auto"
    retention_days: int = RETENTION_DEFAULT_DAYS
    # assessment limit overrides are re-read this often, so a record added while the daemon
    # runs (`hazmon assessment add`) takes effect without a restart
    assessments_refresh_s: float = 60.0
    compress_after_days: int = 7  # TimescaleDB: readings and rollups compressed after this
    retention_1m_days: int = 0  # readings_1m kept this long (0: 730, never under retention_days)
    retention_1h_days: int = 0  # readings_1h kept this long (0: 3650, never under readings_1m's)

    def resolved_dsn(self) -> str:
        return self.dsn or dsn_from_env()

    def storage(self) -> StorageSettings:
        """The store's settings (raises ValueError when a rollup's retention is too short)."""
        return StorageSettings(
            self.retention_days,
            self.compress_after_days,
            self.storage_mode,
            self.retention_1m_days,
            self.retention_1h_days,
        )


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
    rules: RulesSettings | None = None  # None: the rules' defaults
    alarms: AlarmSettings | None = None  # None: the alarms' defaults
    alarms_enabled: bool = True  # `alarms: false`: this instance runs no alarm service (scale-out)
    uplink: UplinkSettings = field(default_factory=UplinkSettings)  # the bureau link (enabled: false)


def _dsn(n: Node) -> str | None:
    """A libpq connection string; in URL form its port must be 1-65535."""
    dsn = n.text()
    why = port_problem(dsn) if dsn is not None and "://" in dsn else None
    if why is not None:
        n.problem(why.replace(dsn or "", "the dsn"))  # not the password the URL may hold
        return None
    return dsn


def _database(n: Node) -> DatabaseSettings | None:
    m = n.mapping(
        {
            "dsn",
            "migrate",
            "storage_mode",
            "retention_days",
            "assessments_refresh_s",
            "compress_after_days",
            "retention_1m_days",
            "retention_1h_days",
        }
    )
    if m is None:
        return None
    d = DatabaseSettings()
    s = DatabaseSettings(
        opt(m, "dsn", _dsn, d.dsn),
        opt(m, "migrate", Node.flag, d.migrate),
        opt(m, "storage_mode", lambda x: x.choice(("auto", "plain", "timescaledb")), d.storage_mode),
        opt(m, "retention_days", lambda x: x.whole(RETENTION_MIN_DAYS), d.retention_days),
        opt(m, "assessments_refresh_s", lambda x: x.num(1.0), d.assessments_refresh_s),
        opt(m, "compress_after_days", lambda x: x.whole(1), d.compress_after_days),
        opt(m, "retention_1m_days", lambda x: x.whole(RETENTION_MIN_DAYS), d.retention_1m_days),
        opt(m, "retention_1h_days", lambda x: x.whole(RETENTION_MIN_DAYS), d.retention_1h_days),
    )
    try:
        s.storage()
    except ValueError as e:  # a rollup kept shorter than the data it summarizes
        key = str(e).split(":", 1)[0]
        m.get(key, n).problem(str(e).split(": ", 1)[-1])
    return s


def _http(n: Node) -> HttpSettings | None:
    m = n.mapping({"host", "port"})
    if m is None:
        return None
    d = HttpSettings()
    port = opt(m, "port", lambda x: x.whole(0), d.port)
    if port > 65535:
        m["port"].problem(f"must be <= 65535, got {port}")
    return HttpSettings(opt(m, "host", Node.text, d.host), port)


def parse_config(n: Node, base_dir: Path, create_files: bool = True) -> DaemonConfig | None:
    """The daemon config from the document's root node (problems recorded on ``n``).

    ``create_files=False`` (``hazmon run --check``): files the config would create when
    missing (the alarm API token file) are not created.
    """
    m = n.mapping(
        {"plant", "data_dir", "instance", "database", "http", "collector", "rules", "alarms", "uplink"}
    )
    if m is None:
        return None
    plant = req(m, "plant", n, Node.text)
    data_dir = opt(m, "data_dir", Node.text, "data")
    # each component parses its own section (problems recorded on the same document)
    rules = parse_rules(m["rules"]) if "rules" in m else None
    # `alarms: false` on every scale-out instance but one: one alarm service per plant,
    # or two would race on the same alarms and notify twice
    alarms_enabled = not (
        "alarms" in m and m["alarms"].node.tag.endswith(":bool") and m["alarms"].flag() is False
    )
    alarms = parse_alarms(m["alarms"], create_files) if "alarms" in m and alarms_enabled else None

    def rel(p: str) -> str:
        return str(p if os.path.isabs(p) else (base_dir / p))

    # every section is read before giving up, so one run reports every problem of the file
    instance = opt(m, "instance", lambda x: x.text(r"[A-Za-z0-9_.\-]*", "letters, digits, '_', '-', '.'"), "")
    database = opt(m, "database", _database, DatabaseSettings())
    http = opt(m, "http", _http, HttpSettings())
    collector = opt(m, "collector", parse_collector, CollectorSettings())
    uplink = opt(m, "uplink", parse_uplink, UplinkSettings())
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
        rules=rules,
        alarms=alarms,
        alarms_enabled=alarms_enabled,
        uplink=uplink,
    )


def load_config(path: str | Path, create_files: bool = True) -> tuple[DaemonConfig, Plant]:
    """The daemon config and the plant file it names, both checked.

    ``create_files=False`` checks without creating anything (see `parse_config`).

    Raises:
        hazmon.plant.ConfigError: every problem of the config file, or of the plant file.
    """
    p = Path(path)
    cfg = parse_file(p, lambda n: parse_config(n, p.parent, create_files))
    return cfg, load(cfg.plant_file)
