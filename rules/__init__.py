"""hazmon.rules: limits, rates, trend predictions, sensor faults, votes and chattering.

The daemon uses `RulesRunner` (readings in, findings out) and `parse_settings`
for the ``rules:`` section of its config; the engine itself is the pure
`evaluate(state, batch, now_us)`.
"""

from hazmon.rules.engine import NONE, Batch, RulesState, evaluate, initial_state
from hazmon.rules.model import RulesModel, build_model, model_from_sensors
from hazmon.rules.runner import RulesRunner
from hazmon.rules.settings import RulesSettings, parse_settings
from hazmon.rules.trend import Trend, robust_trend

__all__ = [
    "NONE",
    "Batch",
    "RulesModel",
    "RulesRunner",
    "RulesSettings",
    "RulesState",
    "Trend",
    "build_model",
    "evaluate",
    "initial_state",
    "model_from_sensors",
    "parse_settings",
    "robust_trend",
]
