"""Recordings: a stream of readings saved to a compressed file, and played back.

Format (version 2): a gzip-compressed UTF-8 text file. The first line is a JSON
header; every further line is one reading, tab-separated::

    {"format": "hazmon-recording", "version": 2, "enterprise": "hx-chem", "source": "simulator",
     "scenario": "normal", "seed": 1, "start_us": 1780000000000000, "end_us": 1780003600000000}
    1780000001000000<TAB>LT-101<TAB>1.2345<TAB>0

(µs since the epoch, tag, value as Python repr, quality 0/1/2), in time order,
or an endpoint outage (an OPC UA server restart, an MQTT broker disconnect)::

    1780000600000000<TAB>#outage<TAB>dcs<TAB>down
    1780000660000000<TAB>#outage<TAB>dcs<TAB>up

(``#`` cannot start a tag). From a ``down`` line on the endpoint is away, until
its ``up`` line; `Replay` plays both back, so a replay stops and restarts the
servers where the recorded run did. Version 1 files (readings only) are read
as before. ``zcat FILE | head`` shows it; lines are appended as the stream goes,
so a recording cut short by a crash is still readable up to the last whole line.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

import psycopg

from hazmon.plant.reading import Quality, Reading
from hazmon.simulators.engine import OutageChange

__all__ = [
    "FORMAT",
    "RecordingError",
    "RecordingWriter",
    "Replay",
    "db_readings",
    "read_header",
    "read_outages",
    "read_recording",
    "steps_of",
]

FORMAT = "hazmon-recording"
VERSION = 2
_READABLE = (1, 2)
_OUTAGE = "#outage"


class RecordingError(Exception):
    """The file is not a hazmon recording, or a line of it is damaged."""


class RecordingWriter:
    """Write readings to a recording file (a context manager)."""

    def __init__(self, path: str | Path, header: dict[str, object]) -> None:
        self.path = Path(path)
        self._f: IO[str] = gzip.open(self.path, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115 - closed by close()
        self._f.write(json.dumps({"format": FORMAT, "version": VERSION, **header}, ensure_ascii=False) + "\n")
        self.count = 0
        self.outages = 0

    def write(self, readings: Iterable[Reading], outages: Iterable[OutageChange] = ()) -> None:
        """Append a step's readings (time-ordered) and the outage changes of the same step.

        Each change goes after the readings up to its time, before the later ones.
        """
        lines = [f"{r.ts_us}\t{r.tag}\t{float(r.value)!r}\t{int(r.quality)}\n" for r in readings]
        self.count += len(lines)
        changes = sorted(outages, key=lambda c: c.ts_us)
        if changes:
            stamps = [int(line.split("\t", 1)[0]) for line in lines]
            at = 0
            merged: list[str] = []
            for c in changes:
                while at < len(lines) and stamps[at] <= c.ts_us:
                    merged.append(lines[at])
                    at += 1
                merged.append(f"{c.ts_us}\t{_OUTAGE}\t{c.endpoint}\t{'down' if c.down else 'up'}\n")
            lines = merged + lines[at:]
            self.outages += len(changes)
        self._f.writelines(lines)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _open(path: str | Path) -> tuple[IO[str], dict[str, object]]:
    try:
        f: IO[str] = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - the caller closes it
        first = f.readline()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise RecordingError(f"{path}: not a gzip-compressed hazmon recording ({e})") from e
    try:
        header = json.loads(first)
    except json.JSONDecodeError as e:
        f.close()
        raise RecordingError(f"{path}:1: header is not JSON") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        f.close()
        raise RecordingError(f"{path}:1: not a hazmon recording (format is not '{FORMAT}')")
    if header.get("version") not in _READABLE:
        f.close()
        raise RecordingError(
            f"{path}:1: recording version {header.get('version')} is not supported"
            f" (want one of {', '.join(map(str, _READABLE))})"
        )
    return f, header


def read_header(path: str | Path) -> dict[str, object]:
    """The JSON header of a recording.

    Raises:
        RecordingError: not a recording.
    """
    f, header = _open(path)
    f.close()
    return header


def _records(path: str | Path) -> Iterator[Reading | OutageChange]:
    """Readings and outage changes, in file order.

    Raises:
        RecordingError: not a recording, or a damaged line (named by number).
    """
    f, _ = _open(path)
    with f:
        for lineno, line in enumerate(f, start=2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                if not line.endswith("\n"):
                    return  # a recording cut short: the last line is incomplete
                raise RecordingError(f"{path}:{lineno}: expected 4 tab-separated fields, got {len(parts)}")
            try:
                if parts[1] == _OUTAGE:
                    if parts[3] not in ("down", "up"):
                        raise ValueError(f"outage state is '{parts[3]}', not down or up")
                    yield OutageChange(int(parts[0]), parts[2], parts[3] == "down")
                else:
                    yield Reading(parts[1], int(parts[0]), float(parts[2]), Quality(int(parts[3])))
            except ValueError as e:
                raise RecordingError(f"{path}:{lineno}: {e}") from e


def read_recording(path: str | Path) -> Iterator[Reading]:
    """The readings of a recording, in file order.

    Raises:
        RecordingError: not a recording, or a damaged line (named by number).
    """
    for rec in _records(path):
        if isinstance(rec, Reading):
            yield rec


def read_outages(path: str | Path) -> list[OutageChange]:
    """The endpoint outages a recording carries (down and up changes), in file order."""
    return [rec for rec in _records(path) if isinstance(rec, OutageChange)]


class Replay:
    """A recording played back as ``(now_us, readings)`` steps, with the outages it recorded.

    Hand ``replay.steps()`` and ``lambda: replay.down_endpoints`` to
    `serving.run_stream`, as `hazmon simulate` does with a `Simulation`: the
    endpoints go away and come back at the recorded steps.

    Args:
        path: the recording.
        start_us: simulated time the first step starts from.
        step_s: step length (simulated seconds).
    """

    def __init__(self, path: str | Path, start_us: int, step_s: float = 1.0) -> None:
        self.path = path
        self.start_us = start_us
        self.step_us = max(1, int(step_s * 1e6))
        self._down: set[str] = set()
        self._changes: list[OutageChange] = []

    @property
    def down_endpoints(self) -> frozenset[str]:
        """Endpoints away as of the last step handed out."""
        return frozenset(self._down)

    def _catch_up(self, now_us: int) -> None:
        while self._changes and self._changes[0].ts_us <= now_us:
            c = self._changes.pop(0)
            if c.down:
                self._down.add(c.endpoint)
            else:
                self._down.discard(c.endpoint)

    def steps(self) -> Iterator[tuple[int, list[Reading]]]:
        """Readings grouped by step; each step's outage changes are applied before it is handed out."""
        now = self.start_us + self.step_us
        batch: list[Reading] = []
        for rec in _records(self.path):
            if isinstance(rec, OutageChange):
                self._changes.append(rec)
                continue
            while rec.ts_us > now:
                self._catch_up(now)
                yield now, batch
                batch = []
                now += self.step_us
            batch.append(rec)
        self._catch_up(now)
        yield now, batch
        while self._changes:  # an outage recorded after the last reading: play it out
            now += self.step_us
            self._catch_up(now)
            yield now, []


def steps_of(
    readings: Iterable[Reading], start_us: int, step_s: float = 1.0
) -> Iterator[tuple[int, list[Reading]]]:
    """Group time-ordered readings into ``(now_us, readings)`` steps of ``step_s`` from ``start_us``."""
    step = max(1, int(step_s * 1e6))
    now = start_us + step
    batch: list[Reading] = []
    for r in readings:
        while r.ts_us > now:
            yield now, batch
            batch = []
            now += step
        batch.append(r)
    yield now, batch


_DB_QUERY = """
SELECT s.tag, (extract(epoch FROM r.time) * 1000000)::bigint AS ts_us, r.value, r.quality
FROM readings r JOIN sensor s ON s.id = r.sensor_id
WHERE s.enterprise_id = %s AND r.time >= to_timestamp(%s / 1e6) AND r.time < to_timestamp(%s / 1e6)
ORDER BY r.time, s.tag
"""


def db_readings(
    conn: psycopg.Connection[tuple[object, ...]], enterprise_id: str, since_us: int, until_us: int
) -> Iterator[Reading]:
    """Stored readings of one enterprise in [since, until), time-ordered, streamed by a server-side cursor."""
    with conn.cursor(name="hazmon_record") as cur:
        cur.itersize = 10_000
        cur.execute(_DB_QUERY, (enterprise_id, since_us, until_us))
        for tag, ts_us, value, quality in cur:
            assert isinstance(tag, str) and isinstance(ts_us, int) and isinstance(value, float)
            assert isinstance(quality, int)
            yield Reading(tag, ts_us, value, Quality(quality))
