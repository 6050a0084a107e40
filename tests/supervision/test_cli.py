"""`hazmon danger|duty|commitment` end to end on a real database."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hazmon.cli import main

ROOT = Path(__file__).resolve().parents[2]
PLANT = "examples/plant.yaml"
SH = ZoneInfo("Asia/Shanghai")


def hz(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    """The command in this process (a subprocess each costs seconds on a loaded machine)."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([*args, "--dsn", dsn])
            except SystemExit as e:  # argparse refusing an argument
                rc = int(e.code or 0)
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def hz_process(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    """The real command line, once: no traceback reaches the user."""
    env = dict(os.environ, HAZMON_DSN=dsn)
    return subprocess.run(
        [sys.executable, "-m", "hazmon", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def ok(*args: str, dsn: str) -> str:
    r = hz(*args, dsn=dsn)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def refused(*args: str, dsn: str) -> str:
    r = hz(*args, dsn=dsn)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r.stderr


def test_a_major_hidden_danger_from_report_to_acceptance(db_dsn: str, tmp_path: Path) -> None:
    today = datetime.now(UTC).astimezone(SH).date()
    deadline = (today + timedelta(days=45)).isoformat()
    out = ok(
        "danger",
        "add",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--title",
        "V-101 rupture disc isolated",
        "--level",
        "major",
        "--criteria",
        "15",
        "--hazard-source",
        "cl2-tankfarm",
        "--sensor",
        "PT-101",
        dsn=db_dsn,
    )
    assert out.strip() == "hidden danger 1 reported (major, found)"
    # out of order and by the wrong role: refused with the reason, nothing written
    err = refused("danger", "step", "-c", PLANT, "1", "start", "--by", "王强", dsn=db_dsn)
    assert "cannot leave 'found' without its signed rectification plan" in err
    err = refused(
        "danger", "plan", "-c", PLANT, "1", "--by", "王强", "--as", "operator", "--measures", "x", dsn=db_dsn
    )
    assert "role: a operator may not plan" in err
    # a plan without funds and deadline: each named
    err = refused(
        "danger",
        "plan",
        "-c",
        PLANT,
        "1",
        "--by",
        "张建国",
        "--goal",
        "g",
        "--measures",
        "m",
        "--organisation",
        "设备部",
        "--person",
        "李明",
        "--safety-measures",
        "s",
        "--contingency-plan",
        "c",
        dsn=db_dsn,
    )
    assert "funds and materials (经费和物资的落实) is missing" in err
    assert "the deadline is missing" in err
    err = refused(
        "danger",
        "plan",
        "-c",
        PLANT,
        "1",
        "--by",
        "张建国",
        "--funds",
        "-100",
        "--deadline",
        (today - timedelta(days=1)).isoformat(),
        dsn=db_dsn,
    )
    assert "must be more than 0 yuan, got -100" in err and "is in the past" in err
    err = refused("danger", "plan", "-c", PLANT, "1", "--by", "张建国", "--funds", "lots", dsn=db_dsn)
    assert "funds: 'lots' is not an amount in yuan" in err
    plan = [
        "--goal",
        "restore relief",
        "--measures",
        "replace disc",
        "--funds",
        "85000",
        "--organisation",
        "设备部",
        "--person",
        "李明",
        "--deadline",
        deadline,
        "--safety-measures",
        "empty V-101",
        "--contingency-plan",
        "absorber on standby",
    ]
    ok("danger", "plan", "-c", PLANT, "1", "--by", "张建国", *plan, dsn=db_dsn)
    ok("danger", "step", "-c", PLANT, "1", "start", "--by", "王强", dsn=db_dsn)
    photo = tmp_path / "after.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    ok("danger", "attach", "-c", PLANT, "1", str(photo), "--by", "王强", "-m", "after repair", dsn=db_dsn)
    fake = tmp_path / "virus.pdf"
    fake.write_bytes(b"MZ\x90\x00")
    err = refused("danger", "attach", "-c", PLANT, "1", str(fake), "--by", "王强", dsn=db_dsn)
    assert "virus.pdf: the content is not a application/pdf file" in err
    ok("danger", "step", "-c", PLANT, "1", "apply", "--by", "张建国", "--as", "plant_manager", dsn=db_dsn)
    err = refused(
        "danger", "step", "-c", PLANT, "1", "accept", "--by", "张建国", "--as", "plant_manager", dsn=db_dsn
    )
    assert "张建国 applied for acceptance and may not also decide it" in err
    ok(
        "danger",
        "step",
        "-c",
        PLANT,
        "1",
        "reject",
        "--by",
        "赵工",
        "--as",
        "plant_manager",
        "-m",
        "leak test missing",
        dsn=db_dsn,
    )
    ok("danger", "step", "-c", PLANT, "1", "apply", "--by", "张建国", "--as", "plant_manager", dsn=db_dsn)
    ok(
        "danger",
        "step",
        "-c",
        PLANT,
        "1",
        "accept",
        "--by",
        "六合区应急管理局 刘",
        "--as",
        "bureau",
        "-m",
        "checked on site",
        dsn=db_dsn,
    )
    shown = json.loads(ok("danger", "show", "-c", PLANT, "1", "--json", dsn=db_dsn))
    assert shown["state"] == "accepted" and shown["deadline"] == deadline and shown["criteria"] == [15]
    assert [(s["action"], s["by"], s["role"]) for s in shown["steps"]] == [
        ("report", "王强", "operator"),
        ("plan", "张建国", "plant_manager"),
        ("start", "王强", "operator"),
        ("attach", "王强", "operator"),
        ("apply", "张建国", "plant_manager"),
        ("reject", "赵工", "plant_manager"),
        ("apply", "张建国", "plant_manager"),
        ("accept", "六合区应急管理局 刘", "bureau"),
    ]
    assert [a["filename"] for a in shown["attachments"]] == ["after.png"]
    assert shown["plan"]["funds"] == "85000"
    text = ok("danger", "show", "-c", PLANT, "1", dsn=db_dsn)
    assert "criterion 15: safety valves or rupture discs not in service" in text
    listed = ok("danger", "list", "-c", PLANT, "--state", "accepted", dsn=db_dsn)
    assert "V-101 rupture disc isolated" in listed


def test_bad_input_is_a_clear_error(db_dsn: str) -> None:
    err = refused(
        "danger", "add", "-c", PLANT, "--by", "王强", "--title", "x", "--level", "major", dsn=db_dsn
    )
    assert "names the item(s) of the 20 criteria" in err
    err = refused(
        "danger",
        "add",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--title",
        "x",
        "--level",
        "general",
        "--hazard-source",
        "nowhere",
        dsn=db_dsn,
    )
    assert "hazard source: 'nowhere' is not in the plant file" in err
    err = refused(
        "danger",
        "add",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--title",
        "x",
        "--level",
        "major",
        "--criteria",
        "four",
        dsn=db_dsn,
    )
    assert "--criteria: 'four' is not a comma list" in err
    err = refused("danger", "step", "-c", PLANT, "7", "note", "--by", "王强", "-m", "x", dsn=db_dsn)
    assert "hidden danger 7: no such record" in err
    err = refused(
        "danger",
        "add",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--title",
        "x",
        "--level",
        "general",
        "--at",
        "yesterday",
        dsn=db_dsn,
    )
    assert "--at: 'yesterday' is not an ISO 8601 time" in err
    r = hz(
        "danger", "step", "-c", PLANT, "1", "start", "--by", "王强", "--deadline", "31/12/2027", dsn=db_dsn
    )
    assert r.returncode == 2 and "'31/12/2027' is not a date" in r.stderr and "Traceback" not in r.stderr
    r = hz_process("danger", "list", "-c", PLANT, dsn="postgresql://postgres@127.0.0.1:1/none")
    assert r.returncode == 1 and "cannot use the database" in r.stderr and "Traceback" not in r.stderr
    assert ok("danger", "list", "-c", PLANT, "--json", dsn=db_dsn).strip() == "[]"


def test_duty_checks_and_commitments(db_dsn: str) -> None:
    ok(
        "duty",
        "check",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--hazard-source",
        "cl2-tankfarm",
        "--role-of",
        "technical",
        "--person",
        "李明",
        "--what",
        "relief valves and level alarms",
        dsn=db_dsn,
    )
    err = refused(
        "duty",
        "check",
        "-c",
        PLANT,
        "--by",
        "王强",
        "--hazard-source",
        "cl2-tankfarm",
        "--role-of",
        "operational",
        "--person",
        "李明",
        "--what",
        "x",
        dsn=db_dsn,
    )
    assert "the operational responsible person (操作负责人) of cl2-tankfarm is 王强, not '李明'" in err
    duties = json.loads(
        ok("duty", "list", "-c", PLANT, "--hazard-source", "cl2-tankfarm", "--json", dsn=db_dsn)
    )
    got = {d["role"]: (d["status"], d["period"], d["period_verified"]) for d in duties}
    assert got == {
        "principal": ("due", "quarter", False),
        "technical": ("done", "quarter", True),
        "operational": ("due", "week", False),
    }
    # a year on, every duty's last period ended without a check
    later = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    duties = json.loads(ok("duty", "list", "-c", PLANT, "--now", later, "--json", dsn=db_dsn))
    assert {d["status"] for d in duties} == {"overdue"}

    err = refused(
        "commitment", "file", "-c", PLANT, "--by", "张建国", "--source", "cl2-tankfarm=running", dsn=db_dsn
    )
    assert "no state given for lpg-spheres, meoh-tankfarm" in err
    err = refused(
        "commitment", "file", "-c", PLANT, "--by", "王强", "--as", "operator", "--all", "running", dsn=db_dsn
    )
    assert "a operator may not file the daily commitment" in err
    ok(
        "commitment",
        "file",
        "-c",
        PLANT,
        "--by",
        "张建国",
        "--all",
        "running",
        "--source",
        "lpg-spheres=maintenance",
        "--special-work",
        "hot_work=2",
        dsn=db_dsn,
    )
    err = refused("commitment", "file", "-c", PLANT, "--by", "张建国", "--all", "running", dsn=db_dsn)
    assert "is already filed" in err
    got = json.loads(ok("commitment", "list", "-c", PLANT, "--json", dsn=db_dsn))
    assert got["filed_today"] is True and got["missing_day"] is None
    assert got["commitments"][0]["sources"]["lpg-spheres"] == "maintenance"
    assert got["commitments"][0]["special_work"] == {"hot_work": 2}
    two_days_on = (datetime.now(UTC) + timedelta(days=2)).astimezone(SH).replace(hour=10, minute=30)
    got = json.loads(
        ok("commitment", "list", "-c", PLANT, "--now", two_days_on.isoformat(), "--json", dsn=db_dsn)
    )
    assert got["missing_day"] == two_days_on.date().isoformat()
