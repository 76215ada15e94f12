"""Tests of the DuckDB store: typed round trips, write semantics, hashing, atomicity, locking."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from analysis.data import schema, store


def make_panel(years=(2022, 2023), n_villages=3, codes=None) -> pd.DataFrame:
    """A small canonical panel, valid under analysis.data.schema."""
    codes = codes or [f"99010100100{i + 1}" for i in range(n_villages)]
    rows = []
    for i, code in enumerate(codes):
        for y in years:
            rows.append(
                {
                    "village_code": code,
                    "year": y,
                    "village_name": f"第{i + 1}村",
                    "township_code": code[:9],
                    "county_code": code[:6],
                    "population": 800 + 10 * i,
                    "income_per_capita": 12000.5 + 0.1 * i + (y - 2022) / 3,
                    "collective_income": 5e4 + i,
                    "projects": i,
                    "funds_attracted": 1.5e5,
                    "roads_km": 0.1 * (i + 1),
                    "team_reorganised": i % 2,
                    "activists": 3,
                    "new_members": 1,
                    "criminal_cases": 0,
                    "disputes": 4 + i,
                    "petitions": 0,
                    "distance_km": 12.3 + i,
                    "terrain": schema.TERRAIN_LEVELS[i % 3],
                    "distinctive_industry": 1,
                    "party_members": 40 + i,
                    "share_members_over60": 0.35,
                }
            )
    return pd.DataFrame(rows)


def make_postings(codes=("990101001001", "990101001002")) -> pd.DataFrame:
    n = len(codes)
    return pd.DataFrame(
        {
            "village_code": list(codes),
            "secretary_id": [f"S{i + 1:03d}" for i in range(n)],
            "start_date": pd.to_datetime(["2022-07-01", "2023-03-15", "2023-12-01"][:n]),
            "end_date": pd.to_datetime([None, "2024-06-30", None][:n]),
            "sending_unit": ["市公安局", "市农业农村局", "市财政局"][:n],
            "unit_type": ["law", "agriculture", "economic"][:n],
            "batch": ["pilot-2022", "city-2023", "city-2023"][:n],
        }
    )


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "study.duckdb"
    store.write_tables(path, panel=make_panel(), postings=make_postings())
    return path


def test_round_trip_has_canonical_dtypes(db):
    panel = store.read_panel(db)
    expected = schema.to_canonical(make_panel(), "panel").sort_values(["village_code", "year"])
    pd.testing.assert_frame_equal(panel, expected.reset_index(drop=True))
    assert dict(panel.dtypes.astype(str)) == schema.canonical_dtypes("panel")
    postings = store.read_postings(db)
    pd.testing.assert_frame_equal(postings, schema.to_canonical(make_postings(), "postings"))
    assert dict(postings.dtypes.astype(str)) == schema.canonical_dtypes("postings")
    assert pd.isna(postings.loc[0, "end_date"])


def test_codes_keep_leading_zeros(tmp_path):
    path = tmp_path / "s.duckdb"
    codes = ["010101001001", "010101001002"]
    store.write_panel(path, make_panel(codes=codes))
    assert store.read_panel(path)["village_code"].unique().tolist() == codes
    with store.open_store(path) as con:
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = current_database()"
            ).fetchall()
        )
    assert types["panel.village_code"] == "VARCHAR"
    assert types["panel.year"] == "BIGINT"
    assert types["panel.income_per_capita"] == "DOUBLE"
    assert types["postings.start_date"] == "DATE"


def test_read_panel_years(db):
    assert store.read_panel(db, years=[2023])["year"].unique().tolist() == [2023]
    assert len(store.read_panel(db, years=[]).index) == 0
    assert len(store.read_panel(db, years=[1999]).index) == 0


def test_replace_the_year_leaves_other_years(db):
    before_2022 = store.read_panel(db, years=[2022])
    new = make_panel(years=(2023,), n_villages=2)
    new["income_per_capita"] = 99999.0
    result = store.write_panel(db, new)
    after = store.read_panel(db)
    pd.testing.assert_frame_equal(store.read_panel(db, years=[2022]), before_2022)
    got_2023 = after[after["year"] == 2023]
    assert got_2023["village_code"].tolist() == ["990101001001", "990101001002"]
    assert (got_2023["income_per_capita"] == 99999.0).all()
    assert result.removed == {2023: 1}
    assert (result.files[0].inserted, result.files[0].replaced, result.files[0].unchanged) == (
        0,
        2,
        0,
    )
    hist = store.read_history(db, "panel")
    assert sorted(hist["change"].tolist()) == ["removed", "replaced", "replaced"]
    assert (hist.loc[hist["change"] == "replaced", "income_per_capita"] != 99999.0).all()


def test_same_write_twice_changes_nothing(db):
    h0, size0 = store.content_hash(db), len(store.read_panel(db).index)
    result = store.write_tables(db, panel=make_panel(), postings=make_postings())
    assert store.content_hash(db) == h0
    assert len(store.read_panel(db).index) == size0
    assert all(f.inserted == 0 and f.replaced == 0 for f in result.files)
    assert result.removed == {}
    assert len(store.read_history(db, "panel").index) == 0
    assert store.read_provenance(db)["ingest_id"].nunique() == 2  # the repeat is logged


def test_postings_upsert(db):
    corrected = make_postings(codes=("990101001002",))
    corrected["secretary_id"] = "S002"
    corrected["batch"] = "city-2024"
    result = store.write_postings(db, corrected)
    got = store.read_postings(db).set_index("secretary_id")
    assert got.loc["S002", "batch"] == "city-2024"
    assert got.loc["S001", "batch"] == "pilot-2022"
    assert len(got.index) == 2
    assert (result.files[0].replaced, result.files[0].inserted) == (1, 0)
    assert store.read_history(db, "postings")["batch"].tolist() == ["city-2023"]


def test_content_hash_ignores_order_and_layout(tmp_path, db):
    other = tmp_path / "other.duckdb"
    shuffled = make_panel().sample(frac=1.0, random_state=3)
    store.write_panel(other, shuffled[shuffled["year"] == 2023])
    store.write_panel(other, shuffled[shuffled["year"] == 2022])
    store.write_postings(other, make_postings().iloc[::-1])
    assert store.content_hash(other) == store.content_hash(db)
    assert file_sha(other) != file_sha(db)
    changed = make_panel(years=(2022,))
    changed.loc[0, "roads_km"] = 0.1000000001
    store.write_panel(other, changed)
    assert store.content_hash(other) != store.content_hash(db)


def test_writers_do_not_mutate_the_callers_frame(tmp_path):
    panel, postings = make_panel(), make_postings()
    panel_copy, postings_copy = panel.copy(deep=True), postings.copy(deep=True)
    store.write_tables(tmp_path / "s.duckdb", panel=panel, postings=postings)
    store.write_panel(tmp_path / "s.duckdb", panel)
    schema.to_canonical(panel, "panel")
    pd.testing.assert_frame_equal(panel, panel_copy)
    pd.testing.assert_frame_equal(postings, postings_copy)


def test_provenance_records_sources(tmp_path):
    path = tmp_path / "s.duckdb"
    panel = make_panel()
    sources = [store.Source("a.csv", "a" * 64, 4), store.Source("b.csv", "b" * 64, 2)]
    store.write_panel(path, panel, sources)
    prov = store.read_provenance(path)
    assert prov["file_name"].tolist() == ["a.csv", "b.csv"]
    assert prov["sha256"].tolist() == ["a" * 64, "b" * 64]
    assert prov["rows"].tolist() == [4, 2]
    assert prov["inserted"].tolist() == [4, 2]
    assert prov["years"].tolist() == ["2022, 2023", "2022, 2023"]
    assert prov["table_name"].unique().tolist() == ["panel"]
    with pytest.raises(ValueError, match="cover 5 rows"):
        store.write_panel(path, panel, [store.Source("a.csv", "a" * 64, 5)])


def test_invalid_frames_are_refused_before_writing(db):
    before = file_sha(db)
    dup = pd.concat([make_panel(), make_panel().head(1)], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate keys"):
        store.write_panel(db, dup)
    with pytest.raises(ValueError, match="missing"):  # a required column (terrain is optional since issue 9)
        store.write_panel(db, make_panel().drop(columns=["village_name"]))
    bad = make_postings()
    bad.loc[0, "start_date"] = pd.NaT
    with pytest.raises(ValueError, match="start_date"):
        store.write_postings(db, bad)
    assert file_sha(db) == before


def test_failure_inside_transaction_leaves_store_and_no_temp(db):
    before, h0 = file_sha(db), store.content_hash(db)

    def boom():
        raise RuntimeError("simulated crash after the panel was written")

    new = make_panel(years=(2023,))
    new["population"] = 5
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.write_tables(db, panel=new, postings=make_postings(), after_partial_write=boom)
    assert file_sha(db) == before
    assert store.content_hash(db) == h0
    assert list(db.parent.glob(db.name + ".ingest-*")) == []


def test_leftover_temp_files_are_removed(db):
    leftover = db.with_name(db.name + ".ingest-12345-deadbeef.tmp")
    leftover.write_bytes(b"half-written copy of a killed ingest")
    db.with_name(leftover.name + ".wal").write_bytes(b"x")
    store.write_panel(db, make_panel(years=(2024,)))
    assert list(db.parent.glob(db.name + ".ingest-*")) == []
    assert store.summary(db)["panel_years"] == [2022, 2023, 2024]


def test_lock_excludes_a_concurrent_writer(db):
    before = file_sha(db)
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.ingest_lock(db):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        with pytest.raises(store.StoreError, match="another ingest"):
            store.write_tables(db, panel=make_panel(years=(2024,)), lock_timeout=0.3)
        assert file_sha(db) == before
    finally:
        release.set()
        t.join()
    store.write_tables(db, panel=make_panel(years=(2024,)), lock_timeout=5)
    assert 2024 in store.summary(db)["panel_years"]


def test_lock_is_reentrant_in_one_thread(db):
    with store.ingest_lock(db), store.ingest_lock(db):
        store.write_panel(db, make_panel(years=(2025,)))
    assert 2025 in store.summary(db)["panel_years"]


def test_dry_run_writes_nothing(tmp_path, db):
    before = file_sha(db)
    new = make_panel(years=(2023, 2024))
    result = store.write_tables(db, panel=new, dry_run=True)
    assert not result.written
    assert (result.files[0].inserted, result.files[0].unchanged) == (3, 3)
    assert file_sha(db) == before
    fresh = tmp_path / "none.duckdb"
    result = store.write_tables(fresh, panel=new, dry_run=True)
    assert result.files[0].inserted == 6
    assert not fresh.exists()


def test_open_store_read_only(db, tmp_path):
    with pytest.raises(FileNotFoundError, match="study ingest"):
        store.open_store(tmp_path / "missing.duckdb")
    con = store.open_store(db)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM panel")
        # a connection opened before a write keeps its snapshot; a new one sees the write
        store.write_panel(db, make_panel(years=(2030,)))
        assert 2030 not in [r[0] for r in con.execute("SELECT DISTINCT year FROM panel").fetchall()]
        assert 2030 in store.read_panel(db)["year"].tolist()
    finally:
        con.close()
    not_a_db = tmp_path / "x.duckdb"
    not_a_db.write_text("hello")
    with pytest.raises(store.StoreError):
        store.open_store(not_a_db)


def test_store_from_another_schema_is_refused(db):
    con = store.open_store(db, read_only=False)
    con.execute("UPDATE store_meta SET value = 'something-else' WHERE key = 'schema'")
    con.close()
    with pytest.raises(store.StoreError, match="different table layout"):
        store.write_panel(db, make_panel(years=(2024,)))


def test_empty_store_reads(tmp_path):
    path = tmp_path / "s.duckdb"
    store.write_postings(path, make_postings().head(0))
    panel = store.read_panel(path)
    assert list(panel.columns) == schema.column_names("panel")
    assert len(panel.index) == 0
    assert dict(panel.dtypes.astype(str)) == schema.canonical_dtypes("panel")
    assert store.panel_villages(path) == set()
    assert store.summary(path)["panel_rows"] == 0


def test_panel_villages_excludes_years(db):
    store.write_panel(db, make_panel(years=(2024,), codes=["990101001009"]))
    assert "990101001009" in store.panel_villages(db)
    assert "990101001009" not in store.panel_villages(db, exclude_years=[2024])
    assert store.panel_villages(db, exclude_years=[2022, 2023]) == {"990101001009"}
    assert np.isin(["990101001001"], list(store.panel_villages(db))).all()


def test_a_wal_left_beside_the_store_is_folded_in(db):
    """If someone wrote the live file directly and crashed, DuckDB's log is not lost."""
    code = (
        "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); "
        "c.execute('PRAGMA disable_checkpoint_on_shutdown'); "
        "c.execute(\"UPDATE panel SET village_name = 'from-wal' WHERE year = 2022\"); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True, timeout=60)
    wal = db.with_name(db.name + ".wal")
    assert wal.exists()
    store.write_panel(db, make_panel(years=(2024,)))
    assert not wal.exists()
    panel = store.read_panel(db)
    assert (panel.loc[panel["year"] == 2022, "village_name"] == "from-wal").all()
    assert (panel.loc[panel["year"] == 2024, "village_name"] != "from-wal").all()


def test_a_store_written_before_optional_columns_is_upgraded_on_its_next_write(db):
    """Issue 9: stores whose panel declared every column NOT NULL take missing covariates after one upgrade."""
    from analysis.data.store import layout

    con = store.open_store(db, read_only=False)
    for name in layout.LEGACY_NOT_NULL["panel"]:
        con.execute(f"ALTER TABLE panel ALTER COLUMN {name} SET NOT NULL")
    con.execute("UPDATE store_meta SET value = ? WHERE key = 'schema'",
                [layout.schema_fingerprint(layout.LEGACY_NOT_NULL)])
    con.execute("CHECKPOINT")
    con.close()
    h0 = store.content_hash(db)
    new = make_panel(years=(2024,))
    new["party_members"] = None
    store.write_panel(db, new)
    got = store.read_panel(db, years=[2024])
    assert got["party_members"].isna().all() and store.read_panel(db, years=[2022, 2023]).notna().all().all()
    with store.open_store(db) as con:
        assert con.execute("SELECT value FROM store_meta WHERE key = 'schema'").fetchone()[0] == (
            layout.schema_fingerprint())
    assert store.content_hash(db) != h0


def test_year_resemblance_counts_every_pair_of_years_as_counted_by_hand(tmp_path):
    # Two incoming years against each other and against the stored years they do not replace (the join runs
    # one incoming year at a time): missing values, pairs of zeros, a year copied within the tolerance, whole
    # numbers at the tolerance's edge, a village in one year only, a stored year replaced (2022) and so left
    # out. The reference counts pair by pair in pandas.
    from analysis.data.store import compare

    rng = np.random.default_rng(7)
    codes = [f"9901010010{i:02d}" for i in range(40)]
    path = tmp_path / "s.duckdb"
    stored = make_panel(codes=codes, years=(2019, 2020, 2021, 2022))
    store.write_panel(path, stored)
    incoming = make_panel(codes=[*codes[5:], "990101009999"], years=(2022, 2023))
    incoming["income_per_capita"] = rng.gamma(2.0, 5000.0, len(incoming)).round(2)
    incoming.loc[incoming.index[::7], "income_per_capita"] = np.nan
    same = (incoming["year"] == 2023).to_numpy()
    base = stored[stored["year"] == 2021].set_index("village_code")
    incoming.loc[same, "income_per_capita"] = (
        incoming.loc[same, "village_code"].map(base["income_per_capita"]) * (1 + 5e-5)).to_numpy()
    incoming.loc[incoming.index[:4], ["disputes", "petitions"]] = [9950, 0]
    incoming.loc[incoming.index[4:8], "disputes"] = [9950, 9949, 9949, 9948]
    canonical = schema.to_canonical(incoming, "panel")
    got = compare.year_resemblance(path, canonical)

    measures = [c for c in schema.YEARLY_MEASURES if c in canonical.columns]
    others = {**{(y, False): canonical[canonical["year"] == y] for y in (2022, 2023)},
              **{(y, True): stored[stored["year"] == y] for y in (2019, 2020, 2021)}}  # 2022 is replaced
    rows = []
    for y in (2022, 2023):
        n = canonical[canonical["year"] == y].set_index("village_code")
        for (oy, is_stored), o in sorted(others.items()):
            if oy == y:
                continue
            o = o.set_index("village_code")
            common = n.index.intersection(o.index)
            compared = equal = 0
            for c in measures:
                a = n.loc[common, c].astype(float).to_numpy()
                b = o.loc[common, c].astype(float).to_numpy()
                both_there = ~np.isnan(a) & ~np.isnan(b) & ~((a == 0) & (b == 0))
                compared += int(both_there.sum())
                close = np.abs(a - b) <= compare.EQUAL_ABS + compare.EQUAL_REL * np.maximum(np.abs(a), np.abs(b))
                equal += int((both_there & close).sum())
            rows.append({"year": y, "other_year": oy, "stored": is_stored, "villages": len(n),
                         "other_villages": len(o), "common": len(common), "compared": compared, "equal": equal})
    want = pd.DataFrame(rows).astype({c: "int64" for c in ("year", "other_year", "villages", "other_villages",
                                                            "common", "compared", "equal")})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    assert len(got) == 8 and set(got["stored"]) == {True, False}  # 2022 x (2019-21, 2023), 2023 x (2019-22)
    assert (got["equal"] > 0).all() and (got["compared"] > got["equal"]).any()
