#!/usr/bin/env bash
# make demo: a few hidden dangers, duty checks and today's commitment for the example plant
# (once: skipped when the register is not empty). One major hidden danger is a day overdue, so
# the daemon raises its alarm within a minute of starting (supervision/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
HZ=.venv/bin/hazmon
PLANT=examples/plant.yaml
ago() { TZ=Asia/Shanghai date -d "$1" +%Y-%m-%dT%H:%M; }
day() { TZ=Asia/Shanghai date -d "$1" +%F; }

if [ "$($HZ danger list -c "$PLANT" --json)" = "[]" ]; then
  printf '\n== %s\n' "recording example hidden dangers, duty checks and today's commitment"
  $HZ danger add -c "$PLANT" --by 王强 --at "$(ago '-3 days')" --title "LT-101 液位计显示偏差 5 cm" \
      --level general --hazard-source cl2-tankfarm --sensor LT-101
  $HZ danger step -c "$PLANT" 1 start --by 王强 --at "$(ago '-3 days +1 hour')" --deadline "$(day '+7 days')"
  $HZ danger add -c "$PLANT" --by 李明 --at "$(ago '-40 days')" --title "V-101 爆破片前切断阀关闭，爆破片未投用" \
      --level major --criteria 15 --hazard-source cl2-tankfarm --equipment V-101 --found-by duty_check
  $HZ danger plan -c "$PLANT" 2 --by 张建国 --at "$(ago '-39 days')" --goal "恢复 V-101 超压泄放" \
      --measures "倒空储罐，更换爆破片，切断阀铅封常开" --funds 85000 --materials "DN80 爆破片 2 片" \
      --organisation 设备部 --person 李明 --person 王强 --deadline "$(day '-2 days')" \
      --safety-measures "V-101 液位降至 20% 以下，动火作业票" --contingency-plan "碱液吸收装置备用，应急小组待命"
  $HZ danger step -c "$PLANT" 2 start --by 王强 --at "$(ago '-38 days')"
  $HZ danger add -c "$PLANT" --by 孙涛 --at "$(ago '-10 days')" --title "球罐区 GT-201 检测器未定期标定" \
      --level general --hazard-source lpg-spheres --sensor GT-201
  $HZ danger step -c "$PLANT" 3 start --by 孙涛 --at "$(ago '-10 days +1 hour')" --deadline "$(day '-5 days')"
  $HZ danger step -c "$PLANT" 3 apply --by 张建国 --as plant_manager --at "$(ago '-6 days')"
  $HZ danger step -c "$PLANT" 3 accept --by 赵磊 --as plant_manager --at "$(ago '-5 days')" -m "现场复核，已标定"
  $HZ duty check -c "$PLANT" --by 王强 --hazard-source cl2-tankfarm --role-of technical --person 李明 \
      --at "$(ago '-20 days')" --what "安全阀、爆破片、液位报警联锁"
  $HZ duty check -c "$PLANT" --by 王强 --hazard-source cl2-tankfarm --role-of operational --person 王强 \
      --at "$(ago '-1 day')" --what "巡检：罐区、吸收装置"
  $HZ commitment file -c "$PLANT" --by 张建国 --all running --source lpg-spheres=maintenance \
      --special-work hot_work=1
fi
$HZ danger list -c "$PLANT"
