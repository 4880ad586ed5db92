"""Helpers for the ACD tests: a small hotline policy and an `Acd` built from it."""
from __future__ import annotations

from typing import Any

import pytest

from callcenter.acd.core import Acd
from callcenter.acd.settings import RoutingPolicy


def make_policy(queues: list[dict[str, Any]] | None = None, **acd: Any) -> RoutingPolicy:
    acd.setdefault("announce_first_after_s", 30)
    return RoutingPolicy.model_validate({
        "acd": acd,
        "queues": queues or [
            {"name": "general", "category": "other"},
            {"name": "leak", "category": "leak", "priority": 5},
            {"name": "billing", "category": "billing"},
        ],
    })


def make_acd(queues: list[dict[str, Any]] | None = None, **acd: Any) -> Acd:
    return Acd(make_policy(queues, **acd))


@pytest.fixture
def acd() -> Acd:
    return make_acd()
