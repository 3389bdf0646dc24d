"""One colour per segment, stage and cluster, the same in every chart and table."""

from __future__ import annotations

# The 11 segments from the most to the least valuable relationship (docs/scoring.md).
SEGMENT_COLOURS = {
    "Champions": "#1b7837",
    "Loyal": "#4dac26",
    "Potential Loyalist": "#a6d96a",
    "New Customers": "#35b7c9",
    "Promising": "#7fb2e5",
    "Need Attention": "#e6c229",
    "About To Sleep": "#f4a259",
    "At Risk": "#e66101",
    "Cannot Lose Them": "#c51b1b",
    "Hibernating": "#9e8fb2",
    "Lost": "#8c8c8c",
}
SEGMENTS = tuple(SEGMENT_COLOURS)

# The seven lifecycle stages in the documents' order (docs/lifecycle.md).
STAGE_COLOURS = {
    "prospect": "#c6dbef",
    "socialization": "#6baed6",
    "growth": "#74c476",
    "maturity": "#238b45",
    "danger": "#d7301f",
    "termination": "#8c510a",
    "interruption": "#969696",
}
STAGES = tuple(STAGE_COLOURS)
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
