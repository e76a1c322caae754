"""Reporting deadlines as pure functions: work and calendar days, holidays, the facility's time zone.

Conventions (decision 0601):
- the day the facility became aware is day 0; "within N days" counts the days after it (21 CFR 803.30,
  803.50; MDR Art. 87 "not later than 15 days after ... becoming aware");
- the day of awareness is the *local* date in the facility's time zone (an event noticed at 23:30 in
  New York on Friday is a Friday event although it is Saturday in UTC);
- a work day is Monday to Friday and not a holiday of the jurisdiction's calendar (plus extra dates);
  work days counted from a weekend or holiday awareness start with the next work day;
- the deadline is the end of the local due day (23:59:59 local), stored in UTC, so a change of daylight
  saving time between awareness and deadline moves the UTC instant, never the local day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

Unit = Literal["work", "calendar"]
END_OF_DAY = time(23, 59, 59)
# Reminders go out at the start of a local working morning, not at midnight.
REMINDER_HOUR = time(8, 0)


@dataclass(frozen=True)
class Calendar:
    """Which local days are work days: weekends, a country's public holidays, extra dates."""

    country: str = ""
    subdivision: str = ""
    extra_holidays: frozenset[date] = field(default_factory=frozenset)

    def holiday_name(self, day: date) -> str | None:
        if day in self.extra_holidays:
            return "facility holiday"
        if not self.country:
            return None
        return _country_holidays(self.country, self.subdivision, day.year).get(day)

    def is_work_day(self, day: date) -> bool:
        return day.weekday() < 5 and self.holiday_name(day) is None


_HOLIDAY_CACHE: dict[tuple[str, str, int], holidays.HolidayBase] = {}


def _country_holidays(country: str, subdivision: str, year: int) -> holidays.HolidayBase:
    key = (country, subdivision, year)
    if key not in _HOLIDAY_CACHE:
        _HOLIDAY_CACHE[key] = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return _HOLIDAY_CACHE[key]


def known_country(country: str, subdivision: str = "") -> bool:
    """Whether the holidays package has a calendar for the country (and subdivision)."""
    try:
        holidays.country_holidays(country, subdiv=subdivision or None, years=2026)
    except NotImplementedError:
        return False
    return True


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day an instant falls on in the facility's time zone."""
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(zone).date()


def add_work_days(start: date, count: int, calendar: Calendar) -> date:
    """The `count`-th work day after `start` (start itself is day 0, whatever it is)."""
    if count < 0:
        raise ValueError("count must be >= 0")
    day = start
    left = count
    while left > 0:
        day += timedelta(days=1)
        if calendar.is_work_day(day):
            left -= 1
    return day


def due_date(aware_on: date, days: int, unit: Unit, calendar: Calendar) -> date:
    """The last local day on which the report is still on time."""
    if unit == "calendar":
        return aware_on + timedelta(days=days)
    return add_work_days(aware_on, days, calendar)


def end_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """23:59:59 local on `day`, as a UTC instant."""
    return datetime.combine(day, END_OF_DAY, tzinfo=zone).astimezone(UTC)


def deadline(aware_at: datetime, days: int, unit: Unit, calendar: Calendar, zone: ZoneInfo) -> datetime:
    """When a report on an event the facility became aware of at `aware_at` is due (UTC)."""
    return end_of_local_day(due_date(local_date(aware_at, zone), days, unit, calendar), zone)


def work_days_between(after: date, through: date, calendar: Calendar) -> int:
    """Work days d with after < d <= through (0 when through <= after)."""
    count = 0
    day = after
    while day < through:
        day += timedelta(days=1)
        count += calendar.is_work_day(day)
    return count


@dataclass(frozen=True)
class Countdown:
    """Where a deadline stands at a moment, in the words the dashboard and emails use."""

    due_at: datetime
    due_local: datetime
    overdue: bool
    days_left: int  # in the deadline's unit, days after today up to the due day
    work_days_left: int
    unit: Unit
    text: str


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def due_label(due_at: datetime, zone: ZoneInfo) -> str:
    """'Mon 14 Dec 2026 23:59 CET': the local due time with its zone abbreviation."""
    local = due_at.astimezone(zone)
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()}"


def countdown(*, now: datetime, due_at: datetime, unit: Unit, calendar: Calendar, zone: ZoneInfo) -> Countdown:
    """'5 work days left, due Mon 14 Dec 2026 23:59 CET'; 'due today ...'; 'overdue by 2 days ...'."""
    today = local_date(now, zone)
    due_day = local_date(due_at, zone)
    work_left = work_days_between(today, due_day, calendar)
    days_left = work_left if unit == "work" else max((due_day - today).days, 0)
    label = due_label(due_at, zone)
    if now > due_at:
        late = (today - due_day).days
        late_text = _plural(late, "day") if late >= 1 else "less than a day"
        text = f"overdue by {late_text}, was due {label}"
        return Countdown(due_at, due_at.astimezone(zone), True, 0, 0, unit, text)
    if today == due_day:
        text = f"due today, {label}"
    else:
        word = "work day" if unit == "work" else "day"
        text = f"{_plural(days_left, word)} left, due {label}"
    return Countdown(due_at, due_at.astimezone(zone), False, days_left, work_left, unit, text)


def work_day_before(day: date, count: int, calendar: Calendar) -> date:
    """The `count`-th work day before `day`."""
    current = day
    left = count
    while left > 0:
        current -= timedelta(days=1)
        if calendar.is_work_day(current):
            left -= 1
    return current


@dataclass(frozen=True)
class ReminderStage:
    stage: str  # "3wd", "1wd", "overdue"
    at: datetime  # UTC instant from which the reminder is due
    label: str


def reminder_schedule(
    *, due_at: datetime, calendar: Calendar, zone: ZoneInfo, work_days_before: Iterable[int] = (3, 1)
) -> list[ReminderStage]:
    """When each reminder falls due: 08:00 local on the N-th work day before the due day, and just
    after the deadline passed; ordered from the earliest."""
    due_day = local_date(due_at, zone)
    stages = []
    for count in sorted(set(work_days_before), reverse=True):
        day = work_day_before(due_day, count, calendar)
        at = datetime.combine(day, REMINDER_HOUR, tzinfo=zone).astimezone(UTC)
        stages.append(ReminderStage(f"{count}wd", at, f"{_plural(count, 'work day')} before the deadline"))
    stages.append(ReminderStage("overdue", due_at + timedelta(seconds=1), "the deadline has passed"))
    return stages


def due_reminder(
    *, now: datetime, stages: list[ReminderStage], already: Iterable[str]
) -> tuple[ReminderStage | None, list[ReminderStage]]:
    """The one reminder to send now (the most urgent stage that fell due and was not recorded) and the
    earlier stages it supersedes (due but never sent: a late classification skips them)."""
    done = set(already)
    due = [stage for stage in stages if stage.at <= now and stage.stage not in done]
    if not due:
        return None, []
    return due[-1], due[:-1]
