"""The `callcenter` command.

    callcenter init                 write var/callcenter.toml with random secrets (once)
    callcenter run                  Asterisk, the engine, the web server and a transcription worker, until Ctrl-C
    callcenter serve                the engine and the web server only (a deployment: Asterisk elsewhere,
                                    `callcenter worker` processes for the transcripts)
    callcenter asterisk render      write Asterisk's configs from the settings
    callcenter prompts build        render the IVR prompts with espeak-ng (cached)
    callcenter agent login 1001     agent state through the running engine's HTTP API
    callcenter call --keys 2        place a test call with SIPp (keypad input, optional speech)
    callcenter report weekly --week 2026-W47
    callcenter transcribe           transcribe recordings that have no transcript yet
    callcenter worker               a transcription worker process
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from callcenter.config import CONFIG_ENV, ConfigError, Settings, load_settings

LOCAL_SETTINGS = Path("var/callcenter.toml")
ROOT = Path(__file__).resolve().parent.parent


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get(CONFIG_ENV) or (LOCAL_SETTINGS if LOCAL_SETTINGS.exists() else None)
    return load_settings(path)


# ---------------------------------------------------------------- init


def init_text() -> tuple[str, dict[str, str]]:
    """A local settings file with fresh random secrets, and the passwords to show once."""
    shown = {
        "admin": secrets.token_urlsafe(12),
        "1001": secrets.token_urlsafe(9),
        "1002": secrets.token_urlsafe(9),
        "api_token": secrets.token_urlsafe(24),
    }
    text = f"""# Local settings written by `callcenter init`; keep this file private.
[ami]
secret = "{secrets.token_urlsafe(18)}"

[web]
secret_key = "{secrets.token_urlsafe(32)}"
cli_token = "{shown['api_token']}"

[sms]
sendsms_password = "{secrets.token_urlsafe(18)}"
admin_password = "{secrets.token_urlsafe(18)}"
mo_token = "{secrets.token_urlsafe(24)}"

[[agents]]
id = "1001"
name = "座席1001"
sip_password = "{shown['1001']}"
queues = ["general", "leak", "billing", "complaint"]

[[agents]]
id = "1002"
name = "座席1002"
sip_password = "{shown['1002']}"
queues = ["general", "leak", "billing", "complaint"]

[[users]]
username = "admin"
password = "{shown['admin']}"
role = "admin"

[[users]]
username = "1001"
password = "{shown['1001']}"
role = "agent"
agent_id = "1001"

[[users]]
username = "1002"
password = "{shown['1002']}"
role = "agent"
agent_id = "1002"
"""
    return text, shown


def cmd_init(args: argparse.Namespace) -> int:
    if LOCAL_SETTINGS.exists() and not args.force:
        print(f"{LOCAL_SETTINGS} exists (use --force to replace it)")
        return 0
    text, shown = init_text()
    LOCAL_SETTINGS.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_SETTINGS.write_text(text)
    LOCAL_SETTINGS.chmod(0o600)
    print(f"wrote {LOCAL_SETTINGS}")
    print(f"  web log-in: admin / {shown['admin']}")
    print(f"  softphone agent 1001: user 1001, password {shown['1001']}, server <this machine>:5060 (UDP)")
    print(f"  softphone agent 1002: user 1002, password {shown['1002']}")
    return 0


# ---------------------------------------------------------------- asterisk, prompts


def asterisk_env(settings: Settings) -> dict[str, str]:
    return {**os.environ, "CALLCENTER_SPOOL": str(settings.paths.spool_dir.resolve()),
            "CALLCENTER_ASTERISK_CONF": str(settings.paths.asterisk_config_dir.resolve())}


def cmd_asterisk(args: argparse.Namespace) -> int:
    from callcenter.asterisk_config import render

    settings = _settings(args)
    if args.action == "render":
        print(render(settings))
        return 0
    script = ROOT / "scripts" / "asterisk-root.sh"
    if args.action == "start":
        render(settings)
    return subprocess.run([str(script), args.action], env=asterisk_env(settings), check=False).returncode


def build_prompts(settings: Settings) -> list[Path]:
    from callcenter.ivr.model import load_menu
    from callcenter.ivr.prompts import build_prompts as build

    menu = load_menu(settings.ivr.menu_file or None)
    return build(menu, settings.paths.prompts_dir, voice=settings.ivr.voice, speed_wpm=settings.ivr.speed_wpm)


def cmd_prompts(args: argparse.Namespace) -> int:
    paths = build_prompts(_settings(args))
    print(f"{len(paths)} prompts in place")
    return 0


# ---------------------------------------------------------------- agents (HTTP API of the running engine)


def api(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = getattr(settings.web, "cli_token", None)
    if token is None:
        raise SystemExit("web.cli_token is not set: run `callcenter init`")
    request = urllib.request.Request(
        f"http://{settings.web.host}:{settings.web.port}{path}", method=method,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": f"Bearer {token.get_secret_value()}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None
    except urllib.error.URLError as exc:
        raise SystemExit(f"the engine does not answer on {settings.web.host}:{settings.web.port} ({exc.reason}); "
                         "is `callcenter run` running?") from None


def cmd_agent(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.action == "list":
        print(json.dumps(api(settings, "GET", "/api/agents"), ensure_ascii=False, indent=2))
        return 0
    body: dict[str, str] = {"reason": args.reason} if args.action == "pause" else {}
    if args.action == "login" and args.endpoint:
        body["endpoint"] = args.endpoint   # one of the agent's configured phones, by id; checked by the engine
    print(json.dumps(api(settings, "POST", f"/api/agents/{args.agent_id}/{args.action}", body), ensure_ascii=False))
    return 0


# ---------------------------------------------------------------- a test call


def cmd_call(args: argparse.Namespace) -> int:
    from callcenter.sipp import Key, Sipp, caller_scenario

    settings = _settings(args)

    async def place() -> int:
        sipp = Sipp(settings.paths.spool_dir.resolve())
        speech = sipp.speech("cli_caller.pcap", args.say, total_s=args.hangup_after) if args.say else None
        keys = tuple(Key(d, args.key_gap_ms if i else args.first_key_ms) for i, d in enumerate(args.keys))
        run = await sipp.start("cli_call", caller_scenario(number=args.caller, keys=keys, speech_pcap=speech,
                                                           hangup_after_ms=int(args.hangup_after * 1000)),
                               sip_port=5099, media_port=39000, service=args.number or settings.hotline.number,
                               timeout_s=args.hangup_after + 120, trace_rtt=True)
        code = await run.wait(args.hangup_after + 130)
        print(f"call ended (sipp exit {code}); INVITE to 200 OK: {run.rtt_ms()} ms")
        return code

    return asyncio.run(place())


# ---------------------------------------------------------------- a stand-in softphone


def cmd_phone(args: argparse.Namespace) -> int:
    """A SIPp softphone for an agent: registers with the agent's password, answers calls."""
    from callcenter.sipp import Sipp, agent_scenario, register_scenario

    settings = _settings(args)
    agent = next((a for a in settings.agents if a.id == args.agent_id), None)
    if agent is None:
        raise SystemExit(f"unknown agent {args.agent_id!r}: not in the settings' [[agents]]")
    host, _, port = settings.asterisk.sip_bind.rpartition(":")
    target = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"

    async def run() -> int:
        sipp = Sipp(settings.paths.spool_dir.resolve())
        sip_port = args.port
        register = await sipp.start(f"phone{agent.id}_register",
                                    register_scenario(agent.id, agent.sip_password.get_secret_value()),
                                    sip_port=sip_port, media_port=36000, target=target, timeout_s=10)
        if await register.wait(15) != 0:
            print(f"agent {agent.id}: registration refused (see var/sipp/phone{agent.id}_register.out)")
            return 1
        speech = sipp.speech(f"phone{agent.id}.pcap", args.say, total_s=30) if args.say else None
        print(f"agent {agent.id}'s phone registered at {target}; answering calls (Ctrl-C stops)")
        phone = await sipp.start(f"phone{agent.id}", agent_scenario(ring_ms=args.ring_ms, speech_pcap=speech,
                                                                    hangup_after_ms=int(args.talk * 1000)),
                                 sip_port=sip_port, media_port=36000, target=None, calls=args.calls,
                                 timeout_s=24 * 3600)
        try:
            return await phone.wait(24 * 3600)
        finally:
            await phone.stop()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from callcenter.app import serve

    settings = _settings(args)
    if not args.no_asterisk:
        build_prompts(settings)
        if cmd_asterisk(argparse.Namespace(config=args.config, action="start")) != 0:
            print("Asterisk did not start", file=sys.stderr)
            return 1
    print(f"""
The hotline is running.
  web:        http://{settings.web.host}:{settings.web.port}/  (wallboard /wallboard, agent page /agent)
  softphone:  register as one of your agents (see var/callcenter.toml) at this machine, UDP 5060
  agent:      .venv/bin/callcenter agent login 1001      (then: pause 1001 --reason break, ready 1001)
  test call:  .venv/bin/callcenter call --keys 2         (presses 2 = leak; rings the logged-in agent)
  transcripts: {settings.transcription.workers_in_run} worker(s) in this process ([transcription] workers_in_run)
Ctrl-C (or SIGTERM) stops the engine{" and its Asterisk" if not args.no_asterisk else ""}.
""", flush=True)
    try:
        asyncio.run(serve(settings, transcription_workers=settings.transcription.workers_in_run))
    except KeyboardInterrupt:
        pass
    finally:
        if not args.no_asterisk:
            # The Asterisk this command started (or reused) goes with it: the next `make run`
            # finds a clean root. After a crash the next run reuses or replaces what is left.
            cmd_asterisk(argparse.Namespace(config=args.config, action="stop"))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """One engine of a deployment: Asterisk runs elsewhere, transcripts are `callcenter worker`'s."""
    from callcenter.app import serve

    settings = _settings(args)
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    return 0


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callcenter", description="the hotline's call-center engine")
    parser.add_argument("--config", help="settings file (TOML); default $CALLCENTER_CONFIG or var/callcenter.toml")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="write local settings with random secrets")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("run", help="run the hotline")
    p.add_argument("--no-asterisk", action="store_true", help="Asterisk runs elsewhere")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="the engine and the web server (Asterisk and transcription workers elsewhere)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("asterisk", help="Asterisk's configs and the local Asterisk")
    p.add_argument("action", choices=["render", "start", "stop"])
    p.set_defaults(func=cmd_asterisk)

    p = sub.add_parser("prompts", help="IVR prompt audio")
    p.add_argument("action", choices=["build"])
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("agent", help="agent state through the running engine")
    p.add_argument("action", choices=["login", "logout", "pause", "ready", "list"])
    p.add_argument("agent_id", nargs="?")
    p.add_argument("--reason", default="break")
    p.add_argument("--endpoint", help="login: one of the agent's other phones ([[agents]] endpoints), by id")
    p.set_defaults(func=cmd_agent)

    p = sub.add_parser("phone", help="a SIPp softphone for an agent (registers, answers)")
    p.add_argument("agent_id")
    p.add_argument("--port", type=int, default=5071)
    p.add_argument("--ring-ms", type=int, default=1000)
    p.add_argument("--talk", type=float, default=10.0, help="seconds before the phone hangs up")
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--say", default="water hotline, how can I help you", help="what the agent says")
    p.set_defaults(func=cmd_phone)

    p = sub.add_parser("call", help="place a test call with SIPp")
    p.add_argument("--keys", default="2", help="keys to press after the menu starts (RFC 2833)")
    p.add_argument("--caller", default="13800000000")
    p.add_argument("--number", default=None, help="number dialled (default: the hotline's)")
    p.add_argument("--say", default=None, help="a sentence the caller speaks (espeak-ng)")
    p.add_argument("--first-key-ms", type=int, default=2500)
    p.add_argument("--key-gap-ms", type=int, default=1500)
    p.add_argument("--hangup-after", type=float, default=20.0, help="seconds after the keys")
    p.set_defaults(func=cmd_call)

    for name, module in (("report", "callcenter.workorders.cli"), ("transcribe", "callcenter.recording.cli"),
                         ("worker", "callcenter.recording.cli"), ("purge", "callcenter.recording.cli"),
                         ("erase", "callcenter.recording.cli")):
        p = sub.add_parser(name, help=f"see `callcenter {name} --help`", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda a, m=module, n=name: _delegate(m, n, a))

    # A delegated command's own options (`erase --number N`) are not ours: argparse's
    # REMAINDER cannot begin with an option, so they are collected as unknown and handed on.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if not hasattr(args, "rest"):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = unknown + args.rest
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2


def _delegate(module: str, name: str, args: argparse.Namespace) -> int:
    import importlib

    mod = importlib.import_module(module)
    return int(mod.main(name, args.rest, _settings(args)) or 0)


if __name__ == "__main__":
    sys.exit(main())
