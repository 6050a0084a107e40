"""Pure parts of the notifiers: signature, SMS template, MQTT topic, message texts."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hazmon.alarms.escalation import Contact
from hazmon.alarms.messages import AlarmInfo, render
from hazmon.alarms.notify_mqtt import MqttNotifier, MqttSettings
from hazmon.alarms.notify_sms import SmsSettings
from hazmon.alarms.notify_sms import render as sms_render
from hazmon.alarms.notify_webhook import sign
from hazmon.plant import Plant
from tests.alarms.helpers import T0


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a": 1}'
    assert sign(b"k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(b"k", body) != sign(b"other", body)


SMS = [
    (
        SmsSettings("http://gw/send?to={phone}"),
        ("http://gw/send?to=%2B86%20138", '{"to": "+86 138", "text": "红色 \\"x\\"\\n", "id": "d1"}'),
    ),
    (
        SmsSettings(
            "http://gw/send", body="to={phone}&msg={text}", content_type="application/x-www-form-urlencoded"
        ),
        ("http://gw/send", "to=%2B86+138&msg=%E7%BA%A2%E8%89%B2+%22x%22%0A"),
    ),
]


@pytest.mark.parametrize(("settings", "want"), SMS)
def test_sms_template_escapes_per_content_type(settings: SmsSettings, want: tuple[str, str]) -> None:
    assert sms_render(settings, "+86 138", '红色 "x"\n', "d1") == want


def test_mqtt_topic_per_region() -> None:
    n = MqttNotifier(
        "p", MqttSettings("mqtt://h:1", topic="plat/{enterprise}/{region}", enterprise="hx-chem")
    )
    assert n.address(Contact("bureau", "", "", "320100")) == "plat/hx-chem/320100"


def test_message_is_bilingual_and_grouped(example_plant: Plant) -> None:
    a = AlarmInfo(
        7, "cl2-tankfarm", "AT-101", "gas_second", 4, "active_unacked", T0, 3.2, 2.0, "Cl2 high", "氯气高"
    )
    b = AlarmInfo(
        8, "cl2-tankfarm", "AT-102", "gas_first", 2, "active_unacked", T0, 1.2, 1.0, "Cl2 up", "氯气升高"
    )
    subject, text, short, payload = render(example_plant, [a, b], "operational", "escalation", locale="zh")
    assert subject.startswith("【红色预警】华兴化工有限公司 液氯储罐区 报警 2 条 / [RED] Huaxing Chemical")
    assert text.index("致操作负责人") < text.index("to operational")  # Chinese first
    assert "氯气高" in text and "Cl2 up" in text and "(#8)" in text
    assert short == "红色预警 华兴化工有限公司 液氯储罐区: 氯气高 等2条"
    assert [x["id"] for x in payload["alarms"]] == [7, 8] and payload["tier"] == "red"
    subject_en, text_en, _, _ = render(example_plant, [a], "bureau_city", "escalation", locale="en")
    assert subject_en.startswith("[RED]") and text_en.index("to bureau city") < text_en.index(
        "致市级应急管理部门"
    )
