"""A simulator OPC UA server for a plant on a free port (hazmon.simulators)."""

from __future__ import annotations

from pathlib import Path

from hazmon.plant import OpcUaBinding, Plant
from hazmon.simulators.opcua_server import SimOpcUaServer
from testkit import free_port


def opcua_only(plant: Plant, port: int | None = None, **endpoint: object) -> Plant:
    from dataclasses import replace

    port = port or free_port()
    sources = tuple(
        replace(
            hs,
            sensors=tuple(s for s in hs.sensors if isinstance(s.binding, OpcUaBinding)),
            vote_groups=(),  # the vote groups are of gas detectors, which report over MQTT
        )
        for hs in plant.hazard_sources
    )
    eps = tuple(replace(e, url=f"opc.tcp://127.0.0.1:{port}/hazmon", **endpoint) for e in plant.opcua)
    return replace(plant, mqtt=(), opcua=eps, hazard_sources=sources)


def server_for(plant: Plant, data_dir: Path) -> SimOpcUaServer:
    return SimOpcUaServer(plant.opcua[0], plant, data_dir)
