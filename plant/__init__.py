"""The ground: plant file, hazard sources, sensors, GB 18218 grading and assessments.

Also the standards table and the `Reading` / `Finding` types.

Nothing here imports another hazmon component.
"""

from hazmon.plant.assessment import AssessmentRecord, AssessmentStatus, assessment_status
from hazmon.plant.config import ConfigError, Problem, load, loads
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.grading import Grading, grade, grade_source
from hazmon.plant.limits import default_gas_limits, effective_limits
from hazmon.plant.model import (
    Equipment,
    HazardSource,
    Limits,
    MqttBinding,
    MqttBroker,
    OpcUaBinding,
    OpcUaEndpoint,
    Plant,
    Sensor,
    SensorKind,
)
from hazmon.plant.reading import Quality, Reading, ReadingBatch, StaleChange, from_us, to_us
from hazmon.plant.standards import Grade, Level, Tier

__all__ = [
    "AssessmentRecord",
    "AssessmentStatus",
    "Condition",
    "ConfigError",
    "Equipment",
    "Finding",
    "Grade",
    "Grading",
    "HazardSource",
    "Level",
    "Limits",
    "MqttBinding",
    "MqttBroker",
    "OpcUaBinding",
    "OpcUaEndpoint",
    "Plant",
    "Problem",
    "Quality",
    "Reading",
    "ReadingBatch",
    "Sensor",
    "SensorKind",
    "StaleChange",
    "Tier",
    "assessment_status",
    "default_gas_limits",
    "effective_limits",
    "from_us",
    "grade",
    "grade_source",
    "load",
    "loads",
    "to_us",
]
