"""The typed configuration: defaults, file, environment, and errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("clean_environment")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_documents_exactly_the_defaults(tmp_path: Path) -> None:
    example = REPO / "pipeline.example.toml"
    from_example = load_settings(example)
    defaults = load_settings()
    assert from_example.model_dump(exclude={"paths"}) == defaults.model_dump(exclude={"paths"})
    documented = tomllib.loads(example.read_text(encoding="utf-8"))
    for section, model in Settings.model_fields.items():
        assert set(documented[section]) == set(model.annotation.model_fields), section  # type: ignore[union-attr]


def test_file_values_and_relative_paths(tmp_path: Path) -> None:
    config = _write(tmp_path, '[paths]\nlake = "lake2"\n[ingest]\nlate_tolerance_hours = 24\n')
    settings = load_settings(config)
    assert settings.paths.lake == tmp_path / "lake2"
    assert settings.ingest.late_tolerance_hours == 24
    assert settings.source.timezone == "Asia/Shanghai"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _write(tmp_path, "[ingest]\nlate_tolerance_hours = 24\n")
    monkeypatch.setenv("RFM_INGEST__LATE_TOLERANCE_HOURS", "36")
    monkeypatch.setenv("RFM_PATHS__INCOMING", "/srv/exports")
    settings = load_settings(config)
    assert settings.ingest.late_tolerance_hours == 36
    assert settings.paths.incoming == Path("/srv/exports")


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text(
        '[source]\ntimezone = "Europe/Berlin"\ncurrency = "EUR"\naccepted_currencies = ["EUR"]\n'
    )
    monkeypatch.setenv("RFM_CONFIG", str(config))
    assert load_settings().source.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[source]\ntimezone = "Asia/Shangai"\n',
            "source.timezone: unknown timezone 'Asia/Shangai'",
        ),
        ('[source]\nencoding = "klingon"\n', "source.encoding: unknown encoding 'klingon'"),
        (
            "[ingest]\nlate_tolerance_hour = 3\n",
            "ingest.late_tolerance_hour: Extra inputs are not permitted",
        ),
        (
            "[ingest]\nlate_tolerance_hours = -1\n",
            "ingest.late_tolerance_hours: Input should be greater than or equal to 0",
        ),
        (
            "[ingest]\ndedup_lookback_days = 1\n",
            "ingest: dedup_lookback_days (1) must cover late_tolerance_hours (48)",
        ),
        (
            '[source]\ncurrency = "EURO"\n',
            "source.currency: 'EURO' is not a 3-letter currency code",
        ),
        ('[source]\ncurrency = "EUR"\n', "source: currency EUR is not in accepted_currencies"),
        (
            '[source]\nfile_pattern = "../secret/*"\n',
            "source.file_pattern: must contain a {date:...} placeholder",
        ),
        (
            '[source]\nfile_pattern = "../{date:%Y}/*"\n',
            "source.file_pattern: must be relative to paths.incoming",
        ),
        (
            '[source.columns]\nline_id = ["order_id"]\n',
            "header 'order_id' is mapped to both order_id and line_id",
        ),
        ('[source]\ndelimiter = ":"\n', "source.delimiter: Input should be"),
        ("[paths\n", "Expected"),
    ],
    ids=[
        "timezone",
        "encoding",
        "unknown-key",
        "negative",
        "lookback",
        "currency",
        "currency-not-accepted",
        "pattern-no-date",
        "pattern-escapes",
        "ambiguous-alias",
        "delimiter",
        "malformed-toml",
    ],
)
def test_invalid_configuration_fails_fast_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(_write(tmp_path, text))
    assert message in str(error.value)
    assert "pipeline.toml" in str(error.value)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RFM_INGEST__LATE_TOLERANCE_HOURS", "soon")
    with pytest.raises(
        ConfigError,
        match=r"ingest.late_tolerance_hours \(from \$RFM_INGEST__LATE_TOLERANCE_HOURS\)",
    ):
        load_settings()


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")
