"""history() and restore(): every ingest logged, any earlier state brought back atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analysis.data import schema, store
from analysis.data.ingest import ingest_files
from analysis.data.store import StoreError, history, history_text, restore, timeline

CODES = ["990101001001", "990101001002", "990101002001"]


def panel(years, codes=CODES, bump: float = 0.0) -> pd.DataFrame:
    rows = []
    for i, code in enumerate(codes):
        for y in years:
            rows.append(
                {
                    "village_code": code, "year": y, "village_name": f"第{i + 1}村", "township_code": code[:9],
                    "county_code": code[:6], "population": 800 + i, "income_per_capita": 12000.5 + i + bump,
                    "collective_income": 5e4, "projects": i, "funds_attracted": 1.5e5, "roads_km": 0.5,
                    "team_reorganised": 0, "activists": 3, "new_members": 1, "criminal_cases": 0, "disputes": 4,
                    "petitions": 0, "distance_km": 12.5, "terrain": schema.TERRAIN_LEVELS[i % 3],
                    "distinctive_industry": 1, "party_members": 40, "share_members_over60": 0.35,
                }
            )
    return pd.DataFrame(rows)


def postings(ids=("S1", "S2")) -> pd.DataFrame:
    n = len(ids)
    return pd.DataFrame(
        {
            "village_code": CODES[:n],
            "secretary_id": list(ids),
            "start_date": ["2023-03-01", "2024-03-01", "2025-03-01"][:n],
            "end_date": [""] * n,
            "sending_unit": ["市公安局"] * n,
            "unit_type": ["law"] * n,
            "batch": ["city-2023"] * n,
        }
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def chain(tmp_path):
    """Three ingests: A (panel 2023-2024 + postings), B (2024 revised, 2025 new, a village dropped), C (postings)."""
    db = tmp_path / "study.duckdb"
    hashes = [store.content_hash(db) if db.exists() else None]
    a = [tmp_path / "panel_a.csv", tmp_path / "post_a.csv"]
    panel([2023, 2024]).to_csv(a[0], index=False)
    postings().to_csv(a[1], index=False)
    ingest_files(a, db)
    hashes.append(store.content_hash(db))
    b = tmp_path / "panel_b.csv"
    pd.concat([panel([2024], CODES[:2], bump=7), panel([2025])]).to_csv(b, index=False)
    ingest_files([b], db, replace=True)  # 2024 is stored: changing it needs replace=True (issue 9)
    hashes.append(store.content_hash(db))
    c = tmp_path / "post_c.csv"
    p = postings(("S1", "S2", "S3"))
    p.loc[0, "end_date"] = "2025-06-30"
    p.to_csv(c, index=False)
    ingest_files([c], db)
    hashes.append(store.content_hash(db))
    return db, hashes, history(db)["ingest_id"].tolist()


def test_history_lists_every_ingest(chain):
    db, _, ids = chain
    h = history(db)
    assert list(h.columns) == list(store.HISTORY_COLUMNS)
    assert h["kind"].tolist() == ["ingest"] * 3 and h["seq"].tolist() == [1, 2, 3]
    assert [json.loads(f) for f in h["files"]] == [["panel_a.csv", "post_a.csv"], ["panel_b.csv"], ["post_c.csv"]]
    b = h.iloc[1]
    assert b["panel_years"] == "2024, 2025"
    assert (b["panel_inserted"], b["panel_replaced"], b["panel_removed"]) == (3, 2, 1)
    c = h.iloc[2]
    assert (c["postings_inserted"], c["postings_replaced"], c["postings_unchanged"]) == (1, 1, 1)
    assert h["restorable"].all()
    assert "panel rows +3 ~2 -1" in b["summary"]
    assert h.iloc[0]["panel_rows_after"] == 6 and h.iloc[1]["panel_rows_after"] == 8
    text = history_text(db)
    assert text.splitlines()[1].startswith(f"  2  {ids[1]}") and "ingest of panel_b.csv" in text


@pytest.mark.parametrize(("k", "when", "state"), [(1, "before", 1), (1, "after", 2), (0, "before", 0), (2, "after", 3)])
def test_restore_brings_back_the_state(chain, k, when, state):
    db, hashes, ids = chain
    result = restore(db, ids[k], when=when)
    if state == 3:
        assert not result.written and "nothing to do" in str(result)
        assert store.content_hash(db) == hashes[3]
        return
    if state == 0:
        assert store.summary(db)["panel_rows"] == 0 and store.summary(db)["postings_rows"] == 0
    else:
        assert store.content_hash(db) == hashes[state]
    assert result.written and result.undone == ids[k if when == "before" else k + 1:][::-1]
    h = history(db)
    assert h["kind"].iloc[-1] == "restore" and h["target"].iloc[-1] == f"{when} {ids[k]}"
    # The restore is itself an ingest that can be taken back.
    restore(db, h["ingest_id"].iloc[-1], when="before")
    assert store.content_hash(db) == hashes[3]
    assert len(history(db)) == 5


def test_restore_keeps_the_replaced_rows_recoverable(chain):
    db, _hashes, ids = chain
    restore(db, ids[1], when="before")
    hist = store.read_history(db, "panel")
    assert set(hist["change"]) == {"replaced", "removed"}
    assert (hist["ingest_id"] == history(db)["ingest_id"].iloc[-1]).any()
    assert store.read_panel(db, [2024])["income_per_capita"].tolist() == [12000.5, 12001.5, 12002.5]


def test_unique_prefix_dry_run_and_unknown_ids(chain):
    db, _hashes, ids = chain
    before = sha(db)
    result = restore(db, ids[1][:-2], when="before", dry_run=True)
    assert not result.written and sha(db) == before
    assert result.by_table["panel"] == (1, 2, 3)  # +2024 row of the dropped village, 2 revised rows back, -2025
    assert str(result).startswith("Dry run: nothing was written.")
    with pytest.raises(StoreError, match="is not an ingest of this store"):
        restore(db, "nope")
    with pytest.raises(StoreError, match="when must be"):
        restore(db, ids[0], when="during")
    assert sha(db) == before
    assert list(db.parent.glob(db.name + ".ingest-*")) == []


def test_failed_restore_leaves_the_store_byte_for_byte(chain, monkeypatch):
    db, hashes, ids = chain
    before = sha(db)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(timeline, "_replace_content", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        restore(db, ids[1])
    assert sha(db) == before and store.content_hash(db) == hashes[3]
    assert list(db.parent.glob(db.name + ".ingest-*")) == []


def test_tampered_history_is_detected_and_nothing_changes(chain):
    db, _hashes, ids = chain
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM panel_history WHERE change = 'replaced' AND village_code = ?", [CODES[0]])
    con.execute("CHECKPOINT")
    con.close()
    before = sha(db)
    with pytest.raises(StoreError, match="does not match the fingerprint"):
        restore(db, ids[1])
    assert sha(db) == before


def test_legacy_ingests_cannot_be_undone(chain):
    db, hashes, ids = chain
    con = duckdb.connect(str(db))
    con.execute("DELETE FROM ingest_log WHERE ingest_id IN (?, ?)", ids[:2])
    con.execute("CHECKPOINT")
    con.close()
    h = history(db)
    assert h["kind"].tolist() == ["ingest (legacy)", "ingest (legacy)", "ingest"]
    assert h["restorable"].tolist() == [False, False, True]
    with pytest.raises(StoreError, match="written before the store recorded inserted rows"):
        restore(db, ids[1])
    restore(db, ids[1], when="after")  # only C is taken back
    assert store.content_hash(db) == hashes[2]


def test_reingesting_a_year_replaces_it_and_keeps_the_old_version(chain, tmp_path):
    db, hashes, _ids = chain
    again = tmp_path / "again.csv"
    panel([2025], bump=1).to_csv(again, index=False)
    report = ingest_files([again], db, replace=True)
    assert (report.files[0].replaced, report.files[0].inserted) == (3, 0)
    old = store.read_history(db, "panel")
    last = old[old["ingest_id"] == report.ingest_id]
    assert sorted(last["income_per_capita"].tolist()) == [12000.5, 12001.5, 12002.5]
    restore(db, report.ingest_id)
    assert store.content_hash(db) == hashes[3]


def test_empty_and_missing_stores(tmp_path):
    with pytest.raises(StoreError, match="no store"):
        restore(tmp_path / "nothing.duckdb", "x")
    db = tmp_path / "s.duckdb"
    duckdb.connect(str(db)).close()
    assert list(history(db).columns) == list(store.HISTORY_COLUMNS) and history(db).empty


def test_crosswalk_entries_that_contradict_the_store_are_refused(tmp_path):
    db = tmp_path / "study.duckdb"
    base = tmp_path / "p.csv"
    panel([2024]).to_csv(base, index=False)
    ingest_files([base], db)
    nxt = tmp_path / "p25.csv"
    panel([2025], CODES[:2]).to_csv(nxt, index=False)
    cw = tmp_path / "cw.csv"
    cw.write_text(f"old_code,new_code,year_effective,type\n{CODES[2]},{CODES[1]},2025,merge\n", encoding="utf-8")
    ingest_files([nxt], db, crosswalk=cw)
    cw.write_text(f"old_code,new_code,year_effective,type\n{CODES[2]},{CODES[1]},2025,split\n", encoding="utf-8")
    with pytest.raises(Exception, match="contradicts the stored crosswalk entry") as info:
        ingest_files([nxt], db, crosswalk=cw)
    assert info.value.problems[0].problem_zh
