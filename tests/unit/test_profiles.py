"""Import profiles: every option's validation names its key; conversions follow their documented rules."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from detectors.it_metrics import (
    count_estimate,
    it_metrics,
    median_estimate,
    rate_estimate,
)
from monitor.ingest.mapping import (
    FieldCheck,
    convert_rating,
    latest_rows,
    parse_dates,
    pseudonym,
    strptime_digits,
)
from monitor.ingest.profiles import (
    Kind,
    ProfileError,
    builtin_names,
    parse_profile,
    resolve_profile,
)

BASE = {"columns": {"Id": "response_id", "When": "submitted_at", "Stars": "rating"}}


def profile(**extra):
    return parse_profile("p", {**BASE, **extra})


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"kind": "events"}, "profiles.p.kind"),
        ({"bogus": 1}, "profiles.p.bogus"),
        ({"columns": {"Id": "response_id", "When": "submitted_at", "Stars": "stars"}}, "profiles.p.columns.Stars"),
        ({"columns": {"Id": "response_id"}}, "profiles.p.columns"),
        ({"columns": {"Id": "response_id", "When": "submitted_at", "Stars": "rating", "X": "rating"}}, "profiles.p.columns"),
        ({"dimensions": "country"}, "profiles.p.dimensions"),
        ({"dimensions": ["Id"]}, "profiles.p.dimensions.Id"),
        ({"dimensions": {"Team": "rating"}}, "profiles.p.dimensions.Team"),
        ({"dimensions": ["caller_id"]}, "profiles.p.dimensions.caller_id"),
        ({"date_formats": ["dd/mm/yyyy"]}, "profiles.p.date_formats[0]"),
        ({"date_formats": ["%d/%m/%Q"]}, "profiles.p.date_formats[0]"),
        ({"day_first": "yes"}, "profiles.p.day_first"),
        ({"timezone": "Mars/Olympus"}, "profiles.p.timezone"),
        ({"missing": [1]}, "profiles.p.missing"),
        ({"latest": {"order": ["x"]}}, "profiles.p.latest.key"),
        ({"latest": {"key": "n", "sort": "x"}}, "profiles.p.latest.sort"),
        ({"constants": {"ticket_type": "problem"}}, "profiles.p.constants.ticket_type"),
        ({"constants": {"rating": "5"}}, "profiles.p.constants.rating"),
        ({"constants": {"channel": "x"}}, "profiles.p.constants.channel"),
        ({"value_maps": {"Channel": {"Teams": 1}}}, "profiles.p.value_maps.Channel"),
        ({"rating": {"scale": "5-1"}}, "profiles.p.rating.scale"),
        ({"rating": {"scale": "stars"}}, "profiles.p.rating.scale"),
        ({"rating": {"scale": "1-5", "yes": ["y"]}}, "profiles.p.rating.yes"),
        ({"rating": {"scale": "yes-no", "yes": ["y"], "no": ["y"]}}, "profiles.p.rating.no"),
        ({"rating": {"scale": "1-5", "step": 1}}, "profiles.p.rating.step"),
        ({"factor_separator": " "}, "profiles.p.factor_separator"),
        ({"people": {"user": "encrypt"}}, "profiles.p.people.user"),
        ({"sheet": 3}, "profiles.p.sheet"),
        ({"pivot": {"key": "instance"}}, "profiles.p.pivot.metric"),
        ({"description": 5}, "profiles.p.description"),
    ],
)
def test_every_bad_option_names_its_key(raw, key):
    with pytest.raises(ProfileError) as error:
        parse_profile("p", {**BASE, **raw})
    assert str(error.value).startswith(key + ":"), str(error.value)


def test_people_are_never_mapped_in_clear():
    with pytest.raises(ProfileError, match=r"profiles.p.columns.user: 'user' identifies a person"):
        parse_profile("p", {"columns": {**BASE["columns"], "user": "comment"}})
    with pytest.raises(ProfileError, match="profiles.p.people.caller_id"):
        parse_profile("p", {"kind": "tickets", "columns": {"n": "ticket_id", "o": "opened_at", "caller_id": "caller"}})
    ok = parse_profile("p", {"kind": "tickets", "columns": {"n": "ticket_id", "o": "opened_at", "caller_id": "caller"}, "people": {"caller_id": "hash"}})
    assert ok.kind is Kind.TICKETS


def test_pseudonym_is_keyed_and_stable():
    assert pseudonym("Caller 1", "k1") == pseudonym(" caller 1 ", "k1")
    assert pseudonym("Caller 1", "k1") != pseudonym("Caller 1", "k2")
    assert len(pseudonym("Caller 1", "k1")) == 16 and "Caller" not in pseudonym("Caller 1", "k1")


def test_builtins_parse_and_are_listed():
    assert {"servicenow_incident", "servicenow_survey"} <= set(builtin_names())
    incident = resolve_profile("servicenow_incident", {})
    assert incident.kind is Kind.TICKETS and incident.latest.key == ("number",)
    assert incident.people["caller_id"].value == "hash"
    assert resolve_profile("servicenow_survey", {}).pivot.key == "instance"
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        resolve_profile("nope", {})


def test_profile_file_errors_name_the_file(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[columns]\nId = "response_id"\n')
    with pytest.raises(ProfileError, match=rf"{path}: columns: no column is mapped to the required field\(s\) submitted_at, rating"):
        resolve_profile(str(path), {})


@pytest.mark.parametrize(
    ("scale", "given", "expected"),
    [
        ("1-5", ["1", "2", "3", "4", "5"], ["0", "3", "5", "8", "10"]),
        ("0-100", ["0", "64", "65", "85", "95", "100"], ["0", "6", "7", "9", "10", "10"]),
        ("0-10", ["0", "7", "10"], ["0", "7", "10"]),
        ("1-7", ["1", "4", "7"], ["0", "5", "10"]),
    ],
)
def test_rating_scale_rule(scale, given, expected):
    p = profile(rating={"scale": scale})
    check = FieldCheck(np.arange(len(given)))
    assert convert_rating(check, pa.array(given), p).to_pylist() == expected
    assert not check.bad.any()


def test_yes_no_and_bad_ratings_name_the_source_column():
    p = profile(rating={"scale": "yes-no", "yes": ["Ja", "yes"], "no": ["Nein"]})
    check = FieldCheck(np.array([2, 3, 4]))
    assert convert_rating(check, pa.array(["ja", "Nein", "maybe"]), p).to_pylist()[:2] == ["10", "0"]
    assert [(x.record, x.column) for x in check.problems] == [(4, "Stars")]
    p = profile(rating={"scale": "1-5"})
    check = FieldCheck(np.array([2, 3, 4]))
    convert_rating(check, pa.array(["6", "x", ""]), p)
    assert [(x.record, x.column, x.message) for x in check.problems] == [
        (4, "Stars", "required: a rating"),
        (3, "Stars", "must be a number from 1 to 5, got 'x'"),
        (2, "Stars", "must be from 1 to 5 on this profile's scale, got 6"),
    ]


def test_dates_with_formats_day_first_and_zone():
    p = profile(date_formats=["%d/%m/%Y %H:%M"], timezone="Europe/Helsinki")
    micros, bad = parse_dates(pa.array(["29/2/2016 01:16", "2016-03-01T10:00:00Z", "", "31/31/2016 10:00"]), p, ZoneInfo("Europe/Helsinki"))
    as_text = np.datetime_as_string(micros[:2].astype("datetime64[us]"), unit="m").tolist()
    assert as_text == ["2016-02-28T23:16", "2016-03-01T10:00"]  # Helsinki is UTC+2 in winter
    assert bad.tolist() == [False, False, False, True]
    free = profile(day_first=True)
    micros, bad = parse_dates(pa.array(["3/4/2016 10:00"]), free, ZoneInfo("UTC"))
    assert np.datetime_as_string(micros.astype("datetime64[us]"), unit="D").tolist() == ["2016-04-03"]


_NUMBER = st.one_of(st.integers(0, 99).map(str), st.integers(0, 99).map("{:02d}".format), st.sampled_from(["2016", "1999", "0999", "2400", " 7", "٣", "+1", ""]))
_DATE_LIKE = st.lists(st.tuples(_NUMBER, st.sampled_from(["/", "-", ":", " ", "  ", "T", "."])), min_size=1, max_size=7).map(
    lambda parts: "".join(number + separator for number, separator in parts).rstrip("/-:. T")
)


@given(st.lists(_DATE_LIKE, min_size=1, max_size=40), st.sampled_from(["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y", "%H:%M %d.%m.%Y"]))
@example(["29/2/2016 01:16", "29/2/2015 01:16", "31/4/2016 10:00", "1/12/2016 23:59", "01/02/2016 24:00"], "%d/%m/%Y %H:%M")
@example(["2016-1-2 03:04:05", "2016-01-02 3:04:60", "2016-01-02T03:04:05"], "%Y-%m-%d %H:%M:%S")
def test_digit_dates_read_as_pandas_reads_them(values, fmt):
    """The Arrow fast path takes only values pandas reads, and reads them the same."""
    naive, ok = strptime_digits(pa.array(values), fmt)
    expected = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce")
    assert expected[ok].notna().all()
    assert (naive[ok] == expected[ok].to_numpy().astype("datetime64[us]")).all()


def test_latest_row_per_key_by_order_then_file_position():
    p = parse_profile("p", {"kind": "tickets", "columns": {"n": "ticket_id", "o": "opened_at"}, "date_formats": ["%d/%m/%Y %H:%M"], "latest": {"key": "n", "order": ["u", "m"]}})
    table = pa.table({
        "n": ["A", "A", "B", "A", "B", ""],
        "u": ["1/3/2016 10:00", "2/3/2016 10:00", "1/3/2016 10:00", "2/3/2016 10:00", "x", "1/3/2016 10:00"],
        "m": ["0", "1", "0", "0", "3", "0"],
        "o": [""] * 6,
    })
    numbers, kept, problems = latest_rows(table, np.arange(2, 8), p)
    assert numbers.tolist() == [3, 4]  # A: latest date, then higher mod count; B: its only good row
    assert [(x.record, x.column) for x in problems] == [(7, "n"), (6, "u")]


def test_wilson_poisson_and_median_intervals():
    rate = rate_estimate(8, 10)
    assert rate.value == 80.0 and rate.ci_low == pytest.approx(49.02, abs=0.01) and rate.ci_high == pytest.approx(94.33, abs=0.01)
    count = count_estimate(10)
    assert (count.ci_low, count.ci_high) == (pytest.approx(4.7954, abs=1e-3), pytest.approx(18.3904, abs=1e-3))
    median = median_estimate(np.arange(1, 21, dtype=float))  # n = 20: l = 6, so [x_(6), x_(15)]
    assert (median.value, median.ci_low, median.ci_high) == (10.5, 6.0, 15.0)
    tiny = median_estimate([5.0, 1.0, 3.0])
    assert (tiny.ci_low, tiny.ci_high, tiny.n) == (1.0, 5.0, 3)


def test_it_metric_formulas():
    import pandas as pd

    frame = pd.DataFrame({
        "resolved": [True, True, True, True, False],
        "resolution_hours": [1.0, 2.0, 3.0, 10.0, np.nan],
        "sla_met": [1.0, 0.0, 1.0, np.nan, 1.0],
        "reassignment_count": [0.0, 2.0, 0.0, 1.0, 5.0],
        "reopen_count": [0.0, 0.0, 1.0, np.nan, 0.0],
        "answered": [True, False, True, True, True],
        "feedback_hours": [5.0, np.nan, 7.0, -1.0, 1.0],
    })
    m = it_metrics(frame)
    assert m["resolved_volume"].value == 4
    assert m["sla_met_rate"].value == pytest.approx(200 / 3) and m["sla_met_rate"].n == 3
    assert m["reassignment_rate"].value == 50.0 and m["reassignment_rate"].n == 4
    assert m["reopen_rate"].value == pytest.approx(100 / 3)
    assert m["median_resolution_hours"].value == 2.5
    assert m["survey_response_rate"].value == 75.0
    assert m["feedback_delay_hours"].value == 6.0 and m["feedback_delay_hours"].n == 2  # the negative delay is left out
