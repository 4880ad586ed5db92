"""Settings: the embedded defaults, a deployment's TOML file, then the environment.

Everything is validated at start; a bad value is a `ConfigError` that names the key,
e.g. ``acd.ring_timeout_s: Input should be greater than 0``.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from callcenter.acd.settings import AcdPolicy as AcdSettings
from callcenter.acd.settings import QueuePolicy as QueueSettings

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
CONFIG_ENV = "CALLCENTER_CONFIG"


class ConfigError(Exception):
    """The settings are wrong; the message names every bad key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HotlineSettings(Section):
    name: str
    number: str
    timezone: str = "Asia/Shanghai"


class TelephonySettings(Section):
    ring_on_s: float = Field(gt=0)
    ring_off_s: float = Field(ge=0)
    answer_within_rings: int = Field(ge=1, le=10)
    engine_answer_budget_ms: int = Field(gt=0)

    @property
    def ring_cycle_s(self) -> float:
        return self.ring_on_s + self.ring_off_s

    @property
    def answer_within_s(self) -> float:
        """Seconds that "answer within N rings" allows: N whole cadences (cn: 3 x 5 s = 15 s)."""
        return self.answer_within_rings * self.ring_cycle_s


class AmiSettings(Section):
    host: str
    port: int = Field(gt=0, lt=65536)
    username: str = Field(min_length=1)
    secret: SecretStr | None = None
    action_timeout_s: float = Field(gt=0)
    ping_interval_s: float = Field(gt=0)
    ping_timeout_s: float = Field(gt=0)
    reconnect_backoff_initial_s: float = Field(gt=0)
    reconnect_backoff_max_s: float = Field(gt=0)


class AsteriskSettings(Section):
    spool_dir: str
    sip_bind: str = Field(pattern=r"^[0-9.]+:[0-9]{1,5}$")
    # The carrier trunk: calls from this address are hotline calls; follow-up calls and
    # callbacks go out to its contact.
    trunk_match: str
    trunk_contact: str = Field(pattern=r"^sips?:[^\s]+$")
    # Indications: the country whose tones Asterisk plays (ring cadence from [telephony]).
    country: str = "cn"
    # How often Asterisk asks each agent's phone whether it is there (SIP OPTIONS), and how
    # long it waits for the answer: a phone gone without a word is known within the sum.
    # 0 turns the asking off (a registered phone then counts as there until it unregisters).
    qualify_frequency_s: int = Field(default=5, ge=0, le=3600)
    qualify_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # The shortest registration a softphone may ask for (seconds; Asterisk answers a shorter
    # one with 423 Interval Too Brief).
    registration_min_s: int = Field(default=60, ge=1, le=3600)


class PathSettings(Section):
    spool_dir: Path
    asterisk_config_dir: Path

    @property
    def recordings_dir(self) -> Path:
        return self.spool_dir / "recordings"

    @property
    def prompts_dir(self) -> Path:
        return self.spool_dir / "prompts"


class DatabaseSettings(Section):
    url: str = Field(min_length=1)


class RedisSettings(Section):
    url: str = Field(min_length=1)
    prefix: str = Field(min_length=1)


class WebSettings(Section):
    host: str
    port: int = Field(gt=0, lt=65536)
    secret_key: SecretStr | None = None
    # A bearer token with the admin role for the `callcenter` command on this machine.
    cli_token: SecretStr | None = None
    session_ttl_s: int = Field(gt=0)
    # Log-in attempts a minute (see callcenter/web/auth.py for the policy): per address and
    # user name, per address over all names, per name over all addresses.
    login_attempts_per_minute: int = Field(gt=0)
    login_attempts_per_address_per_minute: int = Field(default=50, gt=0)
    login_attempts_per_user_per_minute: int = Field(default=20, gt=0)
    # Live sockets: at most this many per user (the oldest is closed), each re-checks its
    # session or token this often (a log-out on another engine ends it within that time).
    live_sockets_per_user: int = Field(default=4, gt=0)
    live_recheck_s: float = Field(default=30.0, gt=0)


class IvrSettings(Section):
    menu_file: str = ""
    voice: str = "cmn"
    speed_wpm: int = Field(default=150, gt=40, lt=400)


class RecordingSettings(Section):
    enabled: bool = True
    # The key an agent presses during a call to pause recording (sensitive data) and again
    # to resume it; empty turns the keypad control off (the API still works).
    pause_key: str = Field(default="*", pattern=r"^[0-9*#]?$")
    # Retention: recordings, playback copies and transcripts are purged this many days after
    # the call ended; a category (calls.category) may keep its own number of days.
    retention_days: int = Field(default=365, gt=0)
    retention_days_by_category: dict[str, int] = Field(default_factory=dict)
    # How long a signed audio link stays valid.
    link_ttl_s: int = Field(default=900, gt=0, le=86400)

    @field_validator("retention_days_by_category")
    @classmethod
    def _positive_days(cls, days: dict[str, int]) -> dict[str, int]:
        bad = sorted(name for name, n in days.items() if n <= 0)
        if bad:
            raise ValueError(f"days must be greater than 0, not for: {', '.join(bad)}")
        return days


class TranscriptionSettings(Section):
    model_path: str = ""
    stream: str = "transcription"
    group: str = "workers"
    # Decode only each channel's voiced stretches: frames voice_above_floor_db louder than the
    # channel's noise floor, with voice_pad_s kept each side (recording/transcribe.py).
    skip_silence: bool = True
    voice_above_floor_db: float = Field(default=12.0, gt=0, le=40)
    voice_pad_s: float = Field(default=0.3, ge=0, le=2)
    # Transcription workers `callcenter run` starts in its own process (0: none; run
    # `callcenter worker` processes instead, as `callcenter serve` deployments do).
    workers_in_run: int = Field(default=1, ge=0, le=8)


class WorkOrderSettings(Section):
    categories_file: str = ""            # empty: the water hotline's (callcenter/workorders/categories.yaml)
    watch_interval_s: float = Field(default=30.0, gt=0)
    warn_at_fraction: float = Field(default=0.8, gt=0, lt=1)   # warn when this share of the time is used
    escalate_every_min: int = Field(default=30, gt=0)           # one level up per this much overdue
    max_escalation_level: int = Field(default=3, ge=1)         # 1 the unit's manager, 2, 3: upward
    webhooks: list[str] = Field(default_factory=list)
    follow_up_sample_pct: float = Field(default=5.0, gt=0, le=100)
    follow_up_sample_seed: str = "callcenter"


Prefix = Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]


class DialPolicySettings(Section):
    """Which numbers the hotline dials out (callbacks, follow-ups): the rules are in
    callcenter/calls/dial_policy.py (default: mainland China mobile, fixed-line and local)."""

    # Dialled even though a rule refuses them (e.g. "95598", or "00852" for Hong Kong).
    allowed_prefixes: list[Prefix] = Field(default_factory=list)
    # Never dialled, on top of the built-in premium and IP-call prefixes; wins over allowed.
    refused_prefixes: list[Prefix] = Field(default_factory=list)


class SmsSettings(Section):
    """The SMS channel through a Kannel gateway (callcenter/sms, scripts/kannel.sh)."""

    enabled: bool = True
    sender: str = Field(default="96666", pattern=r"^[0-9]{1,20}$")   # the number messages come from
    # Kannel on this machine: bearerbox (admin, smsbox link, the fake carrier's ports), smsbox.
    kannel_host: str = "127.0.0.1"
    admin_port: int = Field(default=13000, gt=0, lt=65536)
    smsbox_port: int = Field(default=13001, gt=0, lt=65536)
    sendsms_port: int = Field(default=13013, gt=0, lt=65536)
    carrier_port: int = Field(default=13010, gt=0, lt=65536)      # fakesmsc receives MT here
    mo_inject_port: int = Field(default=13011, gt=0, lt=65536)    # a second fake SMSC only for MO
    sendsms_username: str = Field(default="callcenter", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    sendsms_password: SecretStr | None = None
    admin_password: SecretStr | None = None
    mo_token: SecretStr | None = None                             # on Kannel's calls of /api/sms/mo
    # Kannel calls the hotline back here (MO and DLR); empty: http://<web.host>:<web.port>.
    callback_url: str = Field(default="", pattern=r"^(https?://[A-Za-z0-9.:\[\]-]+)?$")
    kannel_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])   # only these may call back
    config_dir: Path = Path("var/kannel")
    # A real carrier: a file with Kannel `smsc` groups (SMPP, ...) included instead of the fake one.
    carrier_include: str = ""
    # Quiet hours (local time): customer messages wait; urgent outage notices do not.
    quiet_start: str = Field(default="21:00", pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    quiet_end: str = Field(default="08:00", pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    rate_per_s: float = Field(default=500.0, gt=0)        # per gateway
    burst: int = Field(default=50, ge=1)
    concurrency: int = Field(default=16, ge=1, le=256)
    batch: int = Field(default=200, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0)
    send_timeout_s: float = Field(default=5.0, gt=0)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    # A send that timed out may have been accepted: wait this long for its delivery report
    # before sending it again.
    uncertain_wait_s: float = Field(default=30.0, gt=0)
    lease_s: float = Field(default=60.0, gt=0)            # a claimed message is free again after this
    reply_window_h: float = Field(default=48.0, gt=0)     # follow-up: no reply by then -> automated call
    duty_phones: list[str] = Field(default_factory=list)  # the duty manager's and supervisors' phones
    unit_phones: dict[str, str] = Field(default_factory=dict)   # a field unit's on-duty phone
    # Follow-up policy (回访): per case SMS, the automated call or a person.
    follow_up_none: list[str] = Field(default_factory=lambda: ["inquiry", "praise"])
    follow_up_person: list[str] = Field(default_factory=lambda: ["complaint", "report", "rescue"])
    follow_up_call: list[str] = Field(default_factory=list)
    follow_up_person_when: list[str] = Field(default_factory=lambda: ["repeat", "transferred"])
    # A delivery failure of a follow-up SMS: "retry" it, or hand it to a "person" (the agent list).
    follow_up_on_failure: str = Field(default="person", pattern=r"^(retry|person)$")
    # Warning SMS: an outage-driven surge is this many callers routed to one notice within the
    # window (one warning per outage); the service level (answered within three rings, over the
    # last window) below the threshold, with at least so many answered calls (0: no such warning).
    surge_calls: int = Field(default=20, ge=1)
    surge_window_s: float = Field(default=600.0, gt=0)
    service_level_below_pct: float = Field(default=80.0, ge=0, le=100)
    service_level_window_min: int = Field(default=60, ge=5, le=24 * 60)
    service_level_min_calls: int = Field(default=20, ge=1)

    @property
    def sendsms_url(self) -> str:
        return f"http://{self.kannel_host}:{self.sendsms_port}/cgi-bin/sendsms"


class ClusterSettings(Section):
    """Engines sharing one hotline through Redis (calls/shared.py)."""

    engine_id: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,64}$")   # empty: engine-<web port>
    heartbeat_ttl_s: float = Field(default=3.0, ge=1.5)   # an engine silent this long is taken over
    hold_ttl_s: float = Field(default=20.0, gt=0)         # an agent's reservation outlives a dead engine this long


class AgentSettings(Section):
    """An agent's phone: a PJSIP endpoint the engine rings. SIP password has no default."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = ""
    sip_password: SecretStr
    # A fixed address for a phone that does not register (desk phones, test phones).
    contact: str | None = Field(default=None, pattern=r"^sips?:[^\s]+$")
    # Other phones the agent may log in at (a desk phone and a softphone): ids of [[agents]]
    # endpoints. The agent's own endpoint (PJSIP/<id>) is always allowed.
    endpoints: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list)
    skills: dict[str, int] = Field(default_factory=dict)


class UserSettings(Section):
    """A web log-in seeded at start (password hashed before it is stored)."""

    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: SecretStr
    role: str
    agent_id: str | None = None
    unit: str | None = None
    # The user's own phone: the id of an [[agents]] endpoint (a supervisor's listen/whisper/barge rings it).
    phone: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")


class WallboardSettings(Section):
    """Colour thresholds of the wallboard and the supervisor's grid, in seconds: a caller
    waiting, an agent paused or in wrap-up past `*_warn_s` is shown amber, past `*_bad_s` red."""
    wait_warn_s: float = Field(default=60, gt=0)
    wait_bad_s: float = Field(default=300, gt=0)
    pause_warn_s: float = Field(default=600, gt=0)
    pause_bad_s: float = Field(default=1800, gt=0)
    wrapup_warn_s: float = Field(default=60, gt=0)
    wrapup_bad_s: float = Field(default=180, gt=0)
    # The hours (hotline time) at which a shift begins: the wallboard's "this shift" view.
    shift_hours: list[int] = Field(default_factory=lambda: [8, 20], min_length=1)

    @field_validator("shift_hours")
    @classmethod
    def _hours_of_a_day(cls, hours: list[int]) -> list[int]:
        if any(not 0 <= h <= 23 for h in hours):
            raise ValueError("hours from 0 to 23")
        return sorted(set(hours))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLCENTER_", env_nested_delimiter="__", extra="forbid")

    hotline: HotlineSettings
    telephony: TelephonySettings
    ami: AmiSettings
    asterisk: AsteriskSettings
    paths: PathSettings
    database: DatabaseSettings
    redis: RedisSettings
    web: WebSettings
    ivr: IvrSettings
    acd: AcdSettings
    recording: RecordingSettings
    transcription: TranscriptionSettings
    workorders: WorkOrderSettings = Field(default_factory=WorkOrderSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    dial_policy: DialPolicySettings = Field(default_factory=DialPolicySettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    wallboard: WallboardSettings = Field(default_factory=WallboardSettings)
    queues: list[QueueSettings]
    agents: list[AgentSettings] = Field(default_factory=list)
    users: list[UserSettings] = Field(default_factory=list)

    @field_validator("queues")
    @classmethod
    def _unique_queue_names(cls, queues: list[QueueSettings]) -> list[QueueSettings]:
        names = [q.name for q in queues]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"queue names must be unique, repeated: {', '.join(duplicates)}")
        for q in queues:
            for key in ("overflow_to", "when_closed"):
                target = getattr(q, key)
                if target is not None and target not in names:
                    raise ValueError(f"queue {q.name}: {key} {target!r} is not a queue")
        return queues

    @model_validator(mode="after")
    def _phones_are_endpoints(self) -> Settings:
        endpoints = {a.id for a in self.agents}
        for agent in self.agents:
            unknown = [e for e in agent.endpoints if e not in endpoints]
            if unknown:
                raise ValueError(f"agents {agent.id}: endpoints {unknown!r} are not ids of [[agents]] endpoints")
        for user in self.users:
            if user.phone is not None and user.phone not in endpoints:
                raise ValueError(f"users {user.username}: phone {user.phone!r} is not the id of an [[agents]] endpoint")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the merged TOML files, which come in as init arguments.
        return (env_settings, init_settings)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load and validate settings. `path` defaults to $CALLCENTER_CONFIG when set."""
    data = _read_toml(DEFAULTS_FILE)
    path = path or os.environ.get(CONFIG_ENV)
    if path:
        data = _merge(data, _read_toml(Path(path)))
    if overrides:
        data = _merge(data, overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            problems.append(f"{key}: {err['msg']}")
        where = f" (in {path})" if path else ""
        raise ConfigError(f"invalid settings{where}:\n  " + "\n  ".join(problems)) from None
