"""Web Push (VAPID, RFC 8291) to browsers that subscribed; see :mod:`.channel`."""

from rallypoint.notify.channels.webpush.channel import WebPushChannel

__all__ = ["WebPushChannel"]
