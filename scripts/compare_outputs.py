"""Compare what two runs of the pipeline wrote: the refactor check.

    .venv/bin/python scripts/compare_outputs.py BEFORE_DIR AFTER_DIR

Each directory is a demo folder (``rfm-pipeline demo --dir``) or any project folder with
lake/, state/, models/ and published/. Every file is compared byte for byte, except:

- the serving DuckDB file, compared by the contents of every table and view (a DuckDB
  file's blocks are not laid out the same way twice);
- the run records (published/reports/runs/*.json), which hold step timings;
- the working state's lock files and the outbox (its times are the delivery's).

Prints the files that differ (a report's differing lines too) and exits 1 if any does.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from pathlib import Path

IGNORED_PARTS = ("locks", "outbox")


def main(before: Path, after: Path) -> int:
    left, right = _files(before), _files(after)
    differ = sorted(name for name in left.keys() & right.keys() if left[name] != right[name])
    only = sorted(left.keys() ^ right.keys())
    for name in only:
        print(f"only in {'before' if name in left else 'after'}: {name}")
    for name in differ:
        print(f"differs: {name}")
        if name.endswith(".html"):
            _show_lines(before / name, after / name)
    serving = "published/serving.duckdb"
    serving_same = True
    if (before / serving).is_file() and (after / serving).is_file():
        serving_same = _tables(before / serving) == _tables(after / serving)
        print(f"{serving}: {'same tables and rows' if serving_same else 'DIFFERENT content'}")
    print(f"{len(left)} files compared; {len(differ)} differ; {len(only)} in one only")
    return 0 if not differ and not only and serving_same else 1


def _files(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if not path.is_file() or name == "published/serving.duckdb":
            continue
        if name.startswith("published/reports/runs/") or any(
            part in IGNORED_PARTS for part in path.relative_to(root).parts[:-1]
        ):
            continue
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _tables(path: Path) -> dict[str, str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables"
            ).fetchall()
        ]
        return {
            name: hashlib.sha256(
                repr(
                    sorted(repr(row) for row in con.execute(f'select * from "{name}"').fetchall())
                ).encode()
            ).hexdigest()
            for name in names
        }
    finally:
        con.close()


def _show_lines(left: Path, right: Path) -> None:
    def lines(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").replace("><", ">\n<").splitlines()

    changed = [
        line
        for line in difflib.unified_diff(lines(left), lines(right), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    for line in changed[:20]:
        print(f"    {line}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
