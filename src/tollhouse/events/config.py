"""The ``[events]`` settings section, owned by the events package."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventsSettings(BaseModel):
    """The live event bus behind `/api/stream` and `/terminal`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keepalive_s: float = Field(
        default=30.0, gt=0, description="Seconds between `: ping` keep-alive comments on `/api/stream`."
    )
    analytics_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between `analytics` events (sent only while someone listens).",
    )
    queue_size: int = Field(
        default=1000, gt=0, description="Events buffered per subscriber; a slow one loses its oldest."
    )
    redis_channel: str = Field(
        default="tollhouse:events",
        description="Redis pub/sub channel shared by every replica (cluster mode).",
    )
