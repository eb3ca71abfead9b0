"""Stable pseudonymous annotator ids: an HMAC of the server and its user id with the study's secret.

The same annotator on the same server gets the same id in every campaign of
the study; names and emails stay on the server; without the secret (kept in
the study's .workbench/ folder, mode 600) an id cannot be linked to a user.
"""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(secret: bytes, server_url: str, user_id: int) -> str:
    digest = hmac.new(secret, f"{server_url.rstrip('/')}#{user_id}".encode(), hashlib.sha256).hexdigest()
    return "a" + digest[:11]
