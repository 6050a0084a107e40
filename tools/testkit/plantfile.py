"""The example plant pointed at a private broker, a free OPC UA port and a topic prefix of one run's own."""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLE_PLANT", "private_plant_file"]

EXAMPLE_PLANT = Path(__file__).resolve().parents[2] / "examples" / "plant.yaml"


def private_plant_file(tmp_path: Path, mqtt_port: int, opcua_port: int, prefix: str) -> Path:
    """A copy of examples/plant.yaml in ``tmp_path`` whose endpoints and topics are this run's own."""
    text = EXAMPLE_PLANT.read_text(encoding="utf-8")
    text = text.replace("mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{mqtt_port}")
    text = text.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{opcua_port}/hazmon")
    text = text.replace("topic: plant/", f"topic: {prefix}/plant/")
    p = tmp_path / "plant.yaml"
    p.write_text(text, encoding="utf-8")
    return p
