"""A client of a running ``rallypoint run`` that fills in forms the way a browser does, without one.

It keeps cookies, takes the CSRF token and the proof-of-work challenge from the form's page, solves
the challenge (tests/pow.py) and posts. Redirects are not followed, so a test sees each step.
"""

from __future__ import annotations

import html
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from tests.pow import solve
from tests.server import insecure_context

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_POW = re.compile(r'data-pow-challenge="([^"]+)"')


@dataclass
class Page:
    status: int
    location: str
    text: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx answer comes back to the caller as it is


class WebClient:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=insecure_context()), _NoRedirect())

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            response = self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:  # 3xx and 4xx come back as errors
            response = error
        with response:
            return Page(response.status, response.headers.get("Location", ""),
                        response.read().decode("utf-8", errors="replace"))

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(urllib.parse.urljoin(self.base_url, path)))

    def submit(self, path: str, fields: dict[str, str]) -> Page:
        """Load the form at ``path`` and post ``fields`` with its CSRF token and a solved proof of work."""
        page = self.get(path)
        assert page.status == 200, (path, page.status)
        data = {"csrfmiddlewaretoken": _CSRF.search(page.text).group(1), **fields}
        challenge = _POW.search(page.text)
        if challenge:
            data["altcha"] = solve(html.unescape(challenge.group(1)))
        request = urllib.request.Request(
            urllib.parse.urljoin(self.base_url, path), data=urllib.parse.urlencode(data).encode(),
            headers={"Origin": self.base_url, "Content-Type": "application/x-www-form-urlencoded"})
        return self._open(request)
