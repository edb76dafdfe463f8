"""Bot protection without a third party: a self-hosted ALTCHA proof-of-work (PoW v2).

The page carries a signed challenge; a small script (``web/static/web/pow.js``)
finds the counter whose PBKDF2-derived key matches the challenge's prefix and
puts the solution into the form. The server checks the signature, the expiry and
the solution with the ``altcha`` library, and accepts each solved challenge once:
its signature is kept until the challenge expires.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta

from altcha.v2 import create_challenge, verify_solution
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rallypoint.accounts.models import UsedProofOfWork

ALGORITHM = "PBKDF2/SHA-256"
LIFETIME = timedelta(minutes=10)
FIELD = "altcha"


def _secret(purpose: str) -> bytes:
    return hashlib.sha256(f"rallypoint-pow-{purpose}:{settings.SECRET_KEY}".encode()).digest()


def new_challenge() -> str:
    """A fresh signed challenge as JSON, for the page's ``data-pow-challenge`` attribute."""
    top = settings.POW_MAX_COUNTER
    challenge = create_challenge(
        ALGORITHM, settings.POW_COST,
        counter=top // 2 + secrets.randbelow(top - top // 2 + 1),
        expires_at=int((timezone.now() + LIFETIME).timestamp()),
        hmac_secret=_secret("challenge"), hmac_key_secret=_secret("key"),
    )
    return json.dumps(challenge.to_dict(), separators=(",", ":"))


def verify(payload: str) -> bool:
    """True once for a correctly solved, unexpired challenge; False otherwise (and on reuse)."""
    if not payload or len(payload) > 4096:
        return False
    result = verify_solution(payload, _secret("challenge"), hmac_key_secret=_secret("key"))
    if not result.verified:
        return False
    signature = json.loads(base64.b64decode(payload))["challenge"]["signature"]
    try:
        with transaction.atomic():
            UsedProofOfWork.objects.create(signature=signature, expires_at=timezone.now() + LIFETIME)
    except IntegrityError:
        return False
    return True


def purge_used(now=None) -> int:
    deleted, _ = UsedProofOfWork.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
