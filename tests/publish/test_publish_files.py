"""Publishing to the Parquet snapshots and the serving DuckDB file: whole versions,
pseudonymous keys, byte-identical re-runs, contracts that hold a bad run back."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError, PublishBlockedError
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.publish import publish_date
from pipeline.publish.catalog import load_catalog
from pipeline.publish.faults import CRASH_ENV
from pipeline.publish.leftovers import find_leftovers
from pipeline.publish.tables import PUBLISHED_TABLES
from tests.alerts.support import WebhookReceiver
from tests.publish.support import (
    SECRET,
    assert_whole,
    day,
    expected_rows,
    served_by_duckdb,
    settings_from,
)
from tests.support import REPO


@pytest.fixture
def settings(history: Path, tmp_path: Path) -> Settings:
    return settings_from(history, tmp_path)


def _serving(settings: Settings) -> Path:
    return settings.paths.published / settings.publish.serving_file


def _published_files(settings: Settings) -> dict[str, bytes]:
    root = settings.paths.published / "snapshots"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_each_publish_serves_one_whole_version_with_history(settings: Settings) -> None:
    days = [day(37), day(38), day(39)]
    for published in days:
        report = publish_date(settings, published)
        assert report.current_as_of_date == published
        assert_whole(served_by_duckdb(_serving(settings)), expected_rows(settings), days)

    con = duckdb.connect(str(_serving(settings)), read_only=True)
    history = con.sql(
        "select as_of_date, count(*) from customer_segments_history group by 1 order by 1"
    ).fetchall()
    assert [d for d, _ in history] == days
    assert dict(history) == expected_rows(settings)
    # Stage episodes: every open one (one per customer) and those closed on published dates.
    open_episodes, closed = con.sql(
        "select count(*) filter (where valid_to is null), count(*) filter (where valid_to is not null)"
        " from customer_stage_episodes"
    ).fetchall()[0]
    assert open_episodes == con.sql("select count(*) from customer_lifecycle").fetchall()[0][0]
    assert closed == con.sql("select count(*) from customer_stage_history").fetchall()[0][0]
    # The tables BI reads match their contracts' row counts in the manifest.
    catalog = load_catalog(settings.paths.published)
    for table in ("customer_segments", "customer_lifecycle", "cluster_profiles"):
        rows = con.sql(f"select count(*) from {table}").fetchall()[0][0]
        assert rows == catalog.current(table).rows  # type: ignore[union-attr]
    con.close()


def test_customer_keys_are_hmacs_of_the_ids_and_no_id_is_published(settings: Settings) -> None:
    publish_date(settings, day(39))
    lake = Lake(settings.paths.lake)
    ids = [
        row[0]
        for row in duckdb.sql(
            "select customer_id from read_parquet($f)",
            params={"f": str(lake.partition_file("customer_segments", day(39), AS_OF_KEY))},
        ).fetchall()
    ]
    expected = {hmac.new(SECRET.encode(), i.encode(), hashlib.sha256).hexdigest()[:32] for i in ids}
    con = duckdb.connect(str(_serving(settings)), read_only=True)
    keys = {row[0] for row in con.sql("select customer_key from customer_segments").fetchall()}
    assert keys == expected
    columns = {
        row[0] for row in con.sql("select column_name from information_schema.columns").fetchall()
    }
    assert not columns & {"customer_id", "email", "phone", "alert_id"}
    values = " ".join(
        str(v) for row in con.sql("select * from customer_lifecycle").fetchall() for v in row
    )
    assert not any(customer_id in values for customer_id in ids[:50])


def test_without_pseudonymization_the_key_is_the_id(history: Path, tmp_path: Path) -> None:
    settings = settings_from(history, tmp_path, pseudonymize=False, key_secret="")
    publish_date(settings, day(39))
    con = duckdb.connect(str(_serving(settings)), read_only=True)
    keys = con.sql("select customer_key from customer_segments limit 3").fetchall()
    assert all(key.startswith("C") for (key,) in keys)


def test_pseudonymization_needs_a_secret(history: Path, tmp_path: Path) -> None:
    settings = settings_from(history, tmp_path, key_secret="")
    with pytest.raises(ConfigError, match="key_secret"):
        publish_date(settings, day(39))
    assert not (settings.paths.published / "manifest.json").exists()


def test_a_rerun_gives_the_same_files(settings: Settings) -> None:
    publish_date(settings, day(38))
    publish_date(settings, day(39))
    before = _published_files(settings)
    catalog = load_catalog(settings.paths.published)
    report = publish_date(settings, day(39))
    assert _published_files(settings) == before
    again = load_catalog(settings.paths.published)
    assert again.tables == catalog.tables
    # The same content is the same publish: same number, same id, same manifest.
    assert report.publish_number == catalog.publish_number
    assert load_catalog(settings.paths.published).publish_id == catalog.publish_id
    assert_whole(served_by_duckdb(_serving(settings)), expected_rows(settings), [day(38), day(39)])


def test_publishing_an_earlier_date_keeps_the_latest_current(settings: Settings) -> None:
    for published in (day(38), day(39), day(37)):
        report = publish_date(settings, published)
    assert report.current_as_of_date == day(39)
    served = served_by_duckdb(_serving(settings))
    assert_whole(served, expected_rows(settings), [day(37), day(38), day(39)])


def _rewrite(settings: Settings, table: str, n: int, query: str) -> None:
    """Replace a lake partition by ``query`` over it (the view ``t``)."""
    path = Lake(settings.paths.lake).partition_file(table, day(n), AS_OF_KEY)
    rewritten = path.with_name("rewritten.parquet")
    con = duckdb.connect()
    con.read_parquet(str(path), hive_partitioning=False).create_view("t")
    con.sql(query).write_parquet(str(rewritten))
    con.close()
    rewritten.replace(path)


BAD_RUNS: dict[str, tuple[str, str, str, str]] = {
    # name: (lake table, rewrite, failing check, its column)
    "duplicate customers": (
        "customer_segments",
        "select * from t union all (select * from t limit 20)",
        "unique_grain",
        "*",
    ),
    "a score out of range": (
        "customer_segments",
        "select * replace (9::tinyint as r_score) from t",
        "range",
        "r_score",
    ),
    "an unknown stage": (
        "customer_lifecycle",
        "select * replace (case when stage = 'growth' then 'zombie' else stage end as stage) from t",
        "accepted_values",
        "stage",
    ),
    "a missing stage": (
        "customer_lifecycle",
        "select * replace (null::varchar as stage) from t",
        "not_null",
        "stage",
    ),
    "half the customers gone": (
        "customer_segments",
        "select * from t using sample 50 percent (reservoir, 7)",
        "row_count_change",
        "*",
    ),
    "a type changed": (
        "customer_segments",
        "select * replace (r_score::integer as r_score) from t",
        "columns_and_types",
        "*",
    ),
}


@pytest.mark.parametrize("bad_run", sorted(BAD_RUNS))
def test_a_failing_contract_keeps_the_previous_version_and_says_why(
    history: Path, tmp_path: Path, bad_run: str
) -> None:
    receiver = WebhookReceiver(None).start()
    try:
        settings = settings_from(history, tmp_path, row_change_slack_rows=0)
        settings = settings.model_copy(
            update={"alerts": settings.alerts.model_copy(update={"webhook_url": receiver.url})}
        )
        publish_date(settings, day(38))
        files_before = _published_files(settings)
        serving_before = _serving(settings).read_bytes()
        table, rewrite, check, column = BAD_RUNS[bad_run]
        _rewrite(settings, table, 39, rewrite)

        with pytest.raises(PublishBlockedError, match=check) as raised:
            publish_date(settings, day(39))
        assert "previous version keeps serving" in str(raised.value)

        assert _published_files(settings) == files_before
        assert _serving(settings).read_bytes() == serving_before
        assert load_catalog(settings.paths.published).as_of_date == day(38)
        assert_whole(served_by_duckdb(_serving(settings)), expected_rows(settings), [day(38)])
        con = duckdb.connect(str(_serving(settings)), read_only=True)
        failed = con.sql(
            "select table_name, check_name, coalesce(column_name, '*'), failing_rows, detail, "
            "publish_status from publish_audit where as_of_date = $d and not passed",
            params={"d": day(39)},
        ).fetchall()
        assert (table, check, column, "blocked") in [
            (t, c, col, s) for t, c, col, _, _, s in failed
        ]
        assert all(
            failing_rows > 0 or check == "columns_and_types" for *_, failing_rows, _, _ in failed
        )
        assert con.sql(
            "select bool_and(passed) from publish_audit where as_of_date = $d",
            params={"d": day(38)},
        ).fetchall() == [(True,)]
        (alert,) = receiver.accepted.values()
        assert alert["type"] == "operational"
        assert str(day(39)) in alert["subject"] and check in " ".join(alert["details"])
    finally:
        receiver.stop()


def test_a_reader_holding_the_serving_file_keeps_its_view_and_never_blocks_a_publish(
    settings: Settings,
) -> None:
    publish_date(settings, day(38))
    before = served_by_duckdb(_serving(settings))
    reader = _start_reader(_serving(settings))
    try:
        assert reader.readline() == f"{before.as_of_date} {before.segments_rows}"
        publish_date(settings, day(39))  # while the reader holds the file open read-only
        publish_date(settings, day(39))
        reader.say("again")
        # The reader's open connection still sees its version, whole, history included.
        assert reader.readline() == f"{before.as_of_date} {before.segments_rows}"
        assert reader.readline() == "history ok"
    finally:
        reader.close()
    assert_whole(served_by_duckdb(_serving(settings)), expected_rows(settings), [day(38), day(39)])


class _Reader:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            _, errors = self.process.communicate(timeout=30)
            raise AssertionError(f"reader died: {errors}")
        return line

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def _start_reader(serving_file: Path) -> _Reader:
    script = textwrap.dedent(
        """
        import sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        def state():
            d, n = con.execute(
                "select (select as_of_date from publish_info), (select count(*) from customer_segments)"
            ).fetchall()[0]
            return f"{d} {n}"
        print(state(), flush=True)
        sys.stdin.readline()
        print(state(), flush=True)
        con.execute("select count(*) from customer_segments_history").fetchall()
        con.execute("select count(*) from stage_counts").fetchall()
        print("history ok", flush=True)
        sys.stdin.readline()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(serving_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return _Reader(process)


def test_files_of_old_versions_are_removed_after_keep_versions_publishes(
    history: Path, tmp_path: Path
) -> None:
    settings = settings_from(history, tmp_path, keep_versions=2)
    publish_date(settings, day(39))
    first = load_catalog(settings.paths.published).current("customer_segments")
    assert first is not None
    _rewrite(settings, "customer_segments", 39, "select * from t order by customer_id offset 1")
    publish_date(settings, day(39))  # the day restated: its first file is retired (#2)
    old_file = settings.paths.published / first.file
    assert load_catalog(settings.paths.published).current("customer_segments") != first
    assert old_file.is_file()  # a reader of serving file #1 may still read it
    publish_date(settings, day(38))  # #3
    assert old_file.is_file()
    publish_date(settings, day(37))  # #4: two publishes after it was retired
    assert not old_file.exists()
    manifest = json.loads((settings.paths.published / "manifest.json").read_text())
    assert first.file not in json.dumps(manifest)


def test_a_backfill_moves_the_targets_once_and_ends_as_a_day_by_day_publish(
    history: Path, tmp_path: Path
) -> None:
    """Publishes with targets=False (a backfill's dates before its last) commit the
    snapshots and the manifest only; the last brings the serving file to the same
    version, with the same content, as publishing every date with its targets."""
    daily = settings_from(history, tmp_path / "daily")
    backfill = settings_from(history, tmp_path / "backfill")
    days = [day(36), day(37), day(38), day(39)]
    for published in days:
        publish_date(daily, published)
    for published in days[:-1]:
        report = publish_date(backfill, published, targets=False)
        assert not report.targets_moved
        assert not _serving(backfill).exists()  # nothing served yet: nothing moved
        assert load_catalog(backfill.paths.published).as_of_date == published
    publish_date(backfill, days[-1])

    for name in ("manifest.json",):
        assert (backfill.paths.published / name).read_bytes() == (
            daily.paths.published / name
        ).read_bytes()
    assert _published_files(backfill) == _published_files(daily)
    assert _serving_contents(_serving(backfill)) == _serving_contents(_serving(daily))


def test_a_publish_that_leaves_the_targets_behind_deletes_no_file_they_may_name(
    history: Path, tmp_path: Path
) -> None:
    settings = settings_from(history, tmp_path / "backfill", keep_versions=2)
    daily = settings_from(history, tmp_path / "daily", keep_versions=2)
    for chain in (settings, daily):
        publish_date(chain, day(39))  # #1, served
        _rewrite(chain, "customer_segments", 39, "select * from t order by customer_id offset 1")
    first = load_catalog(settings.paths.published).current("customer_segments")
    assert first is not None
    named = settings.paths.published / first.file
    publish_date(settings, day(39), targets=False)  # #2 retires the served file
    publish_date(settings, day(38), targets=False)  # #3
    publish_date(settings, day(37), targets=False)  # #4: a day-by-day run deletes it here
    assert named.is_file()  # kept: the serving file still names it
    assert served_by_duckdb(_serving(settings)).segments_rows == first.rows
    publish_date(settings, day(36))  # #5 moves the targets, then expires it
    assert not named.exists()
    for published in (day(39), day(38), day(37), day(36)):
        publish_date(daily, published)
    assert (settings.paths.published / "manifest.json").read_bytes() == (
        daily.paths.published / "manifest.json"
    ).read_bytes()
    assert _published_files(settings) == _published_files(daily)


def _serving_contents(serving: Path) -> dict[str, list[str]]:
    """Every table and view of a serving file, as sorted rows (its paths made relative)."""
    con = duckdb.connect(str(serving), read_only=True)
    try:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables order by 1"
            ).fetchall()
        ]
        return {
            name: sorted(repr(row) for row in con.execute(f'select * from "{name}"').fetchall())
            for name in names
        }
    finally:
        con.close()


def test_a_lake_table_missing_a_column_is_a_clear_error(settings: Settings) -> None:
    publish_date(settings, day(38))
    _rewrite(settings, "danger_alerts", 39, "select * rename (reason as why) from t")
    with pytest.raises(PublishBlockedError, match=r"danger_alerts.*reason"):
        publish_date(settings, day(39))
    assert load_catalog(settings.paths.published).as_of_date == day(38)


def test_every_published_table_is_in_the_serving_file(settings: Settings) -> None:
    publish_date(settings, day(39))
    con = duckdb.connect(str(_serving(settings)), read_only=True)
    names = {
        row[0] for row in con.sql("select table_name from information_schema.tables").fetchall()
    }
    assert (
        set(PUBLISHED_TABLES) | {"customer_stage_episodes", "publish_info", "publish_audit"}
        <= names
    )
    described = dict(con.sql("select table_name, rows from published_tables").fetchall())
    catalog = load_catalog(settings.paths.published)
    assert described == {t: e.rows for t in PUBLISHED_TABLES if (e := catalog.current(t))}


OLD_DUCKDB = "duckdb==1.1.3"  # a DuckDB 1.x a BI tool might bundle


def test_a_duckdb_1_client_reads_the_serving_file(settings: Settings, tmp_path: Path) -> None:
    """Written with storage_compatibility_version v1.0.0 (the default), the serving file
    opens in DuckDB 1.x, installed from the package registry into a throwaway venv."""
    publish_date(settings, day(39))
    uv = REPO / ".cache" / "uv" / "bin" / "uv"
    venv = tmp_path / "duckdb1"
    subprocess.run([str(uv), "venv", "-q", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), OLD_DUCKDB],
        check=True,
        timeout=600,
    )
    query = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, con.sql('select count(*) from customer_segments').fetchall()[0][0], "
        "con.sql('select as_of_date from publish_info').fetchall()[0][0])"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", query, str(_serving(settings))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    catalog = load_catalog(settings.paths.published)
    entry = catalog.current("customer_segments")
    assert entry is not None
    assert result.stdout.split() == ["1.1.3", str(entry.rows), day(39).isoformat()]


def test_a_publish_clears_what_a_publish_killed_on_another_date_left(
    settings: Settings,
) -> None:
    """The clear looks only where publishes write (its own date's snapshot folders and
    those of publishes killed on other dates), not through the whole history; status
    still walks everything."""
    paths = settings.paths
    toml = paths.published.parent / "pipeline.toml"
    toml.write_text(
        "[paths]\n"
        + "".join(
            f'{key} = "{getattr(paths, key)}"\n'
            for key in ("incoming", "lake", "state", "published", "models", "alerts")
        )
        + f'[publish]\nkey_secret = "{SECRET}"\n'
    )
    publish_date(settings, day(38))
    command = ["publish", "--date", day(39).isoformat()]
    killed = subprocess.run(
        [str(Path(sys.executable).with_name("rfm-pipeline")), "--config", str(toml), *command],
        env={k: v for k, v in os.environ.items() if not k.startswith("RFM_")}
        | {CRASH_ENV: "snapshots_placed"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    placed = sorted(paths.published.glob(f"snapshots/*/{AS_OF_KEY}={day(39)}/*"))
    assert placed and find_leftovers(settings).orphans == placed
    # A stray file in a date no publish was killed on: status lists it, a publish of
    # another date does not look there.
    stray = (
        paths.published / "snapshots" / "customer_segments" / f"{AS_OF_KEY}={day(38)}"
    ) / "data-stray.parquet"
    stray.write_bytes(b"not a snapshot")

    publish_date(settings, day(37))

    assert not any(path.exists() for path in placed)
    left = find_leftovers(settings)
    assert (left.orphans, left.scratch, left.temporaries) == ([stray], [], [])
