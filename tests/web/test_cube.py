"""The cubes the analysis keeps add up to what a direct grouping of the responses gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.analysis.aggregate import Segment, grouping_cube, load_responses
from monitor.analysis.cube import CubeStore, CubeUnavailable, SegmentCube, write_cubes

TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def table(analysed):
    with analysed.connect() as connection:
        return load_responses(connection, period="week", as_of=TODAY)


def test_a_filtered_split_equals_the_grouping_of_the_responses(seeded, table):
    engine = seeded.extensions["mspmon"].engine
    with Session(engine) as session:
        cubes = CubeStore().current(session)
    assert cubes is not None and cubes.as_of == TODAY
    keys, stats = cubes.series({"country": ("Finland",)}, ("service",))
    segments, direct = grouping_cube(table, ("country", "service"))
    for key, row in zip(keys, stats, strict=True):
        expected = direct[segments.index(Segment.of({"country": "Finland", "service": key[0]}))]
        np.testing.assert_allclose(row, expected)
    _, everyone = cubes.series({})
    np.testing.assert_allclose(everyone[0], grouping_cube(table, ())[1][0])
    _, two_countries = cubes.series({"country": ("Finland", "Sweden")})
    singles, by_country = grouping_cube(table, ("country",))
    pick = [singles.index(Segment.of({"country": c})) for c in ("Finland", "Sweden")]
    np.testing.assert_allclose(two_countries[0], by_country[pick].sum(axis=0))


def test_three_dimensions_are_deeper_than_the_analysis_keeps(seeded):
    with Session(seeded.extensions["mspmon"].engine) as session:
        cubes = CubeStore().current(session)
    with pytest.raises(CubeUnavailable, match="one or two dimensions"):
        cubes.series({"country": ("Finland",), "service": ("SAP",)}, ("channel",))
    with pytest.raises(CubeUnavailable, match="unknown dimension"):
        cubes.series({"planet": ("Mars",)})


def test_a_new_analysis_replaces_the_cubes_and_the_cache(seeded, table):
    engine = seeded.extensions["mspmon"].engine
    store = CubeStore()
    with Session(engine) as session:
        first = store.current(session)
        first.cube(["country"])
        assert store.current(session) is first
    table.cubes.clear()
    grouping_cube(table, ())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with Session(engine) as session, session.begin():
        write_cubes(session, table, TODAY, now=later)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SegmentCube)) == 1
        second = store.current(session)
    assert second is not first and second.dimensions == []
