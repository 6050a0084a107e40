"""The HTTPS sender reads the bureau's Retry-After (pure: RFC 9110 §10.2.3, delta-seconds or an HTTP date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from hazmon.uplink.https_sender import _retry_after


def test_retry_after_seconds_date_and_nonsense() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(" 2 ") == 2.0
    assert _retry_after("999999") == 3600.0  # not believed beyond an hour
    later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    assert 3000 < (_retry_after(later) or 0) <= 3600.0
    past = format_datetime(datetime.now(UTC) - timedelta(hours=2), usegmt=True)
    assert _retry_after(past) == 0.0
    assert _retry_after(None) is None and _retry_after("") is None and _retry_after("soon") is None
