"""In-app: the alarm reaches the web app through the site's event stream (rallypoint.realtime).

Its delivery rows are not sent by a worker: the stream carries the alarm the
moment it commits, and a row becomes "delivered" when the web app reports that
it showed the alarm (``alarms.actions.mark_seen``).
"""

from __future__ import annotations

from rallypoint.notify.channels.base import Address, Channel, Message


class InAppChannel(Channel):
    kind = "inapp"

    def send(self, message: Message, address: Address) -> str:
        return ""
