"""The daemon config's ``weather:`` section: where official warnings come from.

::

    weather:
      inbox: /var/spool/hazmon/cap   # watched directory ("" off): *.xml taken once,
                                     # moved to done/ or refused/
      scan_every_s: 10
      url: https://warnings.example.gov.cn/320116/latest.xml   # polled ("" off), ETag / If-Modified-Since
      poll_every_s: 300
      timeout_s: 20                  # one poll's limit; a failure is counted and logged, retried next time
      every_s: 10                    # how often the warnings in force are judged (effects start and end)

``POST /api/weather/cap`` is always mounted on the daemon's HTTP server (an operator's or
plant manager's API token).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.yamlmodel import SECTION, Positive, YText, pattern

__all__ = ["WeatherSettings"]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class WeatherSettings:
    inbox: YText = ""
    scan_every_s: Positive = 10.0
    url: Annotated[YText, AfterValidator(pattern(r"(https?://\S+)?", "an http:// or https:// URL"))] = ""
    poll_every_s: Positive = 300.0
    timeout_s: Positive = 20.0
    every_s: Positive = 10.0
