#!/usr/bin/env bash
# make demo: migrations, the example plant, Grafana JSON, the simulator and the daemon.
# Runs until Ctrl-C (or DEMO_SECONDS seconds, for a smoke test). Variables (README.md "Two commands"):
# DEMO_SCENARIO (default normal), DEMO_SECONDS, HAZMON_DSN (created when missing), HAZMON_DCS_URL, HAZMON_GDS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
HZ=.venv/bin/hazmon
PLANT=examples/plant.yaml
CONFIG=examples/hazmon.yaml
RUN=var/demo
mkdir -p "$RUN"

say() { printf '\n== %s\n' "$*"; }
has() { $HZ "$1" --help >/dev/null 2>&1; }

say "checking the plant file"
$HZ check "$PLANT"
$HZ plant "$PLANT"

say "migrating the database ($HAZMON_DSN)"
$HZ db migrate
$HZ db load "$PLANT"

if [ "$($HZ assessment list -c "$PLANT" | grep -c 'NO ASSESSMENT ON RECORD' || true)" = 3 ]; then
  say "recording example assessments (one overdue for reassessment, one with filing overdue)"
  $HZ assessment add -c "$PLANT" --hazard-source cl2-tankfarm --report-date 2024-05-10 \
      --assessor "江苏某安全评价有限公司" --r 96 --grade 2 --filed-on 2024-05-20
  $HZ assessment add -c "$PLANT" --hazard-source lpg-spheres --report-date 2023-02-01 \
      --assessor "江苏某安全评价有限公司" --r 36 --grade 3 --filed-on 2023-02-10
  $HZ assessment add -c "$PLANT" --hazard-source meoh-tankfarm --report-date "$(date -d '-40 days' +%F)" \
      --assessor "江苏某安全评价有限公司" --r 12 --grade 3
fi
$HZ assessment list -c "$PLANT"
tools/demo-supervision.sh  # hidden dangers, duty checks, today's commitment

if has grafana; then
  say "building the Grafana dashboards"
  $HZ grafana build
fi

pids=()
# the daemon (started last) stops first, so it closes its OPC UA session while the simulator's
# server is still there (the other way round asyncua logs a traceback at teardown)
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

if has simulate; then
  scenario=${DEMO_SCENARIO:-normal}
  say "starting the simulator (scenario $scenario, real time) — log: $RUN/simulator.log"
  $HZ simulate --scenario "$scenario" --timeline
  # an orange heat warning played to the daemon after a minute (weather/README.md)
  $HZ simulate -c "$PLANT" --scenario "$scenario" --speed 1 --opcua-history 3600 \
      --cap examples/cap/heat-orange.xml --cap-at "${DEMO_CAP_AT:-60}" --cap-token-file "$RUN/alarm-tokens.yaml" \
      > "$RUN/simulator.log" 2>&1 &
  pids+=($!)
  sleep 3
fi

if has bureau && [ "${DEMO_BUREAU:-1}" = 1 ]; then
  say "starting the city bureau (DEMO_BUREAU=0: without it)"
  pids+=("$(tools/demo-bureau.sh | tail -1)")
  CONFIG=$RUN/hazmon-uplink.yaml  # the plant daemon reports to it
  sleep 2
fi

if has run; then
  say "starting the daemon — log: $RUN/daemon.log"
  $HZ run -c "$CONFIG" > "$RUN/daemon.log" 2>&1 &
  pids+=($!)
  if has alarms; then
    sleep 3
    $HZ alarms tokens -c "$CONFIG" 2>/dev/null || true
  fi
  echo "daemon HTTP: http://127.0.0.1:8470/healthz  /metrics"
  echo "web console: http://127.0.0.1:8470/console   sign in (demo users in $CONFIG, console:):"
  echo "  operator / demo-operator-1   plant-manager / demo-manager-1   county-bureau / demo-county-1"
  echo "the whole alarm chain: DEMO_SCENARIO=chlorine-leak make demo   (scenarios: $HZ simulate --list)"
fi

if [ "$CONFIG" = "$RUN/hazmon-uplink.yaml" ] && has run; then
  # the bureau puts the plant's major hidden danger under 挂牌督办 once it has arrived (in the background)
  .venv/bin/python tools/demo-bureau-supervise.py &
  pids+=($!)
fi

say "running; Ctrl-C stops the demo"
if [ -n "${DEMO_SECONDS:-}" ]; then sleep "$DEMO_SECONDS"; else wait; fi
