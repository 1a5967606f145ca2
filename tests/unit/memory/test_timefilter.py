import math

import pytest

from memory.errors import TimeRangeError
from memory.timefilter import check_k, check_window, parse_time


@pytest.mark.parametrize(
    ("since", "until"), [(5.0, 5.0), (6.0, 5.0), (math.nan, None), (None, math.inf), ("10", None)]
)
def test_malformed_windows_are_refused(since, until):
    with pytest.raises(TimeRangeError):
        check_window(since, until)


def test_open_ended_windows_are_fine():
    assert check_window(None, None) == (None, None)
    assert check_window(1, None) == (1.0, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90.0),
        ("1:30", 90.0),
        ("1:02:03.5", 3723.5),
        ("1970-01-01T00:01:00", 60.0),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("15m ago", 1000.0 - 900.0),
        ("-2h", 1000.0 - 7200.0),
    ],
)
def test_parse_time_reads_each_form(text, expected):
    assert parse_time(text, now_wall_s=1000.0) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "1:xx", "nan", ""])
def test_parse_time_names_the_allowed_forms(text):
    with pytest.raises(TimeRangeError, match="clock position"):
        parse_time(text, now_wall_s=0.0)


@pytest.mark.parametrize("k", [0, 1001, 2.0, True])
def test_k_is_bounded(k):
    with pytest.raises(ValueError, match="k must be"):
        check_k(k)
