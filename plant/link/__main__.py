"""``python -m hazmon.plant.link [folder]``: regenerate the JSON Schema files from the models."""

from __future__ import annotations

import sys
from pathlib import Path

from hazmon.plant.link import write_schemas

if __name__ == "__main__":
    for p in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(p)
