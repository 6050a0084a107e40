#!/usr/bin/env bash
# Makes sure PostgreSQL and Mosquitto answer on 127.0.0.1: starts them when they
# are installed but stopped, installs them with apt when missing and we are root,
# and otherwise says exactly what to do. Creates the `hazmon` database.
set -euo pipefail
PGHOST=127.0.0.1; PGPORT=${PGPORT:-5432}; MQTT_PORT=${MQTT_PORT:-1883}
say() { echo "services: $*"; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  if is_root && command -v apt-get >/dev/null; then
    say "installing $* with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    say "error: $* missing; run: sudo apt-get install $*"; exit 1
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done; return 1; }

# --- PostgreSQL ---------------------------------------------------------------
if ! port_open "$PGPORT"; then
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
  for ver in $(ls /etc/postgresql 2>/dev/null); do
    say "starting PostgreSQL $ver"
    if is_root; then pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    else say "error: PostgreSQL is stopped; run: sudo pg_ctlcluster $ver main start"; exit 1; fi
  done
  wait_port "$PGPORT" || { say "error: PostgreSQL does not answer on 127.0.0.1:$PGPORT"; exit 1; }
fi
psql_admin() { psql -X -q -h $PGHOST -p "$PGPORT" -U postgres -d postgres "$@"; }
if ! command -v psql >/dev/null; then apt_install postgresql-client; fi
if ! psql_admin -tAc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian install asks for a password on 127.0.0.1; a development
  # machine that we set up ourselves gets trust on loopback only.
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf 2>/dev/null | head -1 || true)
  if is_root && [ -n "$hba" ] && ! grep -q 'hazmon: loopback trust' "$hba"; then
    say "allowing trust auth on loopback in $hba (development machine)"
    sed -i '1i # hazmon: loopback trust for development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    for ver in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true; done
    sleep 1
  fi
  psql_admin -tAc 'select 1' >/dev/null || {
    say "error: cannot log in as postgres on 127.0.0.1:$PGPORT; set HAZMON_DSN to a DSN that can"; exit 1; }
fi
if [ "$(psql_admin -tAc "select 1 from pg_database where datname='hazmon'")" != 1 ]; then
  psql_admin -c 'create database hazmon' && say "created database hazmon"
fi

# --- Mosquitto ----------------------------------------------------------------
if ! port_open "$MQTT_PORT"; then
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
  mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  conf=/etc/mosquitto/mosquitto.conf
  say "starting Mosquitto"
  if [ -f "$conf" ] && grep -q '^listener' "$conf"; then "$mosq" -d -c "$conf"
  else
    # Debian's default config has no listener line. Ours listens on loopback,
    # keeps sessions and queued QoS 1 messages across a restart (persistence) and
    # never drops them for a slow subscriber (the default max_queued_messages 1000 does).
    # `user`: started as root, Mosquitto would switch to user mosquitto, could not write its
    # persistence file in $d, and would keep no session across a restart, silently.
    d=/var/tmp/hazmon-mosquitto; mkdir -p "$d"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\nmax_inflight_messages 0\nuser %s\n' \
      "$MQTT_PORT" "$d" "$(id -un)" > "$d/mosquitto.conf"
    "$mosq" -d -c "$d/mosquitto.conf"
  fi
  wait_port "$MQTT_PORT" || { say "error: Mosquitto does not answer on 127.0.0.1:$MQTT_PORT"; exit 1; }
fi
conf=/etc/mosquitto/mosquitto.conf
if [ -f "$conf" ] && ! grep -qs '^max_queued_messages 0' "$conf" /etc/mosquitto/conf.d/*.conf 2>/dev/null; then
  say "note: $conf keeps Mosquitto's default max_queued_messages (1000), which drops QoS 1 messages"
  say "      for a slow subscriber; for production set 'max_queued_messages 0' (see docker/mosquitto/)"
fi
say "PostgreSQL 127.0.0.1:$PGPORT and Mosquitto 127.0.0.1:$MQTT_PORT are up"

# --- Chromium for the console's browser tests (tests/console) -----------------------------
"$(dirname "$0")/ensure-browser.sh"
