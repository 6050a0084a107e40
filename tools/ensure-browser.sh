#!/usr/bin/env bash
# Makes sure the console's browser tests have a headless Chromium: Debian's chromium, its
# driver and a CJK font (without one, Chinese renders as boxes in the screenshots). Installs
# them with apt when missing and we are root; otherwise says exactly what to run. Never
# `playwright install`: it downloads a browser build, which this project does not fetch.
set -euo pipefail
say() { echo "browser: $*"; }
pkgs=(chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "error: ${missing[*]} missing; run: sudo apt-get install ${missing[*]}"; exit 1
  fi
fi
say "$(/usr/bin/chromium --version 2>/dev/null | head -1) at /usr/bin/chromium"
