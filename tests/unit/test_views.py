"""Unit tests for minidock.service.views: go-units' HumanDuration and `docker ps` STATUS.

Expected strings follow github.com/docker/go-units duration.go (HumanDuration).
"""

from __future__ import annotations

from typing import Any

import pytest

from minidock.model import Container
from minidock.service.views import human_duration, status_text

HOUR = 3600
DAY = 24 * HOUR


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "Less than a second"),
    (0.5, "Less than a second"),
    (0.999, "Less than a second"),
    (1, "1 second"),
    (1.9, "1 second"),
    (2, "2 seconds"),
    (59, "59 seconds"),
    (59.99, "59 seconds"),
    (60, "About a minute"),
    (119, "About a minute"),
    (120, "2 minutes"),
    (3599, "59 minutes"),
    (HOUR, "About an hour"),
    (HOUR + 29 * 60, "About an hour"),   # 1.48 h rounds to 1
    (HOUR + 31 * 60, "2 hours"),         # 1.52 h rounds to 2
    (2 * HOUR, "2 hours"),
    (47 * HOUR, "47 hours"),
    (48 * HOUR, "2 days"),
    (13 * DAY, "13 days"),
    (14 * DAY, "2 weeks"),
    (59 * DAY, "8 weeks"),
    (60 * DAY, "2 months"),
    (729 * DAY, "24 months"),
    (730 * DAY, "2 years"),
    (3 * 365 * DAY, "3 years"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(2.5 * HOUR, "3 hours"), (4.5 * HOUR, "5 hours")])
def test_human_duration_rounds_half_hours_up_like_go(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def container(status: str, **state: Any) -> dict[str, Any]:
    return Container.from_json({"id": "c", "name": "c", "state": {"status": status, "pid": 0, "exit_code": 0,
                                                                  "started_at": 0, "finished_at": 0, **state}})


NOW = 1_700_000_000.0


def test_status_text_running() -> None:
    assert status_text(container("running", started_at=NOW - 300), NOW) == "Up 5 minutes"
    assert status_text(container("running", started_at=NOW - 0.2), NOW) == "Up Less than a second"


def test_status_text_exited_shows_code_and_age() -> None:
    c = container("exited", exit_code=137, started_at=NOW - 7200, finished_at=NOW - 45)
    assert status_text(c, NOW) == "Exited (137) 45 seconds ago"
    c = container("exited", exit_code=0, finished_at=NOW - 2 * DAY)
    assert status_text(c, NOW) == "Exited (0) 2 days ago"


def test_status_text_created() -> None:
    assert status_text(container("created"), NOW) == "Created"
