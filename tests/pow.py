"""Solve the sign-in proof of work the way the page's script does, for tests that post forms directly."""

from __future__ import annotations

import html
import json
import re

from altcha.v2 import Challenge, Payload, solve_challenge

_ATTRIBUTE = re.compile(r'data-pow-challenge="([^"]+)"')


def solve(challenge_json: str) -> str:
    challenge = Challenge.from_dict(json.loads(challenge_json))
    solution = solve_challenge(challenge, timeout=30)
    assert solution is not None
    return Payload(challenge, solution).to_base64()


def pow_field(client, url: str) -> dict[str, str]:
    """GET the form page, solve its challenge, return the field to post along."""
    page = client.get(url).content.decode()
    match = _ATTRIBUTE.search(page)
    assert match, f"no proof-of-work challenge on {url}"
    return {"altcha": solve(html.unescape(match.group(1)))}
