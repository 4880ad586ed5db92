"""Render the settings-dependent part of Asterisk's configuration.

The static files live in the project's asterisk/ folder. `render` copies them into
settings.paths.asterisk_config_dir and writes next to them:
- callcenter_manager.conf: the engine's AMI user, its secret and the eventfilter that lets
  through only the events the engine uses;
- callcenter_pjsip.conf: the SIP transport, the carrier trunk and one endpoint per agent
  (credentials from the settings; there are no default passwords), each agent's phone
  qualified every `asterisk.qualify_frequency_s` so a phone that is gone is known;
- indications.conf: the ring cadence from [telephony] (cn: 1 s on, 4 s off).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.ami.events import ENGINE_EVENTS
from callcenter.config import ConfigError, Settings

if TYPE_CHECKING:
    from callcenter.admin.directory import AgentEntry

PJSIP_FILE = "callcenter_pjsip.conf"
STATIC_DIR = Path(__file__).resolve().parent.parent / "asterisk"

# Read classes the engine needs: system (FullyBooted), call (channels, dial, bridge, hangup),
# agi (AsyncAGI*), dtmf (keys pressed while waiting), dialplan (VarSet when asked), reporting.
AMI_READ = "system,call,agi,dtmf,dialplan,reporting,originate"
AMI_WRITE = "system,call,agi,originate,reporting"


def _safe(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0;[]") or not value.strip():
        raise ConfigError(f"{what}: must be one line without ; [ ] (got {value!r})")
    return value


def manager_conf(settings: Settings) -> str:
    if settings.ami.secret is None:
        raise ConfigError("ami.secret: required (run `callcenter init` to write a random one)")
    lines = [
        f"[{_safe(settings.ami.username, 'ami.username')}]",
        f"secret = {_safe(settings.ami.secret.get_secret_value(), 'ami.secret')}",
        "deny = 0.0.0.0/0.0.0.0",
        "permit = 127.0.0.1/255.255.255.255",
        f"read = {AMI_READ}",
        f"write = {AMI_WRITE}",
        "writetimeout = 1000",
    ]
    lines += [f"eventfilter(action(include),name({name})) =" for name in ENGINE_EVENTS]
    return "\n".join(lines) + "\n"


def pjsip_conf(settings: Settings, agents: Iterable[AgentEntry] | None = None) -> str:
    """The transport, the trunk and one endpoint per agent: the settings' [[agents]] (their
    passwords), or the hotline's directory (`agents`: only each password's digest, md5_cred)."""
    a = settings.asterisk
    out = [
        "[transport-udp]", "type = transport", "protocol = udp", f"bind = {a.sip_bind}", "",
        "[trunk](endpoint-defaults)", "context = from-trunk", "aors = trunk", "",
        "[trunk]", "type = aor", f"contact = {_safe(a.trunk_contact, 'asterisk.trunk_contact')}", "",
        "[trunk-identify]", "type = identify", "endpoint = trunk", f"match = {_safe(a.trunk_match, 'asterisk.trunk_match')}", "",
    ]
    for agent in (settings.agents if agents is None else agents):
        if agents is None:
            password = _safe(agent.sip_password.get_secret_value(), f"agents.{agent.id}.sip_password")  # type: ignore[union-attr]
            auth = ["auth_type = userpass", f"username = {agent.id}", f"password = {password}"]
        else:
            from callcenter.admin.directory import REALM

            digest = _safe(agent.sip_ha1, f"agents.{agent.id}.sip_ha1")  # type: ignore[union-attr]
            auth = ["auth_type = md5", f"username = {agent.id}", f"realm = {REALM}", f"md5_cred = {digest}"]
        out += [
            f"[{_safe(agent.id, 'agents.id')}](endpoint-defaults)", "context = agents", f"auth = {agent.id}-auth",
            f"aors = {agent.id}",
            f"callerid = {_safe(agent.name or agent.id, f'agents.{agent.id}.name')} <{agent.id}>", "",
            f"[{agent.id}-auth]", "type = auth", *auth, "",
            f"[{agent.id}]", "type = aor", "max_contacts = 1", "remove_existing = yes",
            f"qualify_frequency = {a.qualify_frequency_s}", f"qualify_timeout = {a.qualify_timeout_s:g}",
            f"minimum_expiration = {a.registration_min_s}",
        ]
        if agent.contact:
            out.append(f"contact = {_safe(agent.contact, f'agents.{agent.id}.contact')}")
        out.append("")
    return "\n".join(out) + "\n"


def indications_conf(settings: Settings) -> str:
    t = settings.telephony
    on_ms, off_ms = int(t.ring_on_s * 1000), int(t.ring_off_s * 1000)
    country = _safe(settings.asterisk.country, "asterisk.country")
    return (
        f"[general]\ncountry = {country}\n\n[{country}]\ndescription = hotline ring cadence\n"
        f"ringcadence = {on_ms},{off_ms}\n"
        "dial = 450\nbusy = 450/350,0/350\n"
        f"ring = 450/{on_ms},0/{off_ms}\n"
        "congestion = 450/700,0/700\ncallwaiting = 450/400,0/4000\ndialrecall = 450\n"
        "record = 950/400,0/10000\ninfo = 450/100,0/100,450/100,0/100,450/100,0/100,450/400,0/400\n"
    )


def write_pjsip(settings: Settings, agents: Iterable[AgentEntry]) -> Path | None:
    """The agents' endpoints from the hotline's directory, into the rendered config folder (atomic,
    0600). None when this machine has no rendered folder (Asterisk's configs live elsewhere)."""
    target = settings.paths.asterisk_config_dir / PJSIP_FILE
    if not target.exists():
        return None
    tmp = target.with_name(f".{PJSIP_FILE}.tmp")
    tmp.write_text(pjsip_conf(settings, list(agents)))
    tmp.chmod(0o600)
    tmp.replace(target)
    return target


def render(settings: Settings, static_dir: Path = STATIC_DIR) -> Path:
    """Write the complete config folder Asterisk reads; returns it."""
    target = settings.paths.asterisk_config_dir
    target.mkdir(parents=True, exist_ok=True)
    for path in static_dir.iterdir():
        if path.is_file() and path.suffix == ".conf":
            shutil.copyfile(path, target / path.name)
    files = {
        "callcenter_manager.conf": manager_conf(settings),
        PJSIP_FILE: pjsip_conf(settings),
        "indications.conf": indications_conf(settings),
    }
    for name, text in files.items():
        tmp = target / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(target / name)
    return target
