"""End to end over real channels, configured from YAML like the daemon does: a webhook
receiver (aiohttp), an SMTP server with STARTTLS and login (aiosmtpd), the bureau topic on
Mosquitto, and an SMS HTTP gateway. A red alarm left unacknowledged reaches each
recipient on its channel at the right simulated time."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from hazmon.alarms import AlarmService, EventKind, parse_settings
from hazmon.plant import Plant
from hazmon.plant.yamlnode import ConfigError, parse_document
from tests.alarms.helpers import SECRET, T0, S, assess_all, gas
from tests.alarms.receivers import HttpReceiver, MqttListener, SmtpServer

pytestmark = pytest.mark.slow


def _config(hook: int, sms: int, smtp: int, ca: Path, mqtt: tuple[str, int], prefix: str) -> str:
    return textwrap.dedent(
        f"""\
        locale: zh
        repeat_s: 0
        notifiers:
          - name: control-room
            kind: webhook
            url: http://127.0.0.1:{hook}/alarms
            secret_env: T_HOOK_SECRET
            recipients: [control_room]
          - name: mail
            kind: email
            host: 127.0.0.1
            port: {smtp}
            from: hazmon@hx-chem.example.com
            starttls: true
            username: hazmon
            password_env: T_SMTP_PASSWORD
            ca_file: {ca}
            recipients: [operational, technical, principal, bureau_county, bureau_city]
          - name: province-platform
            kind: mqtt
            url: mqtt://{mqtt[0]}:{mqtt[1]}
            topic: "{prefix}/alarms/{{region}}"
            recipients: [bureau_county, bureau_city, bureau_province]
          - name: sms
            kind: sms
            url: http://127.0.0.1:{sms}/send?to={{phone}}
            body: '{{"text": "{{text}}", "id": "{{delivery_id}}"}}'
            recipients: [operational, technical, principal]
        """
    )


async def test_red_alarm_over_every_channel(
    example_plant: Plant,
    db_dsn: str,
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_HOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("T_SMTP_PASSWORD", SmtpServer.PASSWORD)
    hook, gateway = HttpReceiver(secret=SECRET), HttpReceiver()
    await hook.start()
    await gateway.start()
    smtp = SmtpServer(tmp_path)
    smtp.start()
    bureau = MqttListener(*mqtt_broker, f"{topic_prefix}/alarms/#")
    settings = parse_document(
        _config(hook.port, gateway.port, smtp.port, smtp.cert, mqtt_broker, topic_prefix),
        "hazmon.yaml",
        parse_settings,
    )
    assess_all(example_plant, db_dsn)
    svc = AlarmService(example_plant, settings, db_dsn)
    try:
        await svc.start()
        await svc.handle([gas(T0)], T0)
        await svc.tick(T0)
        assert [p["recipient"] for p in hook.payloads()] == ["control_room"]
        assert [m.to for m in smtp.box] == [["wang.q@hx-chem.example.com"]]
        assert [r["query"]["to"] for r in gateway.requests] == ["13800000003"]
        assert "红色预警" in gateway.requests[0]["json"]["text"]
        for t in (299, 300, 599):
            await svc.tick(T0 + t * S)
        assert sorted(m.to[0] for m in smtp.box) == [
            "li.ming@hx-chem.example.com",
            "wang.q@hx-chem.example.com",
            "zhang.jg@hx-chem.example.com",
        ]
        assert bureau.drain() == []
        await svc.tick(T0 + 600 * S)
        topic, msg = await asyncio.to_thread(bureau.get)
        assert topic == f"{topic_prefix}/alarms/320116"
        assert (msg["recipient"], msg["tier"], msg["enterprise"]["region_code"]) == (
            "bureau_county",
            "red",
            "320116",
        )
        assert smtp.box[-1].to == ["duty@luhe.example.gov.cn"]
        await svc.tick(T0 + 1800 * S)
        topic, msg = await asyncio.to_thread(bureau.get)
        assert (topic, msg["recipient"]) == (f"{topic_prefix}/alarms/320100", "bureau_city")
        assert smtp.box[-1].to == ["duty@nanjing.example.gov.cn"]
        # the mail is bilingual, signed off with a stable Message-ID, sent after STARTTLS + login
        mail = smtp.box[-1]
        assert "【红色预警】" in mail.subject and "[RED]" in mail.subject
        assert "氯气浓度" in mail.body and "chlorine" in mail.body
        assert mail.headers["Message-ID"].startswith("<hzm-")
        assert smtp.logins and all(m in ("LOGIN", "PLAIN") for m in smtp.logins)
        assert hook.bad_signatures == 0
        (a,) = [x for x in svc.alarms() if x.sensor == "AT-101"]
        await svc.act(a.id, EventKind.ACKED, "op1")
        for step, who in (
            (EventKind.BUREAU_RECEIVED, "luhe"),
            (EventKind.BUREAU_VERIFIED, "luhe"),
            (EventKind.BUREAU_FEEDBACK, "boss"),
            (EventKind.BUREAU_CLOSED, "luhe"),
        ):
            await svc.act(a.id, step, who)
        await svc.tick(T0 + 7200 * S)
        assert bureau.drain() == []  # nothing after the acknowledgement
        kinds = [e["kind"] for e in await svc.events(a.id) if e["kind"] != "notified"]
        assert kinds == [
            "raised",
            "acked",
            "bureau_received",
            "bureau_verified",
            "bureau_feedback",
            "bureau_closed",
        ]
        notified = [
            (e["data"]["notifier"], e["data"]["recipient"], (e["data"]["due_us"] - T0) // S)
            for e in await svc.events(a.id)
            if e["kind"] == "notified"
        ]
        assert sorted(notified) == sorted(
            [
                ("control-room", "control_room", 0),
                ("mail", "operational", 0),
                ("sms", "operational", 0),
                ("mail", "technical", 300),
                ("sms", "technical", 300),
                ("mail", "principal", 300),
                ("sms", "principal", 300),
                ("mail", "bureau_county", 600),
                ("province-platform", "bureau_county", 600),
                ("mail", "bureau_city", 1800),
                ("province-platform", "bureau_city", 1800),
            ]
        )
    finally:
        await svc.close()
        bureau.stop()
        smtp.stop()
        await hook.stop()
        await gateway.stop()


def test_wrong_smtp_password_is_dead_lettered_not_retried(tmp_path: Path) -> None:
    """Checked at the notifier: an authentication failure is permanent (retry False)."""
    from hazmon.alarms.notifier import Message
    from hazmon.alarms.notify_email import EmailNotifier, EmailSettings

    smtp = SmtpServer(tmp_path)
    smtp.start()
    try:
        n = EmailNotifier(
            "mail",
            EmailSettings("127.0.0.1", smtp.port, "a@b.c", True, False, "hazmon", "wrong", str(smtp.cert)),
        )
        retry, err = asyncio.run(n.notify(Message("d1", "x@y.z", "operational", "s", "t", "t")))
        assert (retry, type(err).__name__) == (False, "SMTPAuthenticationError")
        n = EmailNotifier(
            "mail",
            EmailSettings(
                "127.0.0.1", smtp.port, "a@b.c", True, False, "hazmon", SmtpServer.PASSWORD, str(smtp.cert)
            ),
        )
        assert asyncio.run(n.notify(Message("d2", "x@y.z", "operational", "s", "t", "t"))) == (False, None)
        assert len(smtp.box) == 1
    finally:
        smtp.stop()


# invalid alarm configs -> the exact message (file:line: field.path: reason)
BAD = [
    ("locale: fr\n", "hazmon.yaml:1: locale: 'fr' is not one of: zh, en"),
    (
        "notifiers:\n  - {name: a, kind: pager, recipients: [control_room]}\n",
        "hazmon.yaml:2: notifiers[0].kind: 'pager' is not one of: webhook, email, mqtt, sms",
    ),
    (
        "notifiers:\n  - {name: a, kind: webhook, url: ftp://x, secret_env: HOME, recipients: [control_room]}\n",
        "hazmon.yaml:2: notifiers[0].url: 'ftp://x' is not a http or https URL",
    ),
    (
        "notifiers:\n  - {name: a, kind: webhook, url: http://x, secret_env: T_NOT_SET_ANYWHERE, recipients: [cr]}\n",
        "hazmon.yaml:2: notifiers[0].recipients[0]: 'cr' is not one of: control_room, operational, technical, "
        "principal, bureau_county, bureau_city, bureau_province\n"
        "hazmon.yaml:2: notifiers[0].secret_env: environment variable T_NOT_SET_ANYWHERE is not set",
    ),
    (
        "escalation:\n  red:\n    - {after_s: 600, notify: [bureau_county]}\n    - {after_s: 0, notify: [control_room]}\n",
        "hazmon.yaml:3: escalation.red: steps must be in order of after_s",
    ),
    (
        "tokens:\n  - {name: x, role: bureau, sha256: " + "a" * 64 + "}\n",
        "hazmon.yaml:2: tokens[0]: a bureau token needs level and region",
    ),
    (
        "tokens:\n  - {name: x, role: operator, sha256: abc}\n",
        "hazmon.yaml:2: tokens[0].sha256: 'abc' is not a hex SHA-256 digest",
    ),
    ("flood: {count: 0}\n", "hazmon.yaml:1: flood.count: must be >= 1, got 0"),
    (
        "bogus: 1\n",
        "hazmon.yaml:1: bogus: unknown key 'bogus' (allowed: api_url, assessment_check_s, "
        "default_position, escalation, flood, locale, notifiers, own_thread, positions, repeat_s, retry, "
        "shelve_max_s, synchronous_commit, token_file, tokens)",
    ),
    (
        "positions:\n  north: [cl2, lpg]\n  south: [cl2]\n",
        "hazmon.yaml:3: positions.south[0]: hazard source 'cl2' is already at position 'north'",
    ),
    (
        "tokens:\n  - {name: a, role: operator, sha256: " + "a" * 64 + "}\n"
        "  - {name: b, role: operator, sha256: " + "A" * 64 + "}\n",
        "hazmon.yaml:3: tokens[1]: token of 'b' is the same as another token's",
    ),
    (
        "tokens:\n  - {name: a, role: operator, sha256: " + "a" * 64 + ", token_env: HOME}\n",
        "hazmon.yaml:2: tokens[0]: give sha256 or token_env, not both",
    ),
    ("tokens:\n  - {name: a, role: operator}\n", "hazmon.yaml:2: tokens[0].sha256: missing sha256 (or token_env)"),
    (
        "tokens:\n  - {name: a, role: operator, level: county, sha256: " + "a" * 64 + "}\n",
        "hazmon.yaml:2: tokens[0]: level and region are for bureau tokens, not operator",
    ),
    (
        "notifiers:\n  - {name: a, kind: webhook, url: http://x, secret_env: HOME, recipients: [control_room]}\n"
        "  - {name: a, kind: sms, url: http://y, recipients: [principal]}\n",
        "hazmon.yaml:3: notifiers[1]: notifier name 'a' used twice",
    ),
    (
        "notifiers:\n  - {name: m, kind: email, host: h, from: a@b.c, username: u, recipients: [principal]}\n",
        "hazmon.yaml:2: notifiers[0]: username given without password_env",
    ),
    (
        "notifiers:\n  - {name: a, kind: webhook, url: http://x, secret_env: 1BAD, recipients: [control_room]}\n",
        "hazmon.yaml:2: notifiers[0].secret_env: '1BAD' is not an environment variable name",
    ),
    (
        "notifiers:\n  - {name: a, kind: webhook, url: http://x, secret_env: HOME, recipients: []}\n",
        "hazmon.yaml:2: notifiers[0].recipients: expected at least one recipient",
    ),
    (
        "notifiers:\n  - {name: a, url: http://x, recipients: [control_room]}\n",
        "hazmon.yaml:2: notifiers[0].kind: missing required key 'kind'",
    ),
    ("notifiers:\n  - 5\n", "hazmon.yaml:2: notifiers[0]: expected a mapping, got '5'"),
    (
        "notifiers:\n  - {name: a, kind: sms, url: http://x, recipients: [control_room], secret_env: HOME}\n",
        "hazmon.yaml:2: notifiers[0].secret_env: unknown key 'secret_env' (allowed: body, content_type, headers, "
        "kind, method, name, recipients, timeout_s, url)",
    ),
    (
        "notifiers:\n  - name: m\n    kind: email\n    host: h\n    recipients: [principal]\n",
        "hazmon.yaml:2: notifiers[0].from: missing required key 'from'",
    ),
    (
        "escalation:\n  red:\n    - {after_s: 0, notify: []}\n",
        "hazmon.yaml:3: escalation.red[0].notify: expected at least one recipient",
    ),
]


@pytest.mark.parametrize(("text", "error"), BAD)
def test_bad_config_names_file_line_field_and_reason(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_document(text, "hazmon.yaml", parse_settings)
    assert str(e.value) == error


def test_defaults_from_an_empty_section() -> None:
    s = parse_document("{}\n", "hazmon.yaml", parse_settings)
    from hazmon.plant.standards import ALARM_TARGETS, Tier

    assert (s.flood_count, s.flood_window_s) == (ALARM_TARGETS.flood_count, ALARM_TARGETS.flood_window_s)
    assert [st.after_s for st in s.escalation[Tier.RED]] == [0.0, 300.0, 600.0, 1800.0]
