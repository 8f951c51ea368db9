"""`lpm.yaml`: the schema of a portfolio's configuration and how it is loaded.

Validation is strict (unknown keys are errors) and every problem is reported at once as
`path: message`, so a user fixes a config in one pass and no tracker is called before it is valid.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mapping.model import CATEGORY_NAMES, LEVEL_NAMES, STATUS_CATEGORY_NAMES, Category, Level
from mapping.model import StatusCategory as StatusCategoryValue
from mapping.secrets import EnvSecret, SecretRef, SecretUnavailable

DEFAULT_WAREHOUSE_URL = "sqlite:///lpm.db"
WAREHOUSE_URL_ENV = "LPM_WAREHOUSE_URL"


def _choice(names: tuple[str, ...], what: str) -> Any:
    def check(value: Any) -> Any:
        if value not in names:
            raise PydanticCustomError(
                "unknown_choice",
                "unknown {what} {value} (expected one of {names})",
                {"what": what, "value": repr(value), "names": ", ".join(names)},
            )
        return value

    return BeforeValidator(check)


LevelName = Annotated[Level, _choice(LEVEL_NAMES, "level")]
StatusCategoryName = Annotated[
    StatusCategoryValue, _choice(STATUS_CATEGORY_NAMES, "status category")
]
CategoryName = Annotated[Category, _choice(CATEGORY_NAMES, "investment category")]
SourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(Strict):
    url: str | EnvSecret = DEFAULT_WAREHOUSE_URL
    """SQLAlchemy URL; a URL holding a password belongs in `{env: NAME}`."""


class Increment(Strict):
    name: str
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Increment:
        if self.end < self.start:
            raise ValueError(
                f"increment {self.name!r} ends ({self.end}) before it starts ({self.start})"
            )
        return self


class Guardrails(Strict):
    business: float = Field(0.6, ge=0, le=1)
    enabler: float = Field(0.25, ge=0, le=1)
    maintenance: float = Field(0.15, ge=0, le=1)
    tolerance: float = Field(0.05, ge=0, le=1)
    """A category's actual share may differ from its target by this much before it is a breach."""

    @model_validator(mode="after")
    def _at_most_whole(self) -> Guardrails:
        total = self.business + self.enabler + self.maintenance
        if total > 1.0001:
            raise ValueError(f"guardrail shares add up to {total:.2f}; they must not exceed 1.0")
        return self


class HealthThresholds(Strict):
    """How far progress may trail the elapsed share of an item's time window."""

    at_risk: float = Field(0.10, ge=0, le=1)
    off_track: float = Field(0.25, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> HealthThresholds:
        if self.off_track < self.at_risk:
            raise ValueError(
                f"off_track ({self.off_track}) must not be below at_risk ({self.at_risk})"
            )
        return self


class WsjfOptions(Strict):
    job_size_fallback: bool = False
    """Without a job size, divide by the summed estimate of the item's descendants."""


class FlowOptions(Strict):
    """Status names whose time counts as active work or as waiting, for flow efficiency."""

    active_statuses: list[str] = Field(default_factory=lambda: ["In Progress", "Active"])
    waiting_statuses: list[str] = Field(default_factory=lambda: ["Blocked", "On Hold"])

    @model_validator(mode="after")
    def _disjoint(self) -> FlowOptions:
        both = sorted(set(self.active_statuses) & set(self.waiting_statuses))
        if both:
            raise ValueError(f"statuses both active and waiting: {', '.join(both)}")
        return self


class ForecastOptions(Strict):
    simulations: int = Field(1000, ge=100, le=100_000)
    seed: int = 42
    history_weeks: int = Field(12, ge=1, le=104)
    """Weeks of past throughput the Monte Carlo simulation samples from."""


class PortfolioConfig(Strict):
    name: str
    increments: list[Increment] = Field(default_factory=list)
    guardrails: Guardrails = Guardrails()
    health: HealthThresholds = HealthThresholds()
    wsjf: WsjfOptions = WsjfOptions()
    flow: FlowOptions = FlowOptions()
    forecast: ForecastOptions = ForecastOptions()

    @field_validator("increments")
    @classmethod
    def _unique_increments(cls, value: list[Increment]) -> list[Increment]:
        names = [increment.name for increment in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"increment names must be unique: {', '.join(repeated)}")
        return value


class JiraFields(Strict):
    """LPM attribute -> Jira field name or id (`customfield_10016`)."""

    estimate: str | None = None
    business_value: str | None = None
    time_criticality: str | None = None
    risk_reduction: str | None = None
    job_size: str | None = None
    planned_value: str | None = None
    actual_value: str | None = None
    team: str | None = None
    art: str | None = None
    increment: str | None = None
    category: str | None = None
    portfolio_state: str | None = None
    flagged: str | None = None
    start_date: str | None = None
    target_date: str | None = None
    rank: str | None = None
    epic_link: str | None = None
    parent_link: str | None = None
    theme: str | None = None


class AzureDevOpsFields(Strict):
    """LPM attribute -> Azure DevOps field reference name."""

    estimate: str | None = None
    business_value: str | None = None
    time_criticality: str | None = None
    risk_reduction: str | None = None
    job_size: str | None = None
    planned_value: str | None = None
    actual_value: str | None = None
    team: str | None = None
    art: str | None = None
    increment: str | None = None
    category: str | None = None
    portfolio_state: str | None = None
    flagged: str | None = None
    start_date: str | None = None
    target_date: str | None = None
    rank: str | None = None
    theme: str | None = None


HealthName = Literal["on-track", "at-risk", "off-track", "blocked"]


def _default_health_values() -> dict[HealthName, str]:
    return {"blocked": "off-track"}


class Writeback(Strict):
    """The only fields lpm-sync may ever write; everything else in the tracker is read-only."""

    wsjf: str | None = None
    health: str | None = None
    progress: str | None = None
    rank: bool = False
    apply: bool = False
    """Whether `lpm run` applies the plan; `lpm writeback --apply` always may."""
    health_values: dict[HealthName, str] = Field(default_factory=_default_health_values)
    """LPM health -> the tracker's option for it. By default `blocked` (a flagged descendant) is
    written as off-track, since health fields hold on-track / at-risk / off-track."""
    bulk_edit: bool = True
    """Jira Cloud: items setting the same number values share one bulk edit (fewer requests;
    needs the global Bulk change permission, single edits when refused). Off: an edit each."""
    first_write: Literal["empty", "overwrite"] = "empty"
    """Into a field lpm-sync never wrote: only when empty (a value found there is a person's:
    `skipped_conflict` unless --force), or over any value (`overwrite`). mapping/writeback.py."""

    @property
    def fields(self) -> dict[str, str]:
        owned = {"wsjf": self.wsjf, "health": self.health, "progress": self.progress}
        return {attr: field for attr, field in owned.items() if field}


class SyncOptions(Strict):
    overlap_minutes: int = Field(10, ge=0, le=1440)
    page_size: int = Field(100, ge=1, le=5000)
    concurrency: int = Field(8, ge=1, le=32)
    """Requests in flight per site; throttling (429, near-limit headers) lowers it for a while."""
    requests_per_second: float | None = Field(None, gt=0)
    timeout_seconds: float = Field(60, gt=0)


class SourceBase(Strict):
    name: SourceName
    url: AnyHttpUrl
    scope: str = Field(min_length=1)
    levels: dict[str, LevelName]
    statuses: dict[str, StatusCategoryName] = Field(default_factory=dict)
    categories: dict[str, CategoryName] = Field(default_factory=dict)
    """Item type, label or category-field value -> investment category (none when none match)."""
    objective_types: list[str] = Field(default_factory=list)
    """Item types holding PI objectives (stored in `objective`, outside the tree)."""
    writeback: Writeback = Writeback()
    sync: SyncOptions = SyncOptions()
    verify_tls: bool = True

    @field_validator("levels")
    @classmethod
    def _some_levels(cls, value: dict[str, Level]) -> dict[str, Level]:
        if not value:
            raise ValueError("map at least one item type to a level")
        return value

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/")


class JiraAuth(Strict):
    """Cloud: email + API token (basic). Data Center: a personal access token alone (bearer)."""

    email: SecretRef | None = None
    token: SecretRef


class JiraSource(SourceBase):
    kind: Literal["jira"]
    auth: JiraAuth
    fields: JiraFields = JiraFields()


class AzureDevOpsAuth(Strict):
    token: SecretRef


class AzureDevOpsSource(SourceBase):
    kind: Literal["azure_devops"]
    project: str = Field(min_length=1)
    auth: AzureDevOpsAuth
    fields: AzureDevOpsFields = AzureDevOpsFields()
    history: bool = True
    """Read each changed item's updates (one call per item) for its status history. Off, a
    first load of a very large project needs only WIQL and batch calls; the loader still
    records the changes it sees between syncs."""


SourceConfig = Annotated[JiraSource | AzureDevOpsSource, Field(discriminator="kind")]
SOURCE_KINDS = ("jira", "azure_devops")


class LpmConfig(Strict):
    warehouse: WarehouseConfig = WarehouseConfig()
    portfolio: PortfolioConfig
    sources: list[SourceConfig] = Field(default_factory=list)

    def source(self, name: str) -> JiraSource | AzureDevOpsSource:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError([f"sources: no source named {name!r} (known: {known})"])

    def warehouse_url(self) -> str:
        """The URL to connect to: LPM_WAREHOUSE_URL wins over the file."""
        override = os.environ.get(WAREHOUSE_URL_ENV)
        if override:
            return override
        url = self.warehouse.url
        return url if isinstance(url, str) else url.resolve().get_secret_value()


class ConfigError(ValueError):
    """A config that must not be used; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def load_config(path: str | Path, *, require_secrets: bool = False) -> LpmConfig:
    """Read and validate a config file; raise ConfigError listing every problem.

    `require_secrets` also checks that each `{env: NAME}` reference is set, for commands that
    are about to call a tracker.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such config file (use --config or LPM_CONFIG)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8"]
        ) from None
    return parse_config(text, source=str(path), require_secrets=require_secrets)


def parse_config(
    text: str, *, source: str = "lpm.yaml", require_secrets: bool = False
) -> LpmConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping at the top level"])
    problems = _structural_problems(data)
    try:
        config = LpmConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + [_format_error(err) for err in exc.errors()]) from None
    problems += _semantic_problems(config, require_secrets=require_secrets)
    if problems:
        raise ConfigError(problems)
    return config


def _structural_problems(data: dict[str, Any]) -> list[str]:
    sources = data.get("sources")
    if not isinstance(sources, list):
        return []
    seen: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(sources):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(
                f"sources.{index}.name: duplicate source name {name!r} (also sources.{seen[name]})"
            )
        else:
            seen[name] = index
    return problems


def _semantic_problems(config: LpmConfig, *, require_secrets: bool) -> list[str]:
    if not require_secrets:
        return []
    problems = []
    for index, source in enumerate(config.sources):
        for key, ref in source.auth:
            if isinstance(ref, EnvSecret):
                try:
                    ref.resolve()
                except SecretUnavailable as exc:
                    problems.append(f"sources.{index}.auth.{key}: {exc}")
    if isinstance(config.warehouse.url, EnvSecret) and not os.environ.get(WAREHOUSE_URL_ENV):
        try:
            config.warehouse.url.resolve()
        except SecretUnavailable as exc:
            problems.append(f"warehouse.url: {exc}")
    return problems


_UNION_TAGS = {*SOURCE_KINDS, "EnvSecret", "PrefectSecret"}


def _format_error(err: Any) -> str:
    loc = [str(part) for part in err["loc"] if str(part) not in _UNION_TAGS]
    path = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"{path}: required key is missing"
    kinds = ", ".join(SOURCE_KINDS)
    if kind == "union_tag_invalid":
        return f"{path}: unknown source kind {err['input'].get('kind')!r} (expected one of {kinds})"
    if kind == "union_tag_not_found":
        return f"{path}.kind: required key is missing (expected one of {kinds})"
    message = err["msg"]
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    return f"{path}: {message}"
