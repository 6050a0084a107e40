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
    console: {...}              # hazmon.console.config (web console users and sessions)
    weather: {...}              # hazmon.weather.settings (inbox, polled URL; weather/README.md)

Parsed once with `hazmon.plant.yamlnode` (the database and http sections are pydantic
dataclasses read with `hazmon.plant.yamlmodel`): every problem of the file (and of the
plant file it names) is reported as ``file:line: field.path: reason``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.alarms import AlarmSettings
from hazmon.alarms import parse_settings as parse_alarms
from hazmon.collector import CollectorSettings
from hazmon.collector import parse_settings as parse_collector
from hazmon.console.config import ConsoleSettings
from hazmon.console.config import parse_settings as parse_console
from hazmon.plant import Plant, load
from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, RETENTION_MIN_DAYS
from hazmon.plant.yamlmodel import SECTION, Flag, Number, Whole, YText, check, choice, from_file, validate
from hazmon.plant.yamlnode import Node, opt, parse_file, port_problem, req
from hazmon.rules import RulesSettings
from hazmon.rules import parse_settings as parse_rules
from hazmon.store import StorageSettings, dsn_from_env
from hazmon.uplink import UplinkSettings
from hazmon.uplink import parse_settings as parse_uplink
from hazmon.weather.settings import WeatherSettings

__all__ = ["DaemonConfig", "DatabaseSettings", "HttpSettings", "load_config", "parse_config"]


def _dsn(dsn: str) -> str:
    """A libpq connection string; in URL form its port must be 1-65535."""
    why = port_problem(dsn) if "://" in dsn else None
    if why is not None:
        raise ValueError(why.replace(dsn, "the dsn"))  # not the password the URL may hold
    return dsn


Days = Annotated[Whole, Field(ge=RETENTION_MIN_DAYS)]


def _rollup_days(v: int, info: ValidationInfo) -> int:
    # 0 is the default ("the standard retention"); a file that writes a number writes a real one
    if v < RETENTION_MIN_DAYS and (v != 0 or from_file(info)):
        raise ValueError(f"must be >= {RETENTION_MIN_DAYS}, got {v}")
    return v


RollupDays = Annotated[Whole, AfterValidator(_rollup_days)]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class DatabaseSettings:
    dsn: Annotated[YText, AfterValidator(_dsn)] = ""  # "" -> $HAZMON_DSN, else the local default
    migrate: Flag = True  # apply migrations and load the plant registry on start
    storage_mode: Annotated[YText, BeforeValidator(choice("auto", "plain", "timescaledb"))] = "auto"
    retention_days: Days = RETENTION_DEFAULT_DAYS
    # assessment limit overrides are re-read this often, so a record added while the daemon
    # runs (`hazmon assessment add`) takes effect without a restart
    assessments_refresh_s: Annotated[Number, Field(ge=1)] = 60.0
    compress_after_days: Annotated[Whole, Field(ge=1)] = (
        7  # TimescaleDB: readings and rollups compressed after this
    )
    retention_1m_days: RollupDays = 0  # readings_1m kept this long (0: 730, never under retention_days)
    retention_1h_days: RollupDays = 0  # readings_1h kept this long (0: 3650, never under readings_1m's)

    @model_validator(mode="after")
    def _rollups_outlive_readings(self) -> DatabaseSettings:
        try:
            self.storage()
        except ValueError as e:  # a rollup kept shorter than the data it summarizes
            key, _, reason = str(e).partition(": ")
            check(((key,), reason or key))
        return self

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


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class HttpSettings:
    host: YText = "127.0.0.1"
    # 0: pick a free port (tests); the bound port is logged and on Daemon.http_port
    port: Annotated[Whole, Field(ge=0, le=65535)] = 9108


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
    console: ConsoleSettings = field(default_factory=ConsoleSettings)  # the web console (hazmon.console)
    weather: WeatherSettings = field(default_factory=WeatherSettings)  # warnings: inbox, polled URL


def parse_config(n: Node, base_dir: Path, create_files: bool = True) -> DaemonConfig | None:
    """The daemon config from the document's root node (problems recorded on ``n``).

    ``create_files=False`` (``hazmon run --check``): files the config would create when
    missing (the alarm API token file) are not created.
    """
    m = n.mapping(
        {
            "plant",
            "data_dir",
            "instance",
            "database",
            "http",
            "collector",
            "rules",
            "alarms",
            "uplink",
            "console",
            "weather",
        }
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
    database = opt(m, "database", lambda x: validate(x, DatabaseSettings), DatabaseSettings())
    http = opt(m, "http", lambda x: validate(x, HttpSettings), HttpSettings())
    collector = opt(m, "collector", parse_collector, CollectorSettings())
    uplink = opt(m, "uplink", parse_uplink, UplinkSettings())
    console = opt(m, "console", parse_console, ConsoleSettings())
    weather = opt(m, "weather", lambda x: validate(x, WeatherSettings), WeatherSettings())
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
        console=console,
        weather=replace(weather, inbox=rel(weather.inbox)) if weather.inbox else weather,
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
