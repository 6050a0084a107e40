"""`hazmon` sub-commands of this area (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register this area's sub-commands (none yet)."""
