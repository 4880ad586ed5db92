"""`callcenter user ...` and `callcenter agent add ...`: the administration for a hotline set up
by script. They write the database directly (the engines need not run) and tell the running
engines through Redis; an engine that misses the message reads the change within its poll.

    callcenter user add --role qa li.qa                  # password asked twice (or --password-file)
    callcenter user add --role unit --unit repair_team repair1 --password-file pw.txt
    callcenter user list
    callcenter user deactivate li.qa
    callcenter agent add 1006 --name 王芳 --queue leak --skill leak=5   # SIP password asked (or --password-file)
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from callcenter.admin.service import AdminError, AdminService
from callcenter.config import Settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.workorders.categories import load_categories

ACTOR = "cli"


def read_password(path: str | None, what: str) -> str:
    """The first line of `path`, or typed twice at a prompt (never an argument: it would be in
    the shell's history and the process list)."""
    if path:
        return Path(path).read_text().splitlines()[0] if Path(path).stat().st_size else ""
    first = getpass.getpass(f"{what}: ")
    if getpass.getpass(f"{what} again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


async def with_service(settings: Settings, work: Callable[[AdminService], Awaitable[Any]]) -> Any:
    await migrate(settings.database.url)
    db = create_engine(settings.database.url)
    redis = aioredis.Redis.from_url(settings.redis.url, decode_responses=True, socket_connect_timeout=2)
    categories = load_categories(settings.workorders.categories_file or None)
    service = AdminService(make_sessionmaker(db), settings.acd, redis=redis, prefix=settings.redis.prefix,
                           categories=categories.categories, units={c.unit for c in categories.categories.values()})
    try:
        await service.seed(settings)      # a fresh hotline set up by script: the settings' first
        return await work(service)
    finally:
        await redis.aclose()
        await db.dispose()


def _run(settings: Settings, work: Callable[[AdminService], Awaitable[Any]]) -> int:
    try:
        result = asyncio.run(with_service(settings, work))
    except AdminError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2
    except LookupError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def user_main(name: str, argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="callcenter user", description="web log-ins and their roles")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("add", help="a new log-in")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=["agent", "qa", "supervisor", "admin", "unit"])
    p.add_argument("--agent-id", help="role agent: the agent this log-in speaks for")
    p.add_argument("--unit", help="role unit: the field unit (a unit key of the work-order categories)")
    p.add_argument("--phone", help="the user's own phone: an agent endpoint id (listen/whisper/barge)")
    p.add_argument("--password-file", help="read the password from this file's first line")
    sub.add_parser("list", help="every log-in")
    for action in ("deactivate", "activate", "revoke-tokens"):
        sub.add_parser(action).add_argument("username")
    p = sub.add_parser("reset-password")
    p.add_argument("username")
    p.add_argument("--password-file")
    args = parser.parse_args(argv)
    if args.action == "list":
        return _run(settings, lambda s: s.users())
    if args.action == "add":
        password = read_password(args.password_file, f"password for {args.username}")
        return _run(settings, lambda s: s.create_user(ACTOR, args.username, password, args.role, args.agent_id,
                                                      args.unit, args.phone))
    new_password = read_password(args.password_file, "new password") if args.action == "reset-password" else None
    action = args.action.replace("-", "_")
    return _run(settings, lambda s: s.change_user(ACTOR, args.username, action, password=new_password))


def parse_skills(given: list[str]) -> dict[str, int]:
    skills: dict[str, int] = {}
    for item in given:
        queue, _, level = item.partition("=")
        if not level.isdigit():
            raise SystemExit(f"--skill {item!r}: give it as QUEUE=LEVEL, e.g. leak=5")
        skills[queue] = int(level)
    return skills


def agent_add(args: argparse.Namespace, settings: Settings) -> int:
    skills = parse_skills(args.skill or [])
    queues = list(dict.fromkeys((args.queue or []) + list(skills)))
    password = read_password(args.password_file, f"SIP password for {args.agent_id}")
    return _run(settings, lambda s: s.create_agent(ACTOR, args.agent_id, args.name or args.agent_id, password,
                                                   queues, skills))
