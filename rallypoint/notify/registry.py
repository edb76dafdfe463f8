"""Channel kind → class. Each class lives in its own package under ``notify/channels/``."""

from __future__ import annotations

import threading

from django.utils.module_loading import import_string

from rallypoint.notify.channels.base import Channel

CHANNELS: dict[str, str] = {
    "inapp": "rallypoint.notify.channels.inapp.InAppChannel",
    "push": "rallypoint.notify.channels.webpush.WebPushChannel",
    "email": "rallypoint.notify.channels.email.EmailChannel",
    "sms": "rallypoint.notify.channels.sms.SmsChannel",
    "voice": "rallypoint.notify.channels.sms.VoiceChannel",
    "apprise": "rallypoint.notify.channels.messenger.AppriseChannel",
}

_local = threading.local()


def channel_class(kind: str) -> type[Channel]:
    return import_string(CHANNELS[kind])


def channel_for_thread(kind: str) -> Channel:
    """One instance per thread and kind, so that a channel may keep its connection between sends."""
    cache = _local.__dict__.setdefault("channels", {})
    if kind not in cache:
        cache[kind] = channel_class(kind)()
    return cache[kind]


def close_thread_channels() -> None:
    for channel in _local.__dict__.pop("channels", {}).values():
        channel.close()
