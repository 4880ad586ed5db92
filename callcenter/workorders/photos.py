"""Photos as evidence of a field unit's work (现场照片): checked, stored, recorded with the order.

A photo is taken only if it is what it says: a JPEG or a PNG by its first bytes (not by the
name or the type the phone sent), at most `MAX_BYTES`. It is written under the spool's photos
folder with a name made here (the order's id and a random id), never a name from the request,
and recorded in `work_order_photos` and in the order's audit trail, in one transaction; a file
whose row could not be written is taken away again.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.workorders.models import OrderPhoto, WorkOrder, WorkOrderEvent

MAX_BYTES = 5 * 1024 * 1024
SIGNATURES = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG\r\n\x1a\n": ("image/png", "png")}


class PhotoRefused(ValueError):
    """Not a photo we keep (the message names the field and why)."""


def sniff(data: bytes) -> tuple[str, str]:
    """(content type, extension) from the photo's own first bytes."""
    if not data:
        raise PhotoRefused("photo: empty")
    if len(data) > MAX_BYTES:
        raise PhotoRefused(f"photo: larger than {MAX_BYTES // (1024 * 1024)} MB")
    for signature, kind in SIGNATURES.items():
        if data.startswith(signature):
            return kind
    raise PhotoRefused("photo: not a JPEG or PNG picture")


async def add_photo(sessionmaker: async_sessionmaker[AsyncSession], photos_dir: Path, order_id: int, actor: str,
                    data: bytes, now: datetime | None = None) -> OrderPhoto:
    content_type, extension = sniff(data)
    now = now or datetime.now(UTC)
    relative = f"{order_id}/{uuid.uuid4().hex}.{extension}"
    target = photos_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    try:
        async with sessionmaker() as session, session.begin():
            order = await session.get(WorkOrder, order_id)
            if order is None:
                raise LookupError(f"no work order {order_id}")
            photo = OrderPhoto(order_id=order_id, at=now, actor=actor, path=relative, content_type=content_type,
                               size=len(data), sha256=hashlib.sha256(data).hexdigest())
            session.add(photo)
            session.add(WorkOrderEvent(order_id=order_id, at=now, actor=actor, event="photo", from_state=order.state,
                                       to_state=order.state, reason=f"photo {relative} ({len(data)} bytes)"))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return photo
