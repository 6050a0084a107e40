"""The alarm service in a process of its own, driven line by line over stdin (for kill -9 tests).

python service_process.py DSN PLANT_FILE WEBHOOK_URL
stdin:  {"finding": {...Finding fields...}, "now": us}   -> handle
        {"tick": us}                                       -> tick
stdout: "ok" after each line is fully recorded (and due notifications sent)
"""

from __future__ import annotations

import asyncio
import json
import sys

from hazmon.alarms import AlarmService
from hazmon.plant import load
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.standards import Level
from tests.alarms.helpers import webhook_settings


async def main(dsn: str, plant_file: str, url: str) -> None:
    svc = AlarmService(load(plant_file), webhook_settings(url, repeat_s=0), dsn)
    await svc.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        if "finding" in cmd:
            f = dict(cmd["finding"])
            f["condition"] = Condition(f["condition"])
            f["level"] = Level(f["level"])
            await svc.handle([Finding(**f)], int(cmd["now"]))
            await svc.dispatch()
        else:
            await svc.tick(int(cmd["tick"]))
        print("ok", flush=True)
    await svc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
