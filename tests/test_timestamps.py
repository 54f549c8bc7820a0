"""RFC 3339 timestamps: the fast formatting says what datetime says, and parses back."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from drivers.timestamps import parse_rfc3339, rfc3339

TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(
    0, 4 * 10**9).map(lambda s: s + 0.9995) | st.integers(0, 4 * 10**9).map(lambda s: s + 0.9999995)


@given(TIMES)
def test_formatting_is_datetimes(t: float) -> None:
    dt = datetime.fromtimestamp(t, UTC)
    assert rfc3339(t) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@given(TIMES)
def test_parsing_gives_the_time_to_the_millisecond(t: float) -> None:
    assert abs(parse_rfc3339(rfc3339(t)) - t) < 0.001 + 1e-6


def test_examples() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_764_108_843.12) == "2025-11-25T22:14:03.120Z"
