"""Configuration: a TOML file, overridden by FLOWBOT_<SECTION>__<KEY> variables; secrets from the
environment (or a secrets directory) only.

Precedence, highest first: init arguments, environment, secrets directory, TOML file, defaults.
Any mistake raises :class:`ConfigError`, whose message names the file and the key, so the CLI
can exit with status 2 before a single request is made.
"""

from __future__ import annotations

import os
import re
from datetime import time
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
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

from bot.api.models import ZERO_DTE_METRICS
from bot.deliver import DESTINATIONS
from bot.deliver.base import DestinationConfig
from bot.routes import RootRoute, RouteConfig
from bot.rules import RULES, RuleConfig
from bot.silences import StandingSilence

__all__ = [
    "PLAN_QUOTAS",
    "ConfigError",
    "Secrets",
    "Settings",
    "isolated_secrets",
    "isolated_settings",
    "load_settings",
]

PLAN_QUOTAS: dict[str, int | None] = {"free": 5, "basic": 250, "growth": 2500, "alpha": None}
"""Daily request quota per FlashAlpha plan (``None`` = unlimited); resets 00:00 UTC."""

PLAN_ORDER = ("free", "basic", "growth", "alpha")
C = TypeVar("C", bound=RuleConfig)


class ConfigError(ValueError):
    """A configuration mistake. ``str()`` names the file and the key; it never holds a secret."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FlashAlphaSettings(_Section):
    """``[flashalpha]``: where the API is and what the plan allows."""

    base_url: str = "https://lab.flashalpha.com"
    plan: Literal["free", "basic", "growth", "alpha"] = "growth"
    timeout_seconds: float = Field(10.0, gt=0)
    max_concurrency: int = Field(64, ge=1, le=256)
    max_requests_per_second: float | None = Field(None, gt=0)
    retries: int = Field(2, ge=0, le=10)
    stale_after_seconds: int = Field(300, ge=0)
    failing_after_polls: int = Field(3, ge=1)

    @field_validator("plan", mode="before")
    @classmethod
    def _plan_lower(cls, value: Any) -> Any:
        # The API spells plans "Growth", users write "growth": compare case-insensitively.
        return value.lower() if isinstance(value, str) else value


class WatchlistSettings(_Section):
    """``[watchlist]``: the underlyings polled every cycle (trimmed, upper-cased, unique).

    ``auto_from``: leaderboards (``options:buyers``, ``options:sellers``, ``zero_dte:<metric>``)
    whose entering symbols join the session's watchlist until the close, at most ``auto_max``
    (0..100, default 10) of them (:mod:`bot.autowatch`); default none.
    """

    symbols: list[str] = Field(default_factory=lambda: ["SPY", "QQQ"])
    expiry: str | None = None
    auto_from: list[str] = Field(default_factory=list)
    auto_max: int = Field(10, ge=0, le=100)

    @field_validator("auto_from")
    @classmethod
    def _known_boards(cls, value: list[str]) -> list[str]:
        known = ("options:buyers", "options:sellers", *(f"zero_dte:{m}" for m in ZERO_DTE_METRICS))
        for board in value:
            if board not in known:
                raise ValueError(f"unknown board {board!r}; known boards: {', '.join(known)}")
        return list(dict.fromkeys(value))

    @field_validator("symbols")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for raw in value:
            symbol = raw.strip().upper()
            if not symbol:
                raise ValueError("empty symbol")
            seen.setdefault(symbol, None)
        return list(seen)


class ScheduleSettings(_Section):
    """``[schedule]``: cadence and the timezone every trigger is given.

    ``poll_seconds`` / ``leaderboard_seconds``: ``"auto"`` polls just after each refresh of the
    server's cache (15 s symbols, 30 s boards), learnt from the responses, spaced by the plan's
    quota (:mod:`bot.cadence`); a number of seconds polls at that fixed interval, even below
    the cache period (with one warning)."""

    timezone: str = "America/New_York"
    poll_seconds: Literal["auto"] | PositiveFloat = "auto"
    leaderboard_seconds: Literal["auto"] | PositiveFloat = "auto"

    @field_validator("poll_seconds", "leaderboard_seconds", mode="before")
    @classmethod
    def _auto_or_seconds(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union.
        if value == "auto":
            return value
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f'"auto" or a number of seconds, not {value!r}') from None
        if not seconds > 0:
            raise ValueError("must be more than 0 seconds")
        return seconds

    market_hours_only: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class SlackSettings(_Section):
    """``[slack]``: the Web API base and channel. Token / webhook come from the environment."""

    api_url: str = "https://slack.com/api/"
    channel: str = "#flow-alerts"
    max_posts_per_second: float = Field(1.0, gt=0)


class ConsoleSettings(_Section):
    """``[console]``: the sink used when no Slack credentials are set."""

    jsonl_path: Path = Path("outbox/messages.jsonl")


class StateSettings(_Section):
    """``[state]``: the database with snapshots, the alert log and the outbox.

    ``path`` is a SQLite file (one host; the default). ``url`` replaces it:
    ``sqlite:///path`` or ``postgresql://user@host:5432/db`` (several replicas share it; the
    password comes from ``PGPASSWORD`` or the ``pgpassword`` secret, never from the URL).
    ``claim_seconds`` is how long a replica's claim on an outbox row lasts before another may
    deliver it (a replica that died mid-send)."""

    path: Path = Path("flowbot.sqlite3")
    url: str = ""
    keep_days: int = Field(30, ge=1)
    claim_seconds: float = Field(30.0, ge=1, le=600)

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme.split("+", 1)[0] not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        netloc = value.split("://", 1)[1].split("/", 1)[0]
        query = value.split("?", 1)[1] if "?" in value else ""
        in_query = any(p.split("=", 1)[0].lower() == "password" for p in query.split("&"))
        if in_query or (":" in netloc.rsplit("@", 1)[0] and "@" in netloc):
            raise ValueError(
                "holds a password: give it in the PGPASSWORD environment variable instead"
            )
        return value.replace("postgres://", "postgresql://", 1)

    def target(self) -> Path | str:
        """What :class:`bot.store.Store` opens: ``url`` when set, else ``path``."""
        return self.url or self.path


class TemplatesSettings(_Section):
    """``[templates]``: a directory whose files override the packaged templates by name."""

    dir: Path | None = None


class RecapSettings(_Section):
    """``[recap]``: the Slack post after the close (close + ``delay_minutes``, New York)."""

    enabled: bool = True
    delay_minutes: int = Field(5, ge=0, le=600)
    chart: bool = True


class DigestSettings(_Section):
    """``[digest]``: the email digest, sent at ``at`` (New York time) on trading days, or weekly
    on ``weekly_on`` (``mon`` … ``fri``) when set."""

    enabled: bool = True
    at: time = time(16, 30)
    weekly_on: Literal["", "mon", "tue", "wed", "thu", "fri"] = ""


class EmailSettings(_Section):
    """``[email]``: SMTP. No ``host`` → the digest is written into ``outbox_dir`` as files.
    The password comes from ``SMTP_PASSWORD``."""

    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    sender: str = "flowbot@localhost"
    recipients: list[str] = Field(default_factory=list)
    outbox_dir: Path = Path("outbox")


class OutboxSettings(_Section):
    """``[outbox]``: how long a queued alert may wait. Older than ``alert_max_age_minutes``
    it is still delivered, marked "delayed: detected 10:32 ET"; after
    ``expire_after_minutes`` (default: the session's close) it is not delivered and is
    recorded as expired. ``max_backoff_seconds`` caps the wait between two tries of a
    destination that keeps failing (a Retry-After it sends is honoured in full)."""

    alert_max_age_minutes: float = Field(15.0, gt=0)
    expire_after_minutes: float | None = Field(None, gt=0)
    max_backoff_seconds: float = Field(60.0, gt=0)


def split_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` → ``(host, port)``. Raises ``ValueError`` naming
    the text when it is not ``host:port`` with a port 0-65535 (0: any free port, for tests)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f'{text!r} is not host:port (e.g. "127.0.0.1:9464")')
    return host, int(port)


class HttpSettings(_Section):
    """``[http]``: where ``/healthz``, ``/readyz``, ``/metrics`` and the status page listen
    (``host:port``); an empty string turns the listener off. Nothing there is secret, but
    keep it on 127.0.0.1 (or a private network) unless a proxy guards it."""

    listen: str = "127.0.0.1:9464"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value.strip() and split_listen(value)[1] == 0:
            raise ValueError(f"{value!r}: the port must be 1-65535")
        return value.strip()


class Secrets(BaseSettings):
    """Secrets, read only from the environment or ``secrets_dir`` files, never from TOML.

    ``FLASHALPHA_API_KEY``, ``SLACK_BOT_TOKEN``, ``SLACK_WEBHOOK_URL``, ``SMTP_PASSWORD``,
    ``PGPASSWORD`` (the PostgreSQL state database's, ``[state] url``).
    Held as :class:`SecretStr` so a repr or a log line shows ``**********``.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)
    read_environment: ClassVar[bool] = True

    flashalpha_api_key: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    smtp_password: SecretStr | None = None
    pgpassword: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if not cls.read_environment:
            return (init_settings,)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    def values(self) -> list[str]:
        """Every secret that is set, as plain text: for scrubbing messages, never for logs."""
        out = []
        for secret in (
            self.flashalpha_api_key,
            self.slack_bot_token,
            self.slack_webhook_url,
            self.smtp_password,
            self.pgpassword,
        ):
            if secret is not None and secret.get_secret_value():
                out.append(secret.get_secret_value())
        return out


class Settings(BaseSettings):
    """The whole configuration. Sections mirror ``config.example.toml``.

    ``rules`` maps a rule name from :data:`bot.rules.RULES` to its validated config model;
    every known rule is present (with defaults) even when the file does not mention it.
    """

    model_config = SettingsConfigDict(
        env_prefix="FLOWBOT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )
    toml_path: ClassVar[Path | None] = None
    read_environment: ClassVar[bool] = True

    flashalpha: FlashAlphaSettings = FlashAlphaSettings()
    watchlist: WatchlistSettings = WatchlistSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    slack: SlackSettings = SlackSettings()
    console: ConsoleSettings = ConsoleSettings()
    state: StateSettings = StateSettings()
    templates: TemplatesSettings = TemplatesSettings()
    recap: RecapSettings = RecapSettings()
    digest: DigestSettings = DigestSettings()
    email: EmailSettings = EmailSettings()
    outbox: OutboxSettings = OutboxSettings()
    http: HttpSettings = HttpSettings()
    destinations: list[Any] = Field(default_factory=list)
    route: RootRoute = RootRoute()
    routes: list[RouteConfig] = Field(default_factory=list)
    silences: list[StandingSilence] = Field(default_factory=list)
    rules: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        if cls.read_environment:
            sources.append(env_settings)
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    @model_validator(mode="after")
    def _validate_rules(self) -> Settings:
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown:
            raise _KeyedError(
                f"rules.{unknown[0]}", f"unknown rule; known rules: {', '.join(sorted(RULES))}"
            )
        parsed: dict[str, RuleConfig] = {}
        for name, rule in RULES.items():
            raw = self.rules.get(name, {})
            if isinstance(raw, RuleConfig):
                parsed[name] = raw
                continue
            try:
                parsed[name] = rule.config_model.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in ("rules", name, *first["loc"]))
                raise _KeyedError(key, _describe(first)) from None
        # Frozen model: write through object.__setattr__ once, during validation.
        object.__setattr__(self, "rules", parsed)
        object.__setattr__(self, "destinations", _parse_destinations(self.destinations))
        return self

    @property
    def timezone(self) -> ZoneInfo:
        """The configured zone (default America/New_York) as a ZoneInfo."""
        return ZoneInfo(self.schedule.timezone)

    def rule_config(self, name: str, model: type[C] = RuleConfig) -> C:  # type: ignore[assignment]
        """The validated config of rule ``name``, checked to be a ``model`` (the rule's own
        config class, e.g. ``TopNConfig``, for typed access). Raises ``KeyError`` for an
        unknown rule and ``TypeError`` when the config is not a ``model``."""
        config = self.rules[name]
        if not isinstance(config, model):
            raise TypeError(
                f"rule {name!r} config is {type(config).__name__}, not {model.__name__}"
            )
        return config


def _parse_destinations(raw: list[Any]) -> list[DestinationConfig]:
    """Validate each ``[[destinations]]`` table by its ``kind``; names must be unique."""
    parsed: list[DestinationConfig] = []
    for i, entry in enumerate(raw):
        if isinstance(entry, DestinationConfig):
            parsed.append(entry)
            continue
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind not in DESTINATIONS:
            raise _KeyedError(
                f"destinations[{i}].kind",
                f"unknown destination kind {kind!r}; known kinds: {', '.join(DESTINATIONS)}",
            )
        try:
            parsed.append(DESTINATIONS[kind].config_model.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in (f"destinations[{i}]", *first["loc"]))
            raise _KeyedError(key, _describe(first)) from None
    names = [d.name for d in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _KeyedError(f"destinations[{i}].name", f"duplicate destination name {name!r}")
    return parsed


class _KeyedError(ValueError):
    """A validation failure that knows its dotted key (``rules.top_n.zero_dte_metrics``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"[{key}]: {message}")
        self.key = key
        self.message = message


def _describe(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    return str(err["msg"]).removeprefix("Value error, ")


_ENV_FIELD = re.compile(r'field "(\w+)"')


def _env_variable(loc: tuple[str, ...]) -> str | None:
    """The ``FLOWBOT_*`` variable that set the value at ``loc`` (``("schedule",
    "poll_seconds")`` → ``FLOWBOT_SCHEDULE__POLL_SECONDS``, or ``FLOWBOT_SCHEDULE`` holding a
    JSON table), as spelled in the environment; ``None`` when the value came from elsewhere."""
    spelled = {name.upper(): name for name in os.environ}
    for depth in range(len(loc), 0, -1):
        name = "FLOWBOT_" + "__".join(loc[:depth]).upper()
        if name in spelled:
            return spelled[name]
    return None


def _format_error(exc: ValidationError, source: str, *, environment: bool = True) -> str:
    """One line naming where the first bad value came from (the ``FLOWBOT_*`` variable when
    ``environment`` was read and one set it, else ``source``, e.g. the file) and its
    ``[dotted.key]``; never the value itself (it may be a secret)."""
    err = exc.errors()[0]
    ctx_error = err.get("ctx", {}).get("error")
    if isinstance(ctx_error, _KeyedError):
        loc = tuple(ctx_error.key.split("."))
        where, msg, more = f"[{ctx_error.key}]", ctx_error.message, ""
    else:
        loc = tuple(str(p) for p in err["loc"])
        where = f"[{'.'.join(loc)}]" if loc else "(top level)"
        msg = _describe(err)
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    variable = _env_variable(loc) if loc and environment else None
    if variable is not None:
        source = variable
    return f"{source}: {where}: {msg}{more}"


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load the config at ``path`` (or ``$FLOWBOT_CONFIG``; none → defaults plus environment).

    Raises :class:`ConfigError` naming the file and the first bad key: unknown key, wrong
    type, unknown rule, unknown plan, bad timezone, unreadable or invalid TOML.
    """
    if path is None and os.environ.get("FLOWBOT_CONFIG"):
        path = os.environ["FLOWBOT_CONFIG"]
    toml_path = Path(path) if path is not None else None
    source = str(toml_path) if toml_path else "environment"
    if toml_path is not None:
        if not toml_path.is_file():
            raise ConfigError(f"{toml_path}: config file not found")
        import tomllib

        try:
            with toml_path.open("rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_path}: not valid TOML: {exc}") from None

    # A subclass per call keeps the path off the shared class: no process-global config.
    cls: type[Settings] = type(
        "Settings", (Settings,), {"toml_path": toml_path, "__module__": __name__}
    )
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None
    except ValueError as exc:
        # pydantic-settings raises a bare ValueError for an env value that is not JSON
        # (FLOWBOT_WATCHLIST__SYMBOLS=SPY); name the variables, never their values.
        field = _ENV_FIELD.search(str(exc))
        prefix = f"FLOWBOT_{field.group(1)}".upper() if field else "FLOWBOT_"
        names = sorted(
            k for k in os.environ if k.upper().startswith(prefix) and k != "FLOWBOT_CONFIG"
        )
        raise ConfigError(
            f"{', '.join(names) or 'environment'}: not valid JSON; "
            'lists and tables set by a variable must be JSON, e.g. \'["SPY", "QQQ"]\''
        ) from None


def isolated_settings(**values: Any) -> Settings:
    """Settings from ``values`` and the defaults only: no TOML file, no ``FLOWBOT_*`` variable
    (``FLOWBOT_CONFIG`` included). For ``flowbot demo`` and tests, which must behave the same
    whatever the shell exported. Raises :class:`ConfigError` naming the key of a bad value."""
    cls: type[Settings] = type(
        "Settings",
        (Settings,),
        {"toml_path": None, "read_environment": False, "__module__": __name__},
    )
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, "demo settings", environment=False)) from None


def isolated_secrets(**values: str) -> Secrets:
    """Secrets from ``values`` only (e.g. the sandbox's key): the environment and
    ``/run/secrets`` are not read, so no live token, webhook or password can leak in."""
    cls: type[Secrets] = type(
        "Secrets", (Secrets,), {"read_environment": False, "__module__": __name__}
    )
    return cls(**dict[str, Any](values))


def load_secrets(secrets_dir: Path | None = None) -> Secrets:
    """Read secrets from the environment and, when given and present, ``secrets_dir`` files."""
    if secrets_dir is not None and secrets_dir.is_dir():
        return Secrets(_secrets_dir=secrets_dir)
    return Secrets()


def plan_allows(plan: str, required: str) -> bool:
    """True when ``plan`` is at or above ``required`` (names compared case-insensitively)."""
    try:
        return PLAN_ORDER.index(plan.lower()) >= PLAN_ORDER.index(required.lower())
    except ValueError:
        return False
