"""The in-process event bus every live surface (SSE, WebSocket, webhooks) subscribes to."""

from tollhouse.events.bus import Event, EventBroadcaster, Subscription

__all__ = ["Event", "EventBroadcaster", "Subscription"]
