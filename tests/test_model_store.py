"""The versioned model store every model shares, and the one refit schedule.

A toy model kind exercises the store itself (paths, versions, atomic saves, rejected
fits); the three real kinds are read back from folders laid out as the stores before
this one wrote them, so the models folders of existing deployments keep loading.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import model_store
from pipeline.lifecycle import btyd
from pipeline.lifecycle.alive import AliveModel, AliveStore
from pipeline.lifecycle.risk import RiskModel, RiskStore, RiskVersion
from pipeline.model_store import VersionedStore, refit_due
from pipeline.scoring.clusters import ClusterModel, ClusterStore

DAY0 = date(2025, 1, 1)


@dataclass(frozen=True)
class Toy:
    version: date
    value: str
    usable: bool = True


class ToyStore(VersionedStore[Toy]):
    """Two files per version, the marker written last; a hook to act mid-write."""

    kind = "toy"
    marker = "meta.json"
    title = "toy"

    def __init__(self, models: Path) -> None:
        super().__init__(models)
        self.between = lambda: None  # called after the first file, before the marker

    def write(self, model: Toy, folder: Path) -> None:
        (folder / "body.txt").write_text(model.value, encoding="utf-8")
        self.between()
        meta = {"value": model.value, "usable": model.usable}
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def read(self, folder: Path, version: date) -> Toy:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        assert (folder / "body.txt").read_text(encoding="utf-8") == meta["value"]
        return Toy(version, meta["value"], meta["usable"])

    def unusable(self, model: Toy) -> str | None:
        return None if model.usable else "judged unusable"


def _day(offset: int) -> date:
    return DAY0 + timedelta(days=offset)


def _listing(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# --- refit_due: the one schedule -----------------------------------------------------


@pytest.mark.parametrize(
    ("age_days", "every", "due"),
    [
        (0, 7, False),
        (6, 7, False),
        (7, 7, True),
        (30, 7, True),
        (1, 1, True),
        (0, 1, False),
        (0, 0, False),  # 0: never on schedule once a model exists, only when asked
        (7, 0, False),
        (365, 0, False),
    ],
)
def test_a_refit_is_due_when_the_version_is_old_enough(
    age_days: int, every: int, due: bool
) -> None:
    assert refit_due(DAY0, DAY0 + timedelta(days=age_days), every) is due


@pytest.mark.parametrize("every", [0, 1, 7])
def test_the_first_fit_is_always_due(every: int) -> None:
    assert refit_due(None, DAY0, every) is True


# --- versions ------------------------------------------------------------------------


def test_versions_are_dated_folders_under_the_kind(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    assert store.versions() == []
    assert store.newest_on_or_before(_day(100)) is None
    paths = [store.save(Toy(_day(7), "b")), store.save(Toy(DAY0, "a"))]
    (tmp_path / "toy" / "version=2025-01-20").mkdir()  # no marker: not a version
    (tmp_path / "toy" / "notes").mkdir()

    assert paths == [
        tmp_path / "toy" / "version=2025-01-08" / "meta.json",
        tmp_path / "toy" / "version=2025-01-01" / "meta.json",
    ]
    assert store.path(DAY0) == paths[1]
    assert store.folder(DAY0) == paths[1].parent
    assert store.versions() == [DAY0, _day(7)]
    assert store.load(_day(7)) == Toy(_day(7), "b")
    assert store.newest_version_on_or_before(_day(-1)) is None
    assert store.newest_on_or_before(_day(-1)) is None
    assert store.newest_version_on_or_before(_day(6)) == DAY0
    assert store.newest_on_or_before(_day(6)) == Toy(DAY0, "a")
    assert store.newest_on_or_before(_day(7)) == Toy(_day(7), "b")
    assert store.newest_on_or_before(_day(100)) == Toy(_day(7), "b")
    assert _listing(tmp_path / "toy") == [
        "notes",
        "version=2025-01-01",
        "version=2025-01-01/body.txt",
        "version=2025-01-01/meta.json",
        "version=2025-01-08",
        "version=2025-01-08/body.txt",
        "version=2025-01-08/meta.json",
        "version=2025-01-20",
    ]


def test_an_unusable_version_is_skipped_and_never_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "good"))
    store.save(Toy(_day(7), "later"))
    meta = store.path(_day(7))
    meta.write_text(json.dumps({"value": "later", "usable": False}), encoding="utf-8")

    with caplog.at_level("WARNING"):
        assert store.newest_on_or_before(_day(10)) == Toy(DAY0, "good")
    assert "toy model version 2025-01-08 is not usable, skipped: judged unusable" in caplog.text
    with pytest.raises(ValueError, match="refusing to save an unusable toy model as version"):
        store.save(Toy(_day(14), "bad", usable=False))
    assert store.versions() == [DAY0, _day(7)]


# --- atomic saves --------------------------------------------------------------------


def test_a_reader_never_sees_a_version_being_written(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "old"))
    seen: list[object] = []

    def look() -> None:  # mid-write: the first file is written, the marker not yet
        seen.append((store.versions(), store.newest_on_or_before(_day(7))))
        seen.append(sorted(path.name for path in (tmp_path / "toy").iterdir()))

    store.between = look
    store.save(Toy(_day(7), "new"))

    assert seen[0] == ([DAY0], Toy(DAY0, "old"))
    assert seen[1] == [f".version=2025-01-08.{os.getpid()}.tmp", "version=2025-01-01"]
    assert store.newest_on_or_before(_day(7)) == Toy(_day(7), "new")
    assert sorted(path.name for path in (tmp_path / "toy").iterdir()) == [
        "version=2025-01-01",
        "version=2025-01-08",
    ]


def test_a_failed_save_leaves_no_version_and_no_leftover(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)

    def fail() -> None:
        raise OSError("disk full")

    store.between = fail
    with pytest.raises(OSError, match="disk full"):
        store.save(Toy(DAY0, "half"))
    assert store.versions() == []
    assert _listing(tmp_path / "toy") == []


def test_a_failed_resave_keeps_the_old_version_whole(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "old"))
    before = _listing(tmp_path / "toy")

    def fail() -> None:
        raise OSError("killed")

    store.between = fail
    with pytest.raises(OSError, match="killed"):
        store.save(Toy(DAY0, "new"))
    assert store.load(DAY0) == Toy(DAY0, "old")
    assert _listing(tmp_path / "toy") == before


def test_a_failed_swap_puts_the_old_version_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "old"))
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(source: Path, target: Path) -> None:
        renames.append((Path(source).name, Path(target).name))
        if Path(source).name.endswith(".tmp"):
            raise OSError("rename failed")
        real_replace(source, target)

    monkeypatch.setattr(model_store.os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        store.save(Toy(DAY0, "new"))
    monkeypatch.undo()

    pid = os.getpid()
    assert renames == [
        ("version=2025-01-01", f".version=2025-01-01.{pid}.old"),
        (f".version=2025-01-01.{pid}.tmp", "version=2025-01-01"),
        (f".version=2025-01-01.{pid}.old", "version=2025-01-01"),
    ]
    assert store.load(DAY0) == Toy(DAY0, "old")
    assert _listing(tmp_path / "toy") == [
        "version=2025-01-01",
        "version=2025-01-01/body.txt",
        "version=2025-01-01/meta.json",
    ]


def test_resaving_a_version_replaces_it_whole(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "old"))
    (store.folder(DAY0) / "stale.bin").write_bytes(b"from an older writer")

    store.save(Toy(DAY0, "new"))

    assert store.load(DAY0) == Toy(DAY0, "new")
    assert sorted(path.name for path in store.folder(DAY0).iterdir()) == ["body.txt", "meta.json"]


def test_a_killed_saves_leftovers_are_ignored_then_cleared(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "kept"))
    root = tmp_path / "toy"
    # A writer killed between its two renames: the new version staged, the old one aside.
    for name in (".version=2025-01-08.4242.tmp", ".version=2025-01-08.4242.old"):
        (root / name).mkdir()
        (root / name / "meta.json").write_text('{"value": "x", "usable": true}')
        (root / name / "body.txt").write_text("x")

    assert store.versions() == [DAY0]
    assert store.newest_on_or_before(_day(7)) == Toy(DAY0, "kept")
    store.save(Toy(_day(7), "again"))
    assert sorted(path.name for path in root.iterdir()) == [
        "version=2025-01-01",
        "version=2025-01-08",
    ]


def test_a_version_must_hold_its_marker(tmp_path: Path) -> None:
    class Forgetful(ToyStore):
        def write(self, model: Toy, folder: Path) -> None:
            (folder / "body.txt").write_text(model.value, encoding="utf-8")

    store = Forgetful(tmp_path)
    with pytest.raises(ValueError, match=r"must hold meta\.json"):
        store.save(Toy(DAY0, "a"))
    assert _listing(tmp_path / "toy") == []


# --- rejected fits -------------------------------------------------------------------


def test_rejected_fits_are_kept_apart_and_count_as_attempts(tmp_path: Path) -> None:
    store = ToyStore(tmp_path)
    store.save(Toy(DAY0, "kept"))
    path = store.save_rejected(Toy(_day(7), "rejected", usable=False))

    assert path == tmp_path / "toy" / "rejected" / "version=2025-01-08" / "meta.json"
    assert store.rejected_path(_day(7)) == path
    assert store.versions() == [DAY0]
    assert store.rejected_versions() == [_day(7)]
    assert store.load_rejected(_day(7)) == Toy(_day(7), "rejected", usable=False)
    assert store.newest_on_or_before(_day(10)) == Toy(DAY0, "kept")
    assert store.newest_attempt_on_or_before(_day(-1)) is None
    assert store.newest_attempt_on_or_before(_day(6)) == DAY0
    assert store.newest_attempt_on_or_before(_day(10)) == _day(7)
    # Re-recording the same rejected date replaces it.
    store.save_rejected(Toy(_day(7), "rejected again", usable=False))
    assert store.load_rejected(_day(7)).value == "rejected again"
    assert sorted(path.name for path in (tmp_path / "toy" / "rejected").iterdir()) == [
        "version=2025-01-08"
    ]


# --- the three kinds: the layout they always had -------------------------------------


def _cluster(version: date) -> ClusterModel:
    return ClusterModel(
        version=version,
        k=1,
        scaler_mean=[0.5, 1.0, 2.0],
        scaler_scale=[1.0, 1.0, 1.0],
        centroids=[[0.0, 0.0, 0.0]],
        profiles=[],
        quality={"inertia": 1.0},
    )


def test_cluster_versions_keep_their_layout_and_bytes(tmp_path: Path) -> None:
    model = _cluster(DAY0)
    legacy = tmp_path / "old" / "kmeans" / "version=2025-01-01" / "model.json"
    legacy.parent.mkdir(parents=True)
    legacy.write_text(model.to_json(), encoding="utf-8")  # as the old ModelStore wrote it

    assert ClusterStore(tmp_path / "old").newest_on_or_before(_day(3)) == model
    path = ClusterStore(tmp_path / "new").save(model)
    assert path == tmp_path / "new" / "kmeans" / "version=2025-01-01" / "model.json"
    assert path.read_bytes() == legacy.read_bytes()
    assert _listing(tmp_path / "new") == _listing(tmp_path / "old")


def test_alive_versions_keep_their_layout_and_bytes(tmp_path: Path) -> None:
    params = btyd.Params(0.5, 4.0, 0.9, 1.6, log_likelihood=-950.5, n_customers=900,
                         converged=True, repeat_buyers=300)  # fmt: skip
    rejected = btyd.Params(6e3, 9e5, 1e-7, 3.0, log_likelihood=-99.0, n_customers=40,
                           converged=True, repeat_buyers=10,
                           degenerate_reason="too few repeat buyers")  # fmt: skip
    old = tmp_path / "old" / "btyd"
    for folder, fitted in (
        ("version=2025-01-01", params),
        ("rejected/version=2025-01-08", rejected),
    ):
        path = old / folder / "params.json"
        path.parent.mkdir(parents=True)
        stored = {"params": asdict(fitted), "time_unit": "weeks"}
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    legacy = AliveStore(tmp_path / "old")
    assert legacy.newest_on_or_before(_day(30)) == AliveModel(DAY0, params, "weeks")
    assert legacy.load_rejected(_day(7)) == AliveModel(_day(7), rejected, "weeks")
    assert legacy.newest_attempt_on_or_before(_day(30)) == _day(7)
    store = AliveStore(tmp_path / "new")
    store.save(AliveModel(DAY0, params, "weeks"))
    store.save_rejected(AliveModel(_day(7), rejected, "weeks"))
    assert _listing(tmp_path / "new") == _listing(tmp_path / "old")
    for path in (tmp_path / "old").rglob("params.json"):
        assert (tmp_path / "new" / path.relative_to(tmp_path / "old")).read_bytes() == (
            path.read_bytes()
        )


def _curve() -> pa.Table:
    return pa.table({"gap_days": pa.array([1, 2], pa.int32()), "share": [0.5, 1.0]})


def _risk(version: date, estimator: object = None) -> RiskModel:
    return RiskModel(
        version=version,
        source="rhythm_fallback" if estimator is None else "model",
        horizon_days=14,
        population_gap_days=10.0,
        danger_risk=0.9,
        danger_exit_risk=0.8,
        termination_risk=0.98,
        figures={"population_gap_days": 10.0},
        reason="too little history",
        estimator=estimator,
    )


def test_risk_versions_keep_their_layout(tmp_path: Path) -> None:
    model = _risk(DAY0, estimator={"a fitted": "classifier"})
    old = tmp_path / "old" / "risk" / "version=2025-01-01"
    old.mkdir(parents=True)
    pq.write_table(_curve(), old / "gap_curve.parquet")
    (old / "estimator.pkl").write_bytes(pickle.dumps(model.estimator))
    meta = {
        "danger_exit_risk": 0.8, "danger_risk": 0.9, "figures": {"population_gap_days": 10.0},
        "horizon_days": 14, "population_gap_days": 10.0, "reason": "too little history",
        "source": "model", "termination_risk": 0.98, "version": "2025-01-01",
    }  # fmt: skip
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    (old / "model.json").write_text(text, encoding="utf-8")
    half = tmp_path / "old" / "risk" / "version=2025-01-08"  # the old writer, killed
    half.mkdir()
    pq.write_table(_curve(), half / "gap_curve.parquet")

    legacy = RiskStore(tmp_path / "old")
    assert legacy.versions() == [DAY0]
    stored = legacy.newest_on_or_before(_day(30))
    assert stored is not None
    assert stored.model == model and stored.curve.equals(_curve())
    assert stored.version == DAY0
    store = RiskStore(tmp_path / "new")
    store.save(RiskVersion(model, _curve()))
    assert _listing(tmp_path / "new" / "risk") == _listing(tmp_path / "old" / "risk")[:4]
    assert (tmp_path / "new" / "risk" / "version=2025-01-01" / "model.json").read_text() == text
    # A fallback has no estimator file, and re-saving a version drops the one it had.
    store.save(RiskVersion(_risk(DAY0), _curve()))
    assert sorted(path.name for path in store.folder(DAY0).iterdir()) == [
        "gap_curve.parquet",
        "model.json",
    ]
    reloaded = store.load(DAY0)
    assert reloaded.model == _risk(DAY0) and reloaded.model.estimator is None
