#!/usr/bin/env bash
# make demo, the bureau's side: a city bureau (南京市应急管理局, examples/bureau.yaml) in a database
# of its own, and the plant daemon's config with the uplink on, so what the plant reports arrives
# at the bureau over the local broker. Prints the bureau API's address and a token to try.
# Writes var/demo/hazmon-uplink.yaml (the daemon config to run) and starts `hazmon bureau run`;
# prints the bureau's PID on the last line for demo.sh to stop.
set -euo pipefail
cd "$(dirname "$0")/.."
HZ=.venv/bin/hazmon
RUN=var/demo
BUREAU_DSN=${HAZMON_BUREAU_DSN:-${HAZMON_DSN%/*}/hazmon_bureau}
# the example config with `uplink.enabled: true` (the only line that differs)
awk '/^uplink:/{u=1} u && /^  enabled: false/{sub(/false/, "true"); u=0} {print}' \
  examples/hazmon.yaml > "$RUN/hazmon-uplink.yaml"
sed -i "s#\.\./var/demo/#../../var/demo/#g; s#^plant: plant.yaml#plant: ../../examples/plant.yaml#" "$RUN/hazmon-uplink.yaml"  # relative to the file
HAZMON_DSN=$BUREAU_DSN $HZ bureau check -c examples/bureau.yaml >&2
HAZMON_DSN=$BUREAU_DSN $HZ bureau migrate -c examples/bureau.yaml >&2
HAZMON_DSN=$BUREAU_DSN $HZ bureau run -c examples/bureau.yaml > "$RUN/bureau.log" 2>&1 &
echo "bureau ($BUREAU_DSN) — log: $RUN/bureau.log" >&2
echo "bureau API: curl -s -H 'Authorization: Bearer password' http://127.0.0.1:9200/api/v1/alarms" >&2
echo "            .../api/v1/enterprises  .../api/v1/warnings  .../api/v1/figures?day=$(date +%F)" >&2
# the demo users' passwords are published demo passwords (examples/bureau.yaml): replace them
echo "bureau console: http://127.0.0.1:9200/console — duty-officer / demo-bureau-officer-1 (city officer)," >&2
echo "                liuhe-viewer / demo-bureau-viewer-1 (county viewer); published demo passwords" >&2
echo $!
