"""Recordings: a stream of readings saved to a compressed file, and played back.

Format (version 1): a gzip-compressed UTF-8 text file. The first line is a JSON
header; every further line is one reading, tab-separated::

    {"format": "hazmon-recording", "version": 1, "enterprise": "hx-chem", "source": "simulator",
     "scenario": "normal", "seed": 1, "start_us": 1780000000000000, "end_us": 1780003600000000}
    1780000001000000<TAB>LT-101<TAB>1.2345<TAB>0

(µs since the epoch, tag, value as Python repr, quality 0/1/2), in time order.
``zcat FILE | head`` shows it; lines are appended as the stream goes, so a
recording cut short by a crash is still readable up to the last whole line.
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

__all__ = [
    "FORMAT",
    "RecordingError",
    "RecordingWriter",
    "db_readings",
    "read_header",
    "read_recording",
    "steps_of",
]

FORMAT = "hazmon-recording"
VERSION = 1


class RecordingError(Exception):
    """The file is not a hazmon recording, or a line of it is damaged."""


class RecordingWriter:
    """Write readings to a recording file (a context manager)."""

    def __init__(self, path: str | Path, header: dict[str, object]) -> None:
        self.path = Path(path)
        self._f: IO[str] = gzip.open(self.path, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115 - closed by close()
        self._f.write(json.dumps({"format": FORMAT, "version": VERSION, **header}, ensure_ascii=False) + "\n")
        self.count = 0

    def write(self, readings: Iterable[Reading]) -> None:
        lines = [f"{r.ts_us}\t{r.tag}\t{float(r.value)!r}\t{int(r.quality)}\n" for r in readings]
        self._f.writelines(lines)
        self.count += len(lines)

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
    if header.get("version") != VERSION:
        f.close()
        raise RecordingError(
            f"{path}:1: recording version {header.get('version')} is not supported (want {VERSION})"
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


def read_recording(path: str | Path) -> Iterator[Reading]:
    """The readings of a recording, in file order.

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
                yield Reading(parts[1], int(parts[0]), float(parts[2]), Quality(int(parts[3])))
            except ValueError as e:
                raise RecordingError(f"{path}:{lineno}: {e}") from e


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
