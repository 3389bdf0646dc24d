"""One colour per segment, stage and cluster, the same in every chart and table."""

from __future__ import annotations

from pipeline import seeds

# The segments from the most to the least valuable relationship (docs/scoring.md) and the
# lifecycle stages in the documents' order (docs/lifecycle.md), with their colours: both
# kept in the seeds (sql/seeds/segments.csv, lifecycle_stages.csv).
SEGMENT_COLOURS = seeds.segment_colours()
SEGMENTS = tuple(SEGMENT_COLOURS)
STAGE_COLOURS = seeds.stage_colours()
STAGES = tuple(STAGE_COLOURS)
DANGER = seeds.danger_stage()
# stage_flows has no from_stage for a customer seen for the first time.
NEW = "(new)"

# Cluster ids are stable across refits (docs/scoring.md), so a colour per id is too.
_CLUSTER_COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)

INK = "#222222"
MUTED = "#6b6b6b"
GRID = "#e3e3e3"
ACCENT = "#0072b2"


def segment_colour(segment: str) -> str:
    return SEGMENT_COLOURS.get(segment, MUTED)


def stage_colour(stage: str) -> str:
    return STAGE_COLOURS.get(stage, MUTED)


def cluster_colour(cluster_id: int) -> str:
    return _CLUSTER_COLOURS[(cluster_id - 1) % len(_CLUSTER_COLOURS)]
