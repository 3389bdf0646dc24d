"""Atomic writes of the report's files: a reader sees the old file or the new one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes as write_bytes_atomically


def write_json(target: Path, value: Any) -> None:
    """Stable JSON (sorted keys, dates as ISO strings), written atomically."""
    text = json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False)
    write_bytes_atomically(target, (text + "\n").encode("utf-8"))


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when there is none or it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
