"""The daily report: a self-contained HTML page per date, and the index of past reports."""

from pipeline.report.build import ReportResult, build_report, report_file
from pipeline.report.headline import Headline
from pipeline.report.runs import record_run

__all__ = ["Headline", "ReportResult", "build_report", "record_run", "report_file"]
