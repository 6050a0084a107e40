"""Build the servers of a plant's bindings and run a simulation or replay over them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from hazmon.plant.model import MqttBinding, OpcUaBinding, Plant
from hazmon.simulators.mqtt_publisher import MqttPublisher
from hazmon.simulators.opcua_server import SimOpcUaServer
from hazmon.simulators.runner import Sink, Step, serve

__all__ = ["build_sinks", "routes", "run_stream", "shift_opcua_ports"]


def shift_opcua_ports(plant: Plant, offset: int) -> Plant:
    """A copy of the plant whose OPC UA endpoints listen ``offset`` ports higher."""
    if not offset:
        return plant
    eps = []
    for e in plant.opcua:
        u = urlparse(e.url)
        port = (u.port or 4840) + offset
        eps.append(replace(e, url=urlunparse(u._replace(netloc=f"{u.hostname}:{port}"))))
    return replace(plant, opcua=tuple(eps))


def routes(plant: Plant) -> dict[str, str]:
    """Tag -> endpoint name, for every sensor."""
    return {s.tag: s.binding.endpoint for s in plant.sensors()}


def build_sinks(
    plant: Plant,
    data_dir: str | Path,
    *,
    opcua: bool = True,
    mqtt: bool = True,
    client_id: str | None = None,
    opcua_history_s: float = 0.0,
) -> list[SimOpcUaServer | MqttPublisher]:
    """One OPC UA server per endpoint with bound sensors, one MQTT connection per broker.

    ``opcua_history_s``: how long the OPC UA servers keep every value for HistoryRead (0: none).
    """
    sinks: list[SimOpcUaServer | MqttPublisher] = []
    sensors = plant.sensors()
    if opcua:
        for e in plant.opcua:
            if any(isinstance(s.binding, OpcUaBinding) and s.binding.endpoint == e.name for s in sensors):
                sinks.append(SimOpcUaServer(e, plant, data_dir, history_s=opcua_history_s))
    if mqtt:
        for b in plant.mqtt:
            if any(isinstance(s.binding, MqttBinding) and s.binding.endpoint == b.name for s in sensors):
                sinks.append(
                    MqttPublisher(b, plant, client_id=f"{client_id}-{b.name}" if client_id else None)
                )
    return sinks


async def run_stream(
    steps: Iterable[Step],
    plant: Plant,
    sinks: Sequence[Sink],
    *,
    start_us: int,
    speed: float,
    down: Callable[[], frozenset[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> dict[str, int]:
    """Start the sinks, pace the stream over them, stop them (also on error or cancel)."""
    started: list[Sink] = []
    try:
        for s in sinks:
            await s.start()
            started.append(s)
        return await serve(
            steps,
            sinks,
            routes(plant),
            start_us=start_us,
            speed=speed,
            down=down,
            progress=progress,
            stop=stop,
        )
    finally:
        for s in reversed(started):
            await s.stop()
