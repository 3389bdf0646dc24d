"""The headline figures of a report: what the terminal summary and the index show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from pipeline.report import palette
from pipeline.report.figures import ReportData

SHIFTS_SHOWN = 3


@dataclass(frozen=True)
class Headline:
    """A date's figures at a glance."""

    as_of_date: date
    previous_date: date | None
    customers_scored: int
    customers_known: int
    customers_in_danger: int
    window_revenue: float  # net spend of the scored customers in the scoring window
    pareto_share: float | None  # share of it that the top scoring.pareto_top_share bring
    buyers_today: int
    orders_today: int
    net_sales_today: float
    danger_entries: int
    value_at_risk: float  # of the day's danger entries
    stage_counts: dict[str, int] = field(default_factory=dict)
    # (segment, customers now, change since the previous run): the largest moves first.
    segment_shifts: list[tuple[str, int, int]] = field(default_factory=list)
    # The day's first alert: priority, segment, value_at_risk, reason (and customer_id
    # when report.show_customer_ids).
    top_alert: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def headline(data: ReportData, show_customer_ids: bool) -> Headline:
    """The headline of the report's figures."""
    figures = data.headline
    on_date = [row for row in data.stage_history if row["as_of_date"] == data.as_of_date]
    stage_counts = {stage: 0 for stage in palette.STAGES}
    stage_counts.update({str(row["stage"]): int(row["customers"]) for row in on_date})
    shifts = [
        (str(row["group_name"]), int(row["customers"]), int(row["customers_change_since_previous"]))
        for row in data.segment_changes
        if row["dimension"] == "segment" and row["customers_change_since_previous"]
    ]
    shifts.sort(key=lambda shift: (-abs(shift[2]), shift[0]))
    top = data.top_alerts[0] if data.top_alerts else None
    top_alert = None
    if top is not None:
        top_alert = {
            "priority": int(top["priority"]),
            "segment": top["segment"],
            "value_at_risk": float(top["value_at_risk"] or 0),
            "reason": top["reason"],
        }
        if show_customer_ids:
            top_alert["customer_id"] = top["customer_id"]
    pareto = figures["pareto_share"]
    return Headline(
        as_of_date=data.as_of_date,
        previous_date=data.previous_date,
        customers_scored=int(figures["customers_scored"]),
        customers_known=int(figures["customers_known"]),
        customers_in_danger=int(figures["customers_in_danger"]),
        window_revenue=float(figures["window_revenue"]),
        pareto_share=None if pareto is None else float(pareto),
        buyers_today=int(figures["buyers_today"]),
        orders_today=int(figures["orders_today"]),
        net_sales_today=float(figures["net_sales_today"]),
        danger_entries=int(figures["danger_entries"]),
        value_at_risk=float(figures["value_at_risk"]),
        stage_counts=stage_counts,
        segment_shifts=shifts[:SHIFTS_SHOWN],
        top_alert=top_alert,
    )
