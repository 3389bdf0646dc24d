"""One typed configuration, read at run time from TOML with environment overrides.

Precedence, highest first: environment variables (``RFM_<SECTION>__<KEY>``, e.g.
``RFM_PATHS__LAKE=/data/lake``), then the TOML file, then the defaults below. The file
is ``--config``, else ``$RFM_CONFIG``, else ``./pipeline.toml`` if it exists. Every
threshold lives here; ``pipeline.example.toml`` documents each with its default.
"""

from __future__ import annotations

import codecs
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.errors import ConfigError

ENV_PREFIX = "RFM_"
CONFIG_ENV_VAR = "RFM_CONFIG"
DEFAULT_CONFIG_FILE = "pipeline.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Section):
    """Where files live; relative paths resolve against the config file's folder."""

    incoming: Path = Path("data/incoming")
    lake: Path = Path("data/lake")
    state: Path = Path("data/state")
    published: Path = Path("data/published")
    models: Path = Path("data/models")
    alerts: Path = Path("data/alerts")

    @classmethod
    def under(cls, root: Path) -> PathsConfig:
        """Every folder under ``root``, by its name (a test's, a benchmark's, a harness's)."""
        return cls(**{name: root / name for name in cls.model_fields})

    def resolved_against(self, base: Path) -> PathsConfig:
        return PathsConfig(
            incoming=(base / self.incoming).resolve(),
            lake=(base / self.lake).resolve(),
            state=(base / self.state).resolve(),
            published=(base / self.published).resolve(),
            models=(base / self.models).resolve(),
            alerts=(base / self.alerts).resolve(),
        )


class ColumnMapping(_Section):
    """Canonical column -> the source headers that mean it (matched case-insensitively)."""

    order_id: list[str] = ["order_id", "order_no", "订单号", "订单编号"]
    line_id: list[str] = ["line_id", "line_number", "line_no", "行号"]
    customer_id: list[str] = ["customer_id", "member_id", "客户编号", "会员编号"]
    ordered_at: list[str] = ["ordered_at", "order_time", "order_date", "下单时间"]
    product_id: list[str] = ["product_id", "sku", "商品编号"]
    quantity: list[str] = ["quantity", "qty", "数量"]
    unit_price: list[str] = ["unit_price", "price", "单价"]
    amount: list[str] = ["amount", "line_total", "金额"]
    currency: list[str] = ["currency", "币种"]
    status: list[str] = ["status", "order_status", "订单状态"]

    @model_validator(mode="after")
    def _aliases_are_unambiguous(self) -> ColumnMapping:
        seen: dict[str, str] = {}
        for canonical, aliases in self.model_dump().items():
            if not aliases:
                raise ValueError(f"{canonical}: needs at least one source header")
            for alias in aliases:
                key = normalize_header(alias)
                if key in seen and seen[key] != canonical:
                    raise ValueError(
                        f"header {alias!r} is mapped to both {seen[key]} and {canonical}"
                    )
                seen[key] = canonical
        return self

    def lookup(self) -> dict[str, str]:
        """Normalized source header -> canonical column."""
        return {
            normalize_header(alias): canonical
            for canonical, aliases in self.model_dump().items()
            for alias in aliases
        }


def normalize_header(header: str) -> str:
    return header.strip().strip("\ufeff").strip().strip('"').strip().casefold()


class SourceConfig(_Section):
    """How the shop system's daily exports look."""

    name: str = "shop"
    # Files of one logical date: a glob under paths.incoming, with {date:...} formatted.
    file_pattern: str = "sales_{date:%Y%m%d}*"
    # The optional customer master of one logical date, found like file_pattern; "" reads none.
    customer_file_pattern: str = "customers_{date:%Y%m%d}*"
    timezone: str = "Asia/Shanghai"
    # "auto" sniffs a BOM, then tries UTF-8, then GB18030 (a superset of GBK).
    encoding: str = "auto"
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    decimal_separator: Literal[".", ","] = "."
    # Digit-group separator removed from quantity, unit_price and amount ("" for none).
    thousands_separator: Literal["", ",", ".", " ", "'", "_"] = ""
    # Lines above a CSV's header (a title row, an export banner); skipped unread.
    skip_rows: int = Field(default=0, ge=0, le=100)
    # The reporting currency: every amount in order_lines is in it; also the currency of
    # lines whose export has no currency value.
    currency: str = "CNY"
    # Currencies a line may arrive in; any other is quarantined (unaccepted_currency).
    # Those other than `currency` are converted with exchange_rates_file.
    accepted_currencies: list[str] = ["CNY"]
    # Currency values of the export -> ISO code (matched after trimming, case-insensitive).
    currency_aliases: dict[str, str] = {
        "RMB": "CNY",
        "人民币": "CNY",
        "元": "CNY",
        "¥": "CNY",
        "￥": "CNY",
    }
    # CSV (rate_date, currency, rate): 1 unit of `currency` = rate units of the reporting
    # currency on rate_date (the line's local order date). Relative to paths.incoming.
    # "" converts nothing; it is needed when accepted_currencies lists another currency.
    exchange_rates_file: str = ""
    # An order id starting with this (e.g. "C", as UCI Online Retail and many ERPs mark a
    # cancellation) makes the line a cancellation; "" for none.
    cancellation_order_prefix: str = ""
    # A file that cannot be read whole (empty, unknown header, bad bytes, a symlink out of
    # paths.incoming, not a regular file, still in transfer): "fail" the date (nothing is
    # written but the file ledger), or "quarantine" the file and ingest the others.
    on_bad_file: Literal["fail", "quarantine"] = "fail"
    # Matched names starting with "." are files still being transferred (the convention of
    # rsync, scp and most uploaders): "in_transfer" records them as skipped (the date
    # fails unless on_bad_file = "quarantine"), "ingest" reads them like any file.
    hidden_files: Literal["in_transfer", "ingest"] = "in_transfer"
    # Symlinks in paths.incoming: "inside" follows those whose target stays inside the
    # folder (others are rejected, never opened); "refuse" rejects every symlink.
    symlinks: Literal["inside", "refuse"] = "inside"
    # Local-time formats tried in order; strings with a UTC offset or Z are absolute.
    timestamp_formats: list[str] = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S.%f",
        "%Y-%m-%dT%H:%M:%S.%f",
        "%Y/%m/%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M",
    ]
    # Status values (case-insensitive) that mark a line as returned or cancelled.
    return_statuses: list[str] = ["returned", "refunded", "退货", "已退款"]
    cancellation_statuses: list[str] = ["cancelled", "canceled", "已取消"]
    columns: ColumnMapping = ColumnMapping()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {value!r}") from error
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError as error:
                raise ValueError(f"unknown encoding {value!r}") from error
        return value

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isascii() or not value.isalpha():
            raise ValueError(f"{value!r} is not a 3-letter currency code")
        return value.upper()

    @field_validator("accepted_currencies")
    @classmethod
    def _currency_codes(cls, values: list[str]) -> list[str]:
        return [cls._currency_code(value) for value in values]

    @field_validator("currency_aliases")
    @classmethod
    def _alias_targets(cls, aliases: dict[str, str]) -> dict[str, str]:
        return {alias.strip().upper(): cls._currency_code(code) for alias, code in aliases.items()}

    @field_validator("exchange_rates_file")
    @classmethod
    def _rates_file_is_csv(cls, value: str) -> str:
        if value and not value.lower().endswith((".csv", ".csv.gz")):
            raise ValueError("must be a .csv file (rate_date, currency, rate)")
        return value

    @field_validator("file_pattern")
    @classmethod
    def _pattern_stays_inside_incoming(cls, value: str) -> str:
        if "{date" not in value:
            raise ValueError("must contain a {date:...} placeholder, e.g. sales_{date:%Y%m%d}*")
        if value.startswith(("/", "\\")) or ".." in Path(value).parts:
            raise ValueError("must be relative to paths.incoming and not leave it")
        return value

    @field_validator("customer_file_pattern")
    @classmethod
    def _optional_pattern_stays_inside_incoming(cls, value: str) -> str:
        return cls._pattern_stays_inside_incoming(value) if value else value

    @model_validator(mode="after")
    def _default_currency_accepted(self) -> SourceConfig:
        if self.currency not in self.accepted_currencies:
            raise ValueError(f"currency {self.currency} is not in accepted_currencies")
        foreign = [code for code in self.accepted_currencies if code != self.currency]
        if foreign and not self.exchange_rates_file:
            raise ValueError(
                f"accepted_currencies lists {', '.join(foreign)} besides {self.currency}:"
                " set exchange_rates_file to convert them (scoring adds amounts up, so they"
                " must all be in one currency)"
            )
        if self.thousands_separator and self.thousands_separator == self.decimal_separator:
            raise ValueError("thousands_separator and decimal_separator must differ")
        return self


class IngestConfig(_Section):
    """Thresholds of ingest; see pipeline.example.toml for why each default."""

    # Lines may arrive this late (ordered before the day's local midnight) and still land.
    late_tolerance_hours: int = Field(default=48, ge=0, le=24 * 31)
    # Lines stamped after the day's end by at most this much (clock skew) still land.
    early_tolerance_hours: int = Field(default=1, ge=0, le=48)
    # Duplicates are looked for in this many earlier days' partitions (re-sent files).
    dedup_lookback_days: int = Field(default=7, ge=0, le=366)
    # What a date with no export file at all means: an error, or a recorded empty day.
    missing_export: Literal["fail", "empty"] = "fail"
    # A line whose amount differs from quantity x unit_price by more than this share (and
    # by more than one cent) is inconsistent_amount: "flag" keeps it with
    # amount_inconsistent = true (discounts and fees do that), "quarantine" rejects it.
    amount_tolerance: float = Field(default=0.01, ge=0, le=10)
    inconsistent_amount: Literal["flag", "quarantine"] = "flag"
    # Plausibility bounds (absolute values): a line beyond one is quarantined as outlier.
    max_quantity: float = Field(default=100_000, gt=0)
    max_unit_price: float = Field(default=10_000_000, gt=0)
    max_amount: float = Field(default=100_000_000, gt=0)
    # Local times that do not exist (the DST gap) or occur twice (the DST fold): "flag"
    # keeps them with a flag column (the gap is read with the offset before the switch,
    # the fold as its second occurrence, standard time), "quarantine" rejects them.
    dst_local_times: Literal["flag", "quarantine"] = "flag"

    @model_validator(mode="after")
    def _lookback_covers_late_lines(self) -> IngestConfig:
        # A late line re-sent the next day must still find its first copy.
        if self.dedup_lookback_days * 24 < self.late_tolerance_hours:
            raise ValueError(
                f"dedup_lookback_days ({self.dedup_lookback_days}) must cover "
                f"late_tolerance_hours ({self.late_tolerance_hours})"
            )
        return self


class ScoringConfig(_Section):
    """How RFM is measured and scored; see pipeline.example.toml for why each default."""

    # Frequency and monetary count the trailing window_days (the as-of date included);
    # recency looks at all history. At most 378: the full recompute counts purchase days
    # in a fixed-size 378-bit mask.
    window_days: int = Field(default=365, ge=28, le=378)
    # AHP weights of standardized R, F and M in the weighted score (source: article 7).
    weight_recency: float = Field(default=0.199, gt=0, le=1)
    weight_frequency: float = Field(default=0.414, gt=0, le=1)
    weight_monetary: float = Field(default=0.387, gt=0, le=1)
    # The Pareto share is the revenue share of this top fraction of customers.
    pareto_top_share: float = Field(default=0.2, gt=0, lt=1)
    # Daily customer state kept for re-runs; older dates are recomputed from all lines.
    state_retention_days: int = Field(default=35, ge=1, le=3660)


class ClustersConfig(_Section):
    """K-means on log-scaled, standardized R, F, M."""

    # Number of clusters; 0 chooses it in [k_min, k_max] by the best silhouette.
    k: int = Field(default=5, ge=0, le=20)
    k_min: int = Field(default=3, ge=2, le=20)
    k_max: int = Field(default=8, ge=2, le=20)
    # Customers the model is fitted on (a deterministic hash sample beyond this).
    sample_size: int = Field(default=200_000, ge=100)
    # Customers of the sample the silhouette is measured on (it is quadratic).
    quality_sample_size: int = Field(default=10_000, ge=100)
    n_init: int = Field(default=10, ge=1, le=100)
    seed: int = 42

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ClustersConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) is above k_max ({self.k_max})")
        return self

    @model_validator(mode="before")
    @classmethod
    def _removed_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and "refit_every_days" in data:
            raise ValueError(
                "clusters.refit_every_days was removed: schedule.refit_cron decides when "
                "the cluster model is refitted, for Airflow and the command line alike "
                "(docs/airflow.md); delete the setting"
            )
        return data


class LifecycleConfig(_Section):
    """Stage rules and the risk model; pipeline.example.toml and docs/lifecycle.md give
    the reasoning. No default is a number of days: horizons and waits are learned from
    the shop's own rhythm, so the same defaults serve weekly and twice-a-year buyers."""

    # The risk is the probability of no purchase within the horizon: this many days, or
    # 0 to learn it: horizon_gap_multiple times the shop's median gap between purchase
    # days (censoring-aware), in whole weeks.
    horizon_days: int = Field(default=0, ge=0, le=366)
    horizon_gap_multiple: float = Field(default=1.0, gt=0, le=20)
    # Danger: the risk at which customers reaching it did not buy within the horizon
    # with this precision on the newest backtest cut-off ...
    danger_target_precision: float = Field(default=0.7, gt=0, lt=1)
    # ... and termination: the same at this precision (danger was not repaired).
    termination_target_precision: float = Field(default=0.9, gt=0, lt=1)
    # Hysteresis: a customer in danger leaves it without buying only when the risk falls
    # this far below the danger threshold (no flickering as the risk wobbles).
    danger_exit_margin: float = Field(default=0.1, ge=0, lt=1)
    # A one-time buyer leaves socialization (into danger) when their silence passes this
    # share of the waits of customers who did come back for a second purchase.
    socialization_percentile: float = Field(default=0.8, gt=0, le=1)
    # Termination (from danger) also needs a silence of this many usual gaps (the
    # customer's expected gap; the shop's median gap for one-time buyers) ...
    termination_min_gaps: float = Field(default=2.0, ge=0, le=100)
    # ... and interruption (from termination) this many, and a silence longer than this
    # share of the customer's gaps (or of returning customers' waits), at the
    # termination risk: the relationship has ended.
    interruption_min_gaps: float = Field(default=4.0, ge=0, le=100)
    interruption_percentile: float = Field(default=0.99, gt=0, le=1)
    # While the lake is too young to backtest, the rhythm percentile stands in for the
    # risk, with these thresholds.
    fallback_danger_percentile: float = Field(default=0.9, gt=0, lt=1)
    fallback_termination_percentile: float = Field(default=0.98, gt=0, le=1)
    # The backtest: up to this many cut-off dates, this many days apart (0: an eighth
    # of the horizon, at least a week), each with at least a horizon of history before.
    backtest_cutoffs: int = Field(default=24, ge=2, le=100)
    backtest_step_days: int = Field(default=0, ge=0, le=366)
    # Customers sampled for the rhythm and the risk model's fit (deterministic).
    sample_size: int = Field(default=200_000, ge=1000)
    # A new risk model (and rhythm) is fitted when the newest is this many days old;
    # 0: only the first.
    refit_every_days: int = Field(default=7, ge=0, le=366)
    # A new MBG/NBD model of P(alive) and expected purchases is fitted when the newest fit
    # (a rejected one too) is this many days old; 0: retried daily until the first usable
    # fit, then never. Its own schedule, apart from the risk model's and the clusters'.
    alive_refit_every_days: int = Field(default=7, ge=0, le=366)
    # The expected gap is the customer's own mean gap shrunk toward the shop's median
    # gap by this many gaps' weight: a one-order customer gets the shop's.
    prior_gaps: float = Field(default=2.0, ge=0)
    # Maturity: at least this many purchase days in the scoring window, spend not rising.
    established_purchase_days: int = Field(default=4, ge=2)
    # The trailing window of the spend and returns signals.
    recent_days: int = Field(default=90, ge=14, le=366)
    # Rising spend keeps an established customer in growth: recent daily spend above
    # this multiple of their scoring-window rate.
    rising_spend_ratio: float = Field(default=1.5, gt=1)
    # A return this soon after the last purchase, nothing bought since, is a grievance:
    # a feature of the risk model and a reason shown on the alert.
    returns_within_days: int = Field(default=14, ge=0, le=366)
    # The first date the lifecycle runs has no day before: customers already in danger
    # then are recorded, but alerted only if this is true (no flood on the first run).
    alert_on_first_run: bool = False
    # Alert only danger entries with at least this value at risk (the trailing 12-month
    # net spend, in the shop's currency); the customer still enters danger. 0: every one.
    alert_min_value_at_risk: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _stages_are_ordered(self) -> LifecycleConfig:
        if self.termination_target_precision < self.danger_target_precision:
            raise ValueError(
                "termination_target_precision must be at least danger_target_precision"
            )
        if self.interruption_min_gaps < self.termination_min_gaps:
            raise ValueError("interruption_min_gaps must be at least termination_min_gaps")
        if self.fallback_termination_percentile < self.fallback_danger_percentile:
            raise ValueError(
                "fallback_termination_percentile must be at least fallback_danger_percentile"
            )
        return self


class AlertsConfig(_Section):
    """Where danger alerts go besides the danger_alerts table and the daily file."""

    # POST each alert as JSON here (http or https); empty: no webhook.
    webhook_url: str = ""
    # The key signing each webhook request (Standard Webhooks: whsec_ and the key in
    # base64, or any other string, used as its UTF-8 bytes); set it through
    # RFM_ALERTS__WEBHOOK_SECRET.
    webhook_secret: SecretStr = SecretStr("")
    # A webhook without a secret is refused (its alerts name customers): true posts them
    # unsigned anyway, e.g. to a receiver inside the same network that cannot verify.
    allow_unsigned_webhook: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Email each day's alerts through this SMTP server: smtp://user:password@host:port
    # (smtps:// for TLS, ?starttls=true to upgrade); empty: no email.
    smtp_url: SecretStr = SecretStr("")
    email_from: str = "rfm-pipeline@localhost"
    email_to: list[str] = []
    # Attempts per alert and run; the wait doubles from backoff_seconds up to
    # backoff_max_seconds. What is still undelivered stays queued for the next run.
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_seconds: float = Field(default=1.0, ge=0, le=600)
    backoff_max_seconds: float = Field(default=30.0, ge=0, le=3600)
    # An alert still undelivered this many days after its date is given up (reported).
    give_up_after_days: int = Field(default=14, ge=1, le=366)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _email_needs_recipients(self) -> AlertsConfig:
        if self.smtp_url.get_secret_value() and not self.email_to:
            raise ValueError("smtp_url is set but email_to is empty")
        return self


class PublishConfig(_Section):
    """What BI tools get: Parquet snapshots, the serving DuckDB file, PostgreSQL."""

    # BI tables carry customer_key, an HMAC-SHA256 of the customer id under key_secret,
    # instead of the id. false publishes the shop's ids as the key.
    pseudonymize: bool = True
    # The pseudonym's secret; set it through RFM_PUBLISH__KEY_SECRET. Changing it changes
    # every customer_key (BI history then no longer joins across the change).
    key_secret: SecretStr = SecretStr("")
    # A snapshot table (one row per customer) whose row count changes by more than this
    # share against the previous publish is not published (contracts may override).
    max_row_change: float = Field(default=0.25, gt=0)
    # ... unless it moves by at most this many rows: a young shop's tables may double.
    row_change_slack_rows: int = Field(default=1000, ge=0)
    # Parquet files of the last this many publishes are kept for readers still holding
    # an older serving file open; older ones are deleted.
    keep_versions: int = Field(default=3, ge=2, le=100)
    # The serving DuckDB file BI tools open (read-only), inside paths.published.
    serving_file: str = "serving.duckdb"
    # The oldest DuckDB release that must open the serving file (BI tools often bundle
    # an older DuckDB than the pipeline's): its storage format is written to this version.
    serving_storage_version: str = Field(default="v1.0.0", pattern=r"^v\d+\.\d+\.\d+$")
    # The PostgreSQL target: postgresql://user:password@host:port/database; empty: none.
    # Set it through RFM_PUBLISH__POSTGRES_URL; the user needs CREATE on the database
    # and CREATEROLE (it creates the reader role).
    postgres_url: SecretStr = SecretStr("")
    # Schemas: BI views (stable names), the versioned data behind them.
    postgres_schema: str = "rfm"
    postgres_data_schema: str = "rfm_data"
    # The role BI logins are members of: it may read postgres_schema and nothing else.
    postgres_reader_role: str = "rfm_reader"
    # How long dropping an old version may wait for a BI query still reading it (then
    # it is left for the next publish); the publish itself never waits on readers.
    postgres_cleanup_lock_timeout_ms: int = Field(default=1000, ge=1, le=600_000)
    # Versions PostgreSQL lacks (all of them on a first publish of a long history) are
    # loaded with one COPY per batch of about this many rows, with a progress line each.
    postgres_copy_batch_rows: int = Field(default=500_000, ge=1)

    @field_validator("postgres_schema", "postgres_data_schema", "postgres_reader_role")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if (
            not value
            or not value.isascii()
            or not value.replace("_", "a").isalnum()
            or not value[0].isalpha()
            or value != value.lower()
            or len(value) > 63
        ):
            raise ValueError(f"{value!r} must be a lower-case identifier (a-z, 0-9, _)")
        return value

    @field_validator("serving_file")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if Path(value).name != value or not value.endswith(".duckdb") or value.startswith("."):
            raise ValueError("must be a file name ending in .duckdb, without folders")
        return value

    @field_validator("postgres_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _schemas_differ(self) -> PublishConfig:
        if self.postgres_schema == self.postgres_data_schema:
            raise ValueError("postgres_schema and postgres_data_schema must differ")
        return self


class DuckDBConfig(_Section):
    """Resources DuckDB may use; it spills to paths.state beyond the memory limit."""

    memory_limit: str = "1GB"
    threads: int = Field(default=0, ge=0, le=256, description="0 means one per core")
    backfill_overlap: bool = Field(
        default=True,
        description=(
            "a backfill runs the next date's ingest and score and the date before's "
            "publish beside each date's lifecycle: up to four DuckDB databases at once, "
            "each within memory_limit; false runs one step at a time (same results)"
        ),
    )


class ScheduleConfig(_Section):
    """When Airflow runs the pipeline (dags/): read when the DAG files are parsed."""

    # The daily run, a cron expression in source.timezone: 06:00, once the night's
    # exports have usually landed.
    daily_cron: str = "0 6 * * *"
    # The one refit schedule of the cluster model: a run whose day (the business date
    # plus export_lag_days, in source.timezone) this cron fires on refits the clusters
    # before scoring, in rfm_daily and in the command line's run, backfill and score
    # alike (pipeline.steps.refit_due). Only the
    # day counts. Thursdays' runs, so business dates on Wednesdays: weekly, and the same
    # dates as the model-age rule it replaced gave the demo and the CDNOW harness (both
    # start on a Wednesday), so their outputs did not change.
    refit_cron: str = "0 8 * * 4"
    # The first logical date the DAGs know; backfills may start here.
    start_date: date = date(2025, 1, 1)
    # Whether the scheduler runs missed dates by itself (use `airflow backfill create`).
    catchup: bool = False
    # A run processes the exports of its logical date's day minus this many days: the
    # 06:00 run of 2026-11-23 processes the exports of 2026-11-22.
    export_lag_days: int = Field(default=1, ge=0, le=31)
    # The day's exports are late this many hours after the start of the run's day
    # (source.timezone): the wait fails then and operators are told.
    export_deadline_hours: float = Field(default=12.0, ge=0, le=24 * 14)
    # How often the wait looks for the exports (the worker slot is free in between).
    export_poke_seconds: int = Field(default=300, ge=1, le=86_400)
    # Retries of a failed task, and the pause before each.
    retries: int = Field(default=2, ge=0, le=20)
    retry_delay_minutes: float = Field(default=5.0, ge=0, le=24 * 60)

    @field_validator("daily_cron", "refit_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression")
        return value


class ReportConfig(_Section):
    """The daily report (paths.published/reports): what it shows, how far back."""

    # Days of history in the time charts (stages, danger entries, ingest).
    history_days: int = Field(default=365, ge=7, le=3660)
    # Weeks of the segment and cluster trends; changes are measured over them too.
    trend_weeks: int = Field(default=12, ge=1, le=104)
    # Days of stage moves summed in the transition matrix.
    flow_days: int = Field(default=28, ge=1, le=366)
    # The day's danger alerts listed, the most value at risk first.
    top_alerts: int = Field(default=20, ge=0, le=500)
    # Show the alerted customers' ids (the report sits beside the pseudonymous BI tables:
    # by default it names the alert's priority, which is its row in the day's alerts file).
    show_customer_ids: bool = False


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    paths: PathsConfig = PathsConfig()
    source: SourceConfig = SourceConfig()
    ingest: IngestConfig = IngestConfig()
    scoring: ScoringConfig = ScoringConfig()
    clusters: ClustersConfig = ClustersConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    alerts: AlertsConfig = AlertsConfig()
    publish: PublishConfig = PublishConfig()
    duckdb: DuckDBConfig = DuckDBConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _window_outlasts_late_lines(self) -> Settings:
        # Late lines must land inside the window, or incremental scoring would miss them.
        if self.scoring.window_days <= late_span_days(self.ingest) + 1:
            raise ValueError("scoring.window_days must exceed ingest.late_tolerance_hours")
        if self.lifecycle.recent_days > self.scoring.window_days:
            raise ValueError("lifecycle.recent_days must not exceed scoring.window_days")
        return self


def late_span_days(ingest: IngestConfig) -> int:
    """How many days before its export date a line's local order date can be."""
    return -(-ingest.late_tolerance_hours // 24)


def config_source(config_file: Path | None = None) -> str:
    """Where load_settings reads from: the file's path, or "defaults" (and RFM_* variables)."""
    from_env = os.environ.get(CONFIG_ENV_VAR)
    chosen = config_file or (Path(from_env) if from_env else Path(DEFAULT_CONFIG_FILE))
    return str(chosen.resolve()) if chosen.is_file() else "defaults and RFM_* variables"


def load_settings(config_file: Path | None = None) -> Settings:
    """Read the configuration now (never at import time).

    Raises:
        ConfigError: the file is missing or invalid; the message names the key.
    """
    from_env = os.environ.get(CONFIG_ENV_VAR)
    explicit = config_file or (Path(from_env) if from_env else None)
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"config file not found: {explicit}")
    toml_file = explicit or Path(DEFAULT_CONFIG_FILE)
    source_name = str(toml_file) if toml_file.is_file() else "defaults"

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file))

    try:
        loaded = _FromFile()
    except ValidationError as error:
        raise ConfigError(f"invalid configuration ({source_name}): {_describe(error)}") from None
    except ValueError as error:  # malformed TOML
        raise ConfigError(f"invalid configuration ({source_name}): {error}") from None
    base = toml_file.parent.resolve() if toml_file.is_file() else Path.cwd()
    sections = {name: getattr(loaded, name) for name in Settings.model_fields}
    return Settings.model_construct(**(sections | {"paths": loaded.paths.resolved_against(base)}))


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        message = item["msg"].removeprefix("Value error, ")
        env_name = ENV_PREFIX + "__".join(str(part) for part in item["loc"]).upper()
        where = f" (from ${env_name})" if env_name in os.environ else ""
        problems.append(f"{key}{where}: {message}")
    return "; ".join(problems)
