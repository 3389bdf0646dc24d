"""The versioned model store every model shares, and the one refit schedule.

A toy model kind exercises the store itself (paths, versions, atomic saves, rejected
fits).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline import model_store
from pipeline.model_store import VersionedStore, refit_due

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
