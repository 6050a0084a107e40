"""10,000 malformed payloads of many kinds (hypothesis): the daemon stays up, every one is
counted and dead-lettered, and the valid readings around them are stored."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hazmon.collector import REASONS, decode
from hazmon.collector.payload import Route
from hazmon.daemon import Daemon
from hazmon.plant import MqttBinding, Plant, Reading
from tests.daemon.helpers import (
    Publisher,
    as_rows,
    count,
    daemon_config,
    json_payload,
    mqtt_only,
    rows,
    wait_for,
)

T0 = 1_795_860_000_000_000
NOW = 1_795_860_000_000_000
_scalar = st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.integers(), st.floats(allow_nan=True))
_bad_v = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.just(float("nan")),
    st.just(float("inf")),
)
_good_ts = st.integers(1_700_000_000_000, 1_795_000_000_000)


def _malformed_json() -> st.SearchStrategy[bytes]:
    kinds = [
        st.binary(max_size=40).filter(lambda b: not b.strip().startswith(b"{")),  # garbage bytes
        st.binary(min_size=1, max_size=10).map(lambda b: b"\xff" + b),  # not UTF-8
        st.text(max_size=30).map(lambda s: ("{" + s).encode()),  # truncated JSON
        st.one_of(st.integers(), st.lists(_scalar, max_size=3), st.text(max_size=5)).map(
            lambda x: json.dumps(x).encode()
        ),  # JSON, but not an object
        st.fixed_dictionaries({"ts": _good_ts, "v": _bad_v}).map(lambda d: json.dumps(d).encode()),
        st.fixed_dictionaries({"v": st.floats(-1e6, 1e6)}).map(lambda d: json.dumps(d).encode()),  # no ts
        st.fixed_dictionaries(
            {
                "ts": st.one_of(st.text(max_size=12), st.booleans(), st.integers(0, 10**9)),
                "v": st.floats(-1e6, 1e6),
            }
        ).map(lambda d: json.dumps(d).encode()),
        st.fixed_dictionaries(
            {
                "ts": _good_ts,
                "v": st.floats(-1e6, 1e6),
                "q": st.one_of(st.integers(3, 99), st.integers(-9, -1), st.text(max_size=3)),
            }
        ).map(lambda d: json.dumps(d).encode()),
    ]
    return st.one_of(*kinds)


def _collect(n: int) -> list[tuple[bytes, bool]]:
    """``n`` malformed payloads drawn by hypothesis, each checked against the pure decoder on the way."""
    out: list[tuple[bytes, bool]] = []

    @settings(max_examples=n // 10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(_malformed_json(), st.booleans()), min_size=10, max_size=10))
    def draw(drawn: list[tuple[bytes, bool]]) -> None:  # ten per example: a tenth of hypothesis' overhead
        for payload, unknown_topic in drawn:
            d = decode(Route("json", "X", "v"), "t", payload, NOW, 86_400_000_000)
            assert d.readings == []
            assert len(d.rejects) == 1 and d.rejects[0].reason in REASONS
            out.append((payload, unknown_topic))

    draw()
    return out


@pytest.mark.slow
async def test_10000_malformed_payloads_are_counted_and_dead_lettered(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], tmp_path: Path
) -> None:
    payloads = await asyncio.to_thread(_collect, 10_000)
    assert len(payloads) >= 10_000
    tmp = tmp_path
    prefix = f"hazmon-test/{tmp.name}-{uuid.uuid4().hex[:6]}"
    plant = mqtt_only(example_plant.retarget(topic_prefix=prefix))
    sensors = [s for s in plant.sensors() if isinstance(s.binding, MqttBinding)]
    valid: list[Reading] = []
    async with Daemon(daemon_config(tmp, db_dsn, plant), plant) as d:
        assert d.w is not None
        w = d.w
        await wait_for(w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]

        def publish() -> None:  # from a thread: the daemon's loop (this test's) keeps running
            pub = Publisher(*mqtt_broker)
            for i, (p, unknown_topic) in enumerate(payloads):
                s = sensors[i % len(sensors)]
                assert isinstance(s.binding, MqttBinding)
                topic = f"{prefix}/plant/cl2-tankfarm/NOPE-{i % 7}" if unknown_topic else s.binding.topic
                pub.publish(topic, p)
                if i % 10 == 0:  # valid readings around the malformed ones
                    r = Reading(s.tag, T0 + i, math.ldexp(i, -3))
                    valid.append(r)
                    pub.publish(s.binding.topic, json_payload(r))
            pub.close()

        await asyncio.to_thread(publish)
        n = len(payloads)
        await wait_for(
            lambda: w.metrics.total("hazmon_dead_letters_total") >= n, "every payload counted", 120
        )
        await wait_for(
            lambda: count(db_dsn, "SELECT count(*) FROM collector_dead_letter") >= n, "dead-lettered", 120
        )
        await wait_for(lambda: count(db_dsn) >= len(valid), "valid readings stored", 120)
        counted = w.metrics.total("hazmon_dead_letters_total")
        health_ok, _ = d.health()
    assert health_ok
    assert counted == n
    assert count(db_dsn, "SELECT count(*) FROM collector_dead_letter") == n
    assert count(db_dsn, "SELECT count(*) FROM collector_dead_letter WHERE reason = 'unknown_topic'") == sum(
        1 for _, u in payloads if u
    )
    assert rows(db_dsn) == as_rows(valid)
