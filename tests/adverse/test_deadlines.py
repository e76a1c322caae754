"""Deadline arithmetic: work days across weekends and holidays, calendar days, DST, local vs UTC dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from monitor.adverse import deadlines, jurisdictions
from monitor.adverse.deadlines import Calendar
from monitor.config import load_settings
from monitor.errors import ConfigurationError

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")
US = Calendar("US")
DE = Calendar("DE")
WEEKENDS_ONLY = Calendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_ten_work_days_skip_two_weekends() -> None:
    # Aware Monday 7 Dec: 8-11 Dec (4), 14-18 Dec (9), Monday 21 Dec is the 10th work day.
    aware = datetime(2026, 12, 7, 10, 0, tzinfo=NEW_YORK)
    assert deadlines.due_date(date(2026, 12, 7), 10, "work", US) == date(2026, 12, 21)
    # The end of that local day, 23:59:59 EST, is 04:59:59 UTC the next day.
    assert deadlines.deadline(aware, 10, "work", US, NEW_YORK) == utc(2026, 12, 22, 4, 59, 59)


def test_work_days_skip_christmas_and_new_year() -> None:
    # Aware Friday 18 Dec: 21-24 (4), 25 Christmas, 28-31 (8), 1 Jan New Year, 4 and 5 Jan (10).
    assert deadlines.due_date(date(2026, 12, 18), 10, "work", US) == date(2027, 1, 5)
    # Without the holiday calendar the same count ends two work days earlier.
    assert deadlines.due_date(date(2026, 12, 18), 10, "work", WEEKENDS_ONLY) == date(2027, 1, 1)


def test_remedial_five_work_days_skip_thanksgiving() -> None:
    # Aware Thursday 19 Nov: 20 (1), 23-25 (4), 26 Thanksgiving, Friday 27 Nov (5).
    assert deadlines.due_date(date(2026, 11, 19), 5, "work", US) == date(2026, 11, 27)


def test_awareness_on_a_weekend_counts_from_the_next_work_day() -> None:
    assert deadlines.due_date(date(2026, 12, 12), 1, "work", US) == date(2026, 12, 14)  # Sat -> Mon
    assert deadlines.due_date(date(2026, 12, 12), 0, "work", US) == date(2026, 12, 12)


def test_extra_facility_holidays_count_as_non_work_days() -> None:
    closed = Calendar("US", extra_holidays=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
    assert closed.holiday_name(date(2026, 12, 24)) == "facility holiday"
    assert deadlines.due_date(date(2026, 12, 18), 10, "work", closed) == date(2027, 1, 7)


def test_calendar_days_ignore_weekends_and_holidays() -> None:
    aware = datetime(2026, 12, 7, 10, 0, tzinfo=NEW_YORK)
    assert deadlines.deadline(aware, 30, "calendar", US, NEW_YORK) == utc(2027, 1, 7, 4, 59, 59)  # 6 Jan EST
    # 15 days from 18 Dec lands on Saturday 2 Jan, past both holidays: no shift to a work day.
    assert deadlines.due_date(date(2026, 12, 18), 15, "calendar", US) == date(2027, 1, 2)


def test_awareness_late_in_the_evening_counts_the_local_day_not_the_utc_day() -> None:
    # Thursday 3 Dec 23:30 in New York is already Friday 04:30 UTC.
    aware = datetime(2026, 12, 3, 23, 30, tzinfo=NEW_YORK)
    assert aware.astimezone(UTC).date() == date(2026, 12, 4)
    assert deadlines.local_date(aware, NEW_YORK) == date(2026, 12, 3)
    # Thursday + 10 work days = Thursday 17 Dec; counting from the UTC Friday would say 18 Dec.
    assert deadlines.deadline(aware, 10, "work", US, NEW_YORK) == utc(2026, 12, 18, 4, 59, 59)
    assert deadlines.deadline(aware.astimezone(UTC), 10, "work", US, ZoneInfo("UTC")) == utc(2026, 12, 18, 23, 59, 59)


def test_time_zone_east_of_utc_counts_from_the_local_next_day() -> None:
    # 23:30 UTC on Monday 7 Dec is already Tuesday 00:30 in Berlin (and 08:30 in Tokyo).
    aware = utc(2026, 12, 7, 23, 30)
    assert deadlines.deadline(aware, 15, "calendar", DE, BERLIN) == utc(2026, 12, 23, 22, 59, 59)
    assert deadlines.deadline(aware, 15, "calendar", Calendar("JP"), TOKYO) == utc(2026, 12, 23, 14, 59, 59)
    # West of UTC the same instant is still Monday.
    assert deadlines.deadline(aware, 15, "calendar", US, NEW_YORK) == utc(2026, 12, 23, 4, 59, 59)


def test_a_dst_change_moves_the_utc_instant_not_the_local_day() -> None:
    # Berlin springs forward on Sunday 28 Mar 2027: aware in CET (UTC+1), due in CEST (UTC+2).
    aware = datetime(2027, 3, 20, 12, 0, tzinfo=BERLIN)
    due = deadlines.deadline(aware, 15, "calendar", DE, BERLIN)
    assert due == utc(2027, 4, 4, 21, 59, 59)
    assert due.astimezone(BERLIN).strftime("%d %b %H:%M:%S %Z") == "04 Apr 23:59:59 CEST"
    # New York falls back on Sunday 1 Nov 2026: aware in EDT (UTC-4), due in EST (UTC-5).
    aware = datetime(2026, 10, 26, 9, 0, tzinfo=NEW_YORK)
    assert deadlines.deadline(aware, 10, "work", US, NEW_YORK) == utc(2026, 11, 10, 4, 59, 59)


def test_countdown_reads_like_the_dashboard() -> None:
    due = deadlines.deadline(datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN), 10, "work", DE, BERLIN)
    now = datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)
    shown = deadlines.countdown(now=now, due_at=due, unit="work", calendar=DE, zone=BERLIN)
    assert shown.text == "5 work days left, due Mon 14 Dec 2026 23:59 CET"
    assert not shown.overdue and shown.days_left == 5
    on_the_day = deadlines.countdown(
        now=datetime(2026, 12, 14, 20, 0, tzinfo=BERLIN), due_at=due, unit="work", calendar=DE, zone=BERLIN
    )
    assert on_the_day.text == "due today, Mon 14 Dec 2026 23:59 CET"
    late = deadlines.countdown(
        now=datetime(2026, 12, 16, 8, 0, tzinfo=BERLIN), due_at=due, unit="work", calendar=DE, zone=BERLIN
    )
    assert late.overdue and late.text == "overdue by 2 days, was due Mon 14 Dec 2026 23:59 CET"
    calendar_days = deadlines.countdown(now=now, due_at=due, unit="calendar", calendar=DE, zone=BERLIN)
    assert calendar_days.text == "7 days left, due Mon 14 Dec 2026 23:59 CET"


def test_countdown_one_second_after_the_deadline_is_overdue() -> None:
    due = utc(2026, 12, 14, 22, 59, 59)
    shown = deadlines.countdown(now=utc(2026, 12, 14, 23, 0, 0), due_at=due, unit="work", calendar=DE, zone=BERLIN)
    assert shown.overdue and shown.text.startswith("overdue by 1 day")


def test_reminders_fall_on_work_day_mornings_before_the_deadline() -> None:
    due = deadlines.deadline(datetime(2026, 12, 7, 10, 0, tzinfo=NEW_YORK), 10, "work", US, NEW_YORK)  # Mon 21 Dec
    stages = deadlines.reminder_schedule(due_at=due, calendar=US, zone=NEW_YORK, work_days_before=(1, 3))
    assert [(s.stage, s.at) for s in stages] == [
        ("3wd", utc(2026, 12, 16, 13, 0)),  # Wed 16 Dec 08:00 EST
        ("1wd", utc(2026, 12, 18, 13, 0)),  # Fri 18 Dec 08:00 EST (the weekend is not a work day)
        ("overdue", utc(2026, 12, 22, 5, 0, 0)),
    ]
    assert deadlines.due_reminder(now=utc(2026, 12, 16, 12, 59), stages=stages, already=()) == (None, [])
    send, skipped = deadlines.due_reminder(now=utc(2026, 12, 17), stages=stages, already=())
    assert send is not None and send.stage == "3wd" and skipped == []
    assert deadlines.due_reminder(now=utc(2026, 12, 17), stages=stages, already=("3wd",)) == (None, [])
    # Classified late (or the scheduler was down): only the most urgent reminder goes out.
    send, skipped = deadlines.due_reminder(now=utc(2026, 12, 23), stages=stages, already=())
    assert send is not None and send.stage == "overdue" and [s.stage for s in skipped] == ["3wd", "1wd"]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deadlines.local_date(datetime(2026, 12, 7, 10, 0), BERLIN)


def test_default_jurisdictions_carry_the_regulations() -> None:
    configured = jurisdictions.parse("")
    assert set(configured) == {"fda-user-facility", "fda-manufacturer", "eu-mdr-serious-incident"}
    assert configured["fda-user-facility"].rule(False) == (10, "work", "21 CFR 803.30")
    assert configured["fda-manufacturer"].rule(False) == (30, "calendar", "21 CFR 803.50")
    assert configured["fda-manufacturer"].rule(True) == (5, "work", "21 CFR 803.53")
    assert configured["eu-mdr-serious-incident"].rule(True) == (15, "calendar", "MDR Art. 87(3)")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[]", "non-empty JSON list"),
        ("{not json", "RADMON_ADVERSE_JURISDICTIONS"),
        ('[{"code": "x", "name": "X", "days": 5, "unit": "fortnights"}]', "unit"),
        ('[{"code": "x", "name": "X", "days": 5, "unit": "work", "country": "ZZ"}]', "no holiday calendar"),
        (
            '[{"code": "x", "name": "X", "days": 5, "unit": "work"}, {"code": "x", "name": "Y", "days": 1, "unit": "work"}]',
            "appears twice",
        ),
    ],
)
def test_bad_jurisdiction_settings_are_refused_with_the_variable_name(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        jurisdictions.parse(raw)


def test_configured_jurisdiction_with_its_own_holidays() -> None:
    raw = (
        '[{"code": "bfarm", "name": "BfArM", "days": 3, "unit": "work", "country": "de", "subdivision": "BY",'
        ' "extra_holidays": ["2026-12-24"]}]'
    )
    [bfarm] = jurisdictions.parse(raw).values()
    # 24 Dec facility holiday, 25 and 26 Dec public holidays, the weekend: 23 Dec + 3 work days = 30 Dec.
    assert deadlines.due_date(date(2026, 12, 23), 3, "work", bfarm.calendar) == date(2026, 12, 30)


def test_settings_refuse_an_unknown_time_zone() -> None:
    with pytest.raises(ConfigurationError, match="RADMON_FACILITY_TIMEZONE: .*IANA time zone"):
        load_settings(demo=True, facility_timezone="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="RADMON_ADVERSE_REMINDER_WORK_DAYS"):
        load_settings(demo=True, adverse_reminder_work_days="3,soon")
