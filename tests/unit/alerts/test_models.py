import datetime as dt
import zoneinfo

import pytest
from pydantic import ValidationError

from api.alerts.config import AlertSettings
from api.alerts.models import REVEAL, AlertSpec, Schedule, TimeWindow, WebhookChannel

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def at(y, m, d, hh, mm=0) -> float:
    return dt.datetime(y, m, d, hh, mm, tzinfo=BERLIN).timestamp()


def test_schedule_windows_are_local_time_of_day_on_given_days():
    weekdays = TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start=dt.time(8), end=dt.time(18))
    office = Schedule(timezone="Europe/Berlin", windows=[weekdays])
    assert office.is_active(at(2025, 3, 5, 9))  # a Wednesday
    assert not office.is_active(at(2025, 3, 5, 18))  # end is exclusive
    assert not office.is_active(at(2025, 3, 8, 9))  # Saturday
    assert office.is_active(at(2025, 7, 2, 8, 30))  # summer time: still local 08:30


def test_a_window_past_midnight_belongs_to_the_day_it_starts():
    window = TimeWindow(days=["fri"], start=dt.time(22), end=dt.time(6))
    friday_night = Schedule(timezone="Europe/Berlin", windows=[window])
    assert friday_night.is_active(at(2025, 3, 7, 23))  # Friday 23:00
    assert friday_night.is_active(at(2025, 3, 8, 5))  # Saturday 05:00, still Friday's window
    assert not friday_night.is_active(at(2025, 3, 8, 23))  # Saturday night
    assert not friday_night.is_active(at(2025, 3, 7, 5))  # Friday early morning is Thursday's night


def test_no_windows_or_no_wall_clock_means_always():
    night = Schedule(windows=[TimeWindow(start=dt.time(22), end=dt.time(6))])
    assert Schedule().is_active(at(2025, 3, 5, 12)) and night.is_active(None)


def test_bad_definitions_are_refused_by_name():
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Schedule(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="webhook url must be http"):
        WebhookChannel(url="ftp://example.com/x")
    with pytest.raises(ValidationError, match="at least 16 characters"):
        WebhookChannel(url="http://example.com/x", secret="short")
    with pytest.raises(ValidationError, match="query must hold some words"):
        AlertSpec(query="   ")
    with pytest.raises(ValidationError, match="mqtt topic"):
        AlertSpec(query="x", channels={"mqtt": {"topic": "a/#"}})
    with pytest.raises(ValidationError, match="warm-up floors"):
        AlertSettings(scoring={"text_min_score": 0.8, "warmup_text_score": 0.7})


def test_webhook_secrets_are_masked_unless_stored():
    spec = AlertSpec(query="x", channels={"webhooks": [{"url": "http://h/x", "secret": "s" * 20}]})
    assert spec.model_dump(mode="json")["channels"]["webhooks"][0]["secret"] == "**********"
    assert "s" * 20 not in spec.model_dump_json()
    stored = spec.model_dump_json(context=REVEAL)
    assert AlertSpec.model_validate_json(stored).channels.webhooks[0].secret.get_secret_value() == "s" * 20
