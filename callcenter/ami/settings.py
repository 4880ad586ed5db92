"""Limits of the AMI adapter that are not in `config.AmiSettings` (to be wired as `[ami]` keys).

`AmiLimits` is what `AmiConnection` and `AmiGateway` take; `DEFAULTS` is the same as TOML-ready
values. Until the lead wires these keys into `AmiSettings`, the defaults below apply.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AmiLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Longest value accepted in one action header (a caller id of 500 characters is refused).
    max_field_length: int = Field(default=1024, ge=16, le=65536)
    # Longest single AMI message accepted from Asterisk before the stream is declared broken.
    max_message_bytes: int = Field(default=256 * 1024, ge=1024)
    # Default limit for an AGI command that does not block (ANSWER, SET VARIABLE ...).
    agi_timeout_s: float = Field(default=10.0, gt=0)
    # The event classes asked for at login ("on" = everything manager.conf lets the user read).
    login_events: str = Field(default="on", pattern=r"^[a-z,]+$")


DEFAULTS: dict[str, Any] = AmiLimits().model_dump()
