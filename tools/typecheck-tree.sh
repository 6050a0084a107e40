#!/usr/bin/env bash
# Lays out build/typecheck/hazmon/ as symlinks mirroring the installed namespace:
# roof files of hazmon/ plus one link per component folder (hazmon.plant -> plant/).
set -euo pipefail
out="${1:-build/typecheck}"
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out"; mkdir -p "$out/hazmon"
for f in "$root"/hazmon/*.py "$root"/hazmon/py.typed; do
  [ -e "$f" ] && ln -s "$f" "$out/hazmon/$(basename "$f")"
done
for d in plant store collector rules alarms simulators grafana supervision uplink weather bureau console; do
  ln -s "$root/$d" "$out/hazmon/$d"
done
for d in "$root"/hazmon/*/; do
  [ -f "$d/__init__.py" ] && ln -s "${d%/}" "$out/hazmon/$(basename "$d")"
done
exit 0
