"""hazmon.simulators: a simulated plant for development, demos and tests.

`Simulation` produces believable, exactly repeatable readings in simulated time
from a plant file and a scenario; the serving adapters publish them over the
plant's own bindings (OPC UA server, MQTT), and recordings can be replayed.
"""

from hazmon.simulators.engine import Simulation
from hazmon.simulators.scenario import (
    FAULT_KINDS,
    Scenario,
    load_scenario,
    parse_duration,
    parse_scenario_text,
    scenario_names,
)

__all__ = [
    "FAULT_KINDS",
    "Scenario",
    "Simulation",
    "load_scenario",
    "parse_duration",
    "parse_scenario_text",
    "scenario_names",
]
