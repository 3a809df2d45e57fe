"""The synthetic generator: exact shape, reproducibility, file formats, and that the
planted ground truth really is in the data the detectors will be judged on."""

from __future__ import annotations

import csv
import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.dev.synthetic import (
    COLUMNS,
    DIMENSIONS,
    FACTORS,
    TICKET_TYPES,
    PlantedEffect,
    default_scenario,
    generate_responses,
    iter_response_chunks,
    weekly_counts,
    write_csv,
    write_jsonl,
)

DEMO_N = 60_000
SCENARIO = default_scenario()
GO_LIVE = pd.Timestamp(SCENARIO.go_live, tz="UTC")
ONSET = pd.Timestamp(SCENARIO.effect("localized_dip").start, tz="UTC")
IMPROVEMENT = pd.Timestamp(SCENARIO.effect("improvement").start, tz="UTC")


def happiness(ratings: pd.Series) -> float:
    """% promoters (9-10) minus % detractors (0-6)."""
    return 100.0 * (float((ratings >= 9).mean()) - float((ratings <= 6).mean()))


def cites(df: pd.DataFrame, factor: str) -> float:
    """Share of responses naming ``factor``."""
    return float(df["factors"].str.split(";").apply(lambda names: factor in names).mean())


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return generate_responses(DEMO_N, seed=42)


@pytest.fixture(scope="module")
def cell(demo: pd.DataFrame) -> pd.Series:
    return (demo["country"] == "Finland") & (demo["service"] == "SAP")


def test_default_scenario_is_the_documented_ground_truth() -> None:
    assert SCENARIO.start == date(2024, 11, 4) and SCENARIO.weeks == 104
    assert SCENARIO.go_live == date(2025, 9, 1)
    assert SCENARIO.dimensions == DIMENSIONS == COLUMNS[8:]
    assert set(SCENARIO.factors) == set(FACTORS)
    local = SCENARIO.effect("localized_dip")
    assert local.segment == {"country": "Finland", "service": "SAP"}
    assert (local.start, local.end, local.happiness_delta) == (date(2025, 10, 13), None, -40.0)
    assert local.factor == "Lack of business knowledge"
    generic = SCENARIO.effect("generic_dip")
    assert generic.segment == {} and generic.start == SCENARIO.go_live
    assert generic.intensity(SCENARIO.go_live + timedelta(days=13)) == 1.0
    assert 0.0 < generic.intensity(SCENARIO.go_live + timedelta(weeks=4)) < 1.0
    assert generic.intensity(generic.end) == 0.0
    assert SCENARIO.effect("improvement").start == date(2025, 5, 5)
    assert SCENARIO.effect("improvement").happiness_delta > 0
    assert SCENARIO.effect("tiny_segment").segment == {"country": "Iceland"}


@pytest.mark.parametrize("n", [0, 1, 7, 104, 1_234, 9_999])
def test_exactly_n_rows(n: int) -> None:
    assert len(generate_responses(n, seed=1)) == n
    assert int(weekly_counts(n).sum()) == n


def test_canonical_columns_and_types(demo: pd.DataFrame) -> None:
    assert tuple(demo.columns) == COLUMNS
    assert str(demo["submitted_at"].dt.tz) == "UTC"
    assert demo["submitted_at"].is_monotonic_increasing
    assert demo["rating"].between(0, 10).all() and demo["rating"].dtype == np.int64
    answered = demo["lost_time_minutes"].dropna()
    assert (answered >= 0).all()
    assert set(demo["ticket_type"]) == set(TICKET_TYPES)
    prefix = demo["ticket_type"].map({"incident": "INC", "request": "REQ", "other": "TSK"})
    assert (demo["ticket_id"].str[:3] == prefix).all()
    factors = {name for joined in demo["factors"].unique() for name in joined.split(";") if name}
    assert factors == set(FACTORS)


def test_ids_are_unique(demo: pd.DataFrame) -> None:
    assert demo["response_id"].is_unique and demo["ticket_id"].is_unique
    assert demo["response_id"].iloc[0] == "R00000001"
    assert demo["response_id"].is_monotonic_increasing


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = generate_responses(3_000, seed=7)
    pd.testing.assert_frame_equal(first, generate_responses(3_000, seed=7))
    assert not first["rating"].equals(generate_responses(3_000, seed=8)["rating"])


def test_chunks_equal_the_whole_frame() -> None:
    whole = generate_responses(5_000, seed=3)
    chunks = list(iter_response_chunks(5_000, seed=3, scenario=SCENARIO, chunk_rows=777))
    assert [len(c) for c in chunks] == [777] * 6 + [5_000 - 6 * 777]
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)
    assert joined["response_id"].is_unique


def test_argument_errors() -> None:
    with pytest.raises(ValueError):
        generate_responses(-1)
    with pytest.raises(ValueError):
        iter_response_chunks(10, chunk_rows=0)
    with pytest.raises(ValueError, match="go-live"):
        default_scenario(go_live=date(2030, 1, 1))
    bad = PlantedEffect("localized_dip", {"country": "Atlantis"}, SCENARIO.go_live, None, -10.0, None)
    with pytest.raises(ValueError, match="Atlantis"):
        dataclasses.replace(SCENARIO, effects=(bad,))


def test_volume_pattern() -> None:
    counts = weekly_counts(DEMO_N, SCENARIO)
    week_of = {SCENARIO.start + timedelta(weeks=w): int(c) for w, c in enumerate(counts)}
    normal = float(np.median(counts))
    christmas = week_of[date(2024, 12, 23)], week_of[date(2025, 12, 22)]
    assert max(christmas) < 0.5 * normal
    july = [c for monday, c in week_of.items() if monday.month == 7 and monday.day <= 24]
    assert max(july) < 0.8 * normal
    assert counts[-4:].mean() > counts[:4].mean()  # mild growth


def test_weekdays_and_working_hours(demo: pd.DataFrame) -> None:
    weekday = demo["submitted_at"].dt.day_of_week
    assert (weekday >= 5).mean() < 0.05
    hour = demo["submitted_at"].dt.hour
    assert hour.between(5, 16).mean() > 0.8  # 08-17 local is 06-16 UTC


def test_baseline_happiness_and_segment_differences(demo: pd.DataFrame) -> None:
    before = demo[demo["submitted_at"] < IMPROVEMENT]
    assert 45 <= happiness(before["rating"]) <= 55
    by_channel = before.groupby("channel")["rating"].apply(happiness)
    assert by_channel["Walk-in"] > by_channel["Phone"] > by_channel["Email"]


def test_localized_dip_is_in_the_cell(demo: pd.DataFrame, cell: pd.Series) -> None:
    before = demo[cell & (demo["submitted_at"] < GO_LIVE)]
    after = demo[cell & (demo["submitted_at"] >= ONSET)]
    assert happiness(after["rating"]) <= happiness(before["rating"]) - 25
    factor = "Lack of business knowledge"
    assert cites(before, factor) < 0.10
    assert cites(after, factor) > 0.35
    lost_ratio = after["lost_time_minutes"].median() / before["lost_time_minutes"].median()
    assert lost_ratio >= 1.5


def test_localized_dip_stays_local(demo: pd.DataFrame, cell: pd.Series) -> None:
    factor = "Lack of business knowledge"
    elsewhere_before = demo[~cell & (demo["submitted_at"] < GO_LIVE)]
    elsewhere_after = demo[~cell & (demo["submitted_at"] >= ONSET)]
    assert abs(cites(elsewhere_after, factor) - cites(elsewhere_before, factor)) < 0.03
    for dim, value in (("country", "Finland"), ("service", "SAP")):
        rest = demo[(demo[dim] == value) & ~cell]
        drop = happiness(rest.loc[rest["submitted_at"] < GO_LIVE, "rating"]) - happiness(
            rest.loc[rest["submitted_at"] >= ONSET, "rating"]
        )
        assert drop < 10, (dim, value)


def test_cell_has_enough_volume(demo: pd.DataFrame, cell: pd.Series) -> None:
    weeks = (demo["submitted_at"].max() - ONSET).days / 7
    assert (cell & (demo["submitted_at"] >= ONSET)).sum() / weeks >= 25


def test_generic_dip_after_go_live(demo: pd.DataFrame) -> None:
    at = demo["submitted_at"]
    before = demo[(at >= GO_LIVE - pd.Timedelta(weeks=8)) & (at < GO_LIVE)]
    dip = demo[(at >= GO_LIVE) & (at < GO_LIVE + pd.Timedelta(weeks=2))]
    recovered = demo[(at >= ONSET) & ~((demo["country"] == "Finland") & (demo["service"] == "SAP"))]
    assert happiness(dip["rating"]) <= happiness(before["rating"]) - 15
    assert abs(happiness(recovered["rating"]) - happiness(before["rating"])) < 6
    for factor in ("Long waiting time", "Had to explain multiple times"):
        assert cites(dip, factor) > cites(before, factor) + 0.05
    for country in ("Germany", "Finland", "France", "Netherlands"):  # every big segment
        assert happiness(dip.loc[dip["country"] == country, "rating"]) < happiness(
            before.loc[before["country"] == country, "rating"]
        ) - 10, country


def test_improvement_is_a_rise(demo: pd.DataFrame) -> None:
    chat = demo[demo["channel"] == "Chat"]
    before = chat[chat["submitted_at"] < IMPROVEMENT]
    after = chat[(chat["submitted_at"] >= IMPROVEMENT) & (chat["submitted_at"] < GO_LIVE)]
    assert happiness(after["rating"]) >= happiness(before["rating"]) + 8


def test_iceland_is_tiny(demo: pd.DataFrame) -> None:
    weeks = pd.Series(0, index=range(SCENARIO.weeks))
    iceland = demo[demo["country"] == "Iceland"]
    per_week = (iceland["submitted_at"] - pd.Timestamp(SCENARIO.start, tz="UTC")).dt.days // 7
    weeks = weeks.add(per_week.value_counts(), fill_value=0)
    assert 0.5 <= weeks.mean() <= 3
    assert weeks.max() <= 10
    assert set(iceland["location"]) == {"Reykjavík"}


def test_lost_time_distribution(demo: pd.DataFrame) -> None:
    lost = demo["lost_time_minutes"]
    assert 0.25 <= lost.isna().mean() <= 0.35
    assert 20 <= lost.median() <= 40
    assert lost.max() >= 8 * 60
    unhappy = lost[demo["rating"] <= 6].median()
    happy = lost[demo["rating"] >= 9].median()
    assert unhappy > 2 * happy


def test_detractors_cite_negative_factors(demo: pd.DataFrame) -> None:
    detractors, promoters = demo[demo["rating"] <= 6], demo[demo["rating"] >= 9]
    assert cites(detractors, "Long waiting time") > 3 * cites(promoters, "Long waiting time")
    assert cites(promoters, "Fast resolution") > 3 * cites(detractors, "Fast resolution")


def test_assignment_groups_change_at_go_live(demo: pd.DataFrame) -> None:
    # Local working hours start at 06:00, so UTC and local dates agree at midnight.
    before = demo.loc[demo["submitted_at"] < GO_LIVE, "assignment_group"]
    after = demo.loc[demo["submitted_at"] >= GO_LIVE, "assignment_group"]
    assert before.str.startswith("Inhouse-").all()
    assert after.str.startswith("MSP-").all()


def test_locations_belong_to_one_country(demo: pd.DataFrame) -> None:
    assert demo.groupby("location")["country"].nunique().max() == 1


def _expected_text_rows(df: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {
            **{col: str(row[col]) for col in COLUMNS},
            "submitted_at": row["submitted_at"].isoformat(),
            "lost_time_minutes": "" if pd.isna(row["lost_time_minutes"]) else str(row["lost_time_minutes"]),
        }
        for _, row in df.iterrows()
    ]


def test_write_csv_round_trip(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "responses.csv", 3_000, seed=5, chunk_rows=1_000)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    assert rows == _expected_text_rows(generate_responses(3_000, seed=5))
    comments = {row["comment"] for row in rows}
    assert "Ääkköset toimivat" in comments and "Très lent, «merci»" in comments
    assert any("\n" in c for c in comments) and any('"' in c and "," in c for c in comments)
    assert "" in {row["lost_time_minutes"] for row in rows}
    assert rows[0]["submitted_at"].endswith("+00:00") and "T" in rows[0]["submitted_at"]


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "responses.jsonl", 2_500, seed=5)
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2_500
    assert "Ääkköset" in path.read_text(encoding="utf-8")  # not \u-escaped
    expected = generate_responses(2_500, seed=5)
    for record, (_, row) in zip(records, expected.iterrows(), strict=True):
        assert tuple(record) == COLUMNS
        assert record["submitted_at"] == row["submitted_at"].isoformat()
        assert record["rating"] == row["rating"] and isinstance(record["rating"], int)
        lost = row["lost_time_minutes"]
        assert record["lost_time_minutes"] == (None if pd.isna(lost) else lost)
        assert record["factors"] == ([] if not row["factors"] else row["factors"].split(";"))
        for col in ("response_id", "ticket_id", "ticket_type", "comment", *DIMENSIONS):
            assert record[col] == row[col]
    assert any(r["lost_time_minutes"] is None for r in records)
    assert any(r["factors"] == [] for r in records)


def test_custom_calendar_moves_the_story() -> None:
    scenario = default_scenario(go_live=date(2025, 3, 3), weeks=60)
    onset = scenario.effect("localized_dip").start
    assert onset == date(2025, 4, 14)
    df = generate_responses(30_000, seed=2, scenario=scenario)
    assert df["submitted_at"].max() < pd.Timestamp(scenario.end, tz="UTC")
    cell = df[(df["country"] == "Finland") & (df["service"] == "SAP")]
    before = cell[cell["submitted_at"] < pd.Timestamp(scenario.go_live, tz="UTC")]
    after = cell[cell["submitted_at"] >= pd.Timestamp(onset, tz="UTC")]
    assert happiness(after["rating"]) <= happiness(before["rating"]) - 25
