"""Reading responses back for analysis, on both backends: exact values, missing values."""

from __future__ import annotations

import datetime as dt

import numpy as np

from monitor.analysis.aggregate import MISSING, load_responses
from monitor.ingest.importer import ingest_files
from monitor.ingest.readers import CANONICAL_COLUMNS
from monitor.periods import EPOCH, period_of_day

HEADER = ",".join(CANONICAL_COLUMNS) + ",country,service,channel,site"


def test_load_returns_exact_values_and_missing_dimensions(engine, settings, tmp_path):
    factors = ";".join(f"F{i}" for i in range(60))  # bits far above float precision
    rows = [
        f"A,2025-03-04T09:00:00Z,I,incident,10,12.5,{factors},,FI,SAP,Phone,Espoo",
        "B,2025-03-05T09:00:00Z,I,incident,3,,F59,,DE,,Chat,",
        "C,2025-03-12T09:00:00Z,I,request,7,0,,,FI,Mail,,Berlin",
    ]
    path = tmp_path / "r.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    assert ingest_files(engine, [path], settings, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).committed
    with engine.connect() as connection:
        table = load_responses(connection, period="week", as_of=dt.date(2025, 3, 31))
    assert len(table) == 3
    names = list(table.stat_names)
    assert sorted(table.stats[:, names.index("promoters")].tolist()) == [0, 0, 1]
    assert np.nansum(table.stats[:, names.index("lt_sum")]) == 12.5
    assert table.stats[:, names.index("lt_n")].sum() == 2  # B did not answer
    assert table.stats[:, names.index("f:F59")].sum() == 2  # bit 59 survives exactly
    assert table.stats[:, names.index("f:F0")].sum() == 1
    week = period_of_day((dt.date(2025, 3, 4) - EPOCH).days, "week")
    assert sorted(table.periods.tolist()) == [week, week, week + 1]
    service = [table.labels["service"][c] if c != MISSING else None for c in table.codes["service"]]
    assert sorted(service, key=str) == sorted(["SAP", None, "Mail"], key=str)
    assert (table.codes["site"] == MISSING).sum() == 1
