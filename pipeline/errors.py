"""Errors the pipeline raises on purpose: each says what is wrong and where."""

from __future__ import annotations


class PipelineError(Exception):
    """An expected failure; the CLI prints it as one line and exits non-zero."""


class ConfigError(PipelineError):
    """The configuration is invalid; the message names the key."""


class RejectedFileError(PipelineError):
    """An input file has a structural problem and is rejected whole."""

    def __init__(self, file: str, reason: str, code: str = "malformed_file") -> None:
        super().__init__(f"{file}: rejected: {reason}")
        self.file = file
        self.reason = reason
        self.code = code  # machine-readable: the file ledger's outcome_reason


class BadFilesError(RejectedFileError):
    """Files of the date were rejected or are still in transfer, and
    ``source.on_bad_file = "fail"``: nothing but the file ledger was written.

    ``file`` and ``code`` are the first such file's; the message names them all.
    """

    def __init__(self, message: str, file: str, code: str) -> None:
        PipelineError.__init__(self, message)
        self.file = file
        self.reason = message
        self.code = code


class MissingExportError(PipelineError):
    """No export file arrived for the logical date."""


class NotIngestedError(PipelineError):
    """A step needs a date that has not been (completely) ingested."""


class DataCheckError(PipelineError):
    """A table just written breaks its stated grain, accepted values or ranges."""


class NotScoredError(PipelineError):
    """A step needs a date another step has not produced yet (scoring, the day before)."""


class PublishBlockedError(PipelineError):
    """A published table failed its contract: nothing was replaced."""


class ExportsLateError(PipelineError):
    """The day's exports had not arrived by the deadline (schedule.export_deadline_hours)."""
