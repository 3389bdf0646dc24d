"""The webhook channel: one signed JSON POST per alert, with the standard library only.

Requests follow the Standard Webhooks scheme (https://www.standardwebhooks.com), so stock
verifiers check them: ``webhook-id`` (the alert id), ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``. The receiver
deduplicates by the id (also sent as ``Idempotency-Key``): the outbox guarantees at least
once, so a crash between a send and its record may repeat a request. The signature covers
the id and the timestamp, so a receiver that rejects old timestamps also rejects replays.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message
from typing import IO
from urllib.parse import urlsplit

from pipeline.alerts.outbox import Outcome

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# A secret in the Standard Webhooks form: this prefix, then the key in base64.
SECRET_PREFIX = "whsec_"
# Client errors that say "not now" rather than "never".
RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})
# 409 Conflict: the receiver already has this Idempotency-Key, which is what we wanted.
ALREADY_DELIVERED = 409
_USER_AGENT = "rfm-pipeline-alerts/2"
_ERROR_BODY_CHARS = 200


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64 after ``whsec_``, or else the secret's UTF-8 bytes.

    Raises:
        ValueError: a ``whsec_`` secret whose key is not base64.
    """
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error as error:
            raise ValueError(f"alerts.webhook_secret: not base64 after {SECRET_PREFIX}") from error
    return secret.encode()


def sign(secret: str, alert_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``."""
    content = f"{alert_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def request_headers(alert_id: str, body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers of one alert's POST; no signature without a secret."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        ID_HEADER: alert_id,
        TIMESTAMP_HEADER: str(timestamp),
        IDEMPOTENCY_HEADER: alert_id,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, alert_id, timestamp, body)
    return headers


def post(
    url: str,
    alert_id: str,
    body: bytes,
    *,
    secret: str,
    timeout: float,
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """POST one alert and classify the answer; transport errors are returned, not raised.

    Error details name the server as scheme://host:port only: webhook URLs often carry a
    token in their path, and errors end up in logs and the outbox.
    """
    headers = request_headers(alert_id, body, secret, int(clock()))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    # Redirects are not followed: urllib would turn the POST into a GET without a body.
    opener = urllib.request.build_opener(_NoRedirect)
    server = _origin(url)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
            return classify(response.status, "")
    except urllib.error.HTTPError as error:
        return classify(error.code, _error_text(error))
    except urllib.error.URLError as error:
        return Outcome("retry", f"cannot reach {server}: {error.reason}", reached=False)
    except TimeoutError:
        return Outcome("retry", f"{server} timed out after {timeout:g} s", reached=False)
    except (OSError, http.client.HTTPException) as error:
        return Outcome("retry", f"{server}: {type(error).__name__}: {error}", reached=False)


def classify(status: int, text: str) -> Outcome:
    """2xx and 409 delivered; 408, 425, 429, 3xx and 5xx retried; other 4xx rejected."""
    detail = f"HTTP {status}" + (f": {text}" if text else "")
    if 200 <= status < 300 or status == ALREADY_DELIVERED:
        return Outcome("delivered", detail)
    if 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS:
        return Outcome("rejected", detail)
    if 300 <= status < 400:
        detail += " (redirects are not followed: set alerts.webhook_url to the final address)"
    return Outcome("retry", detail)


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read(_ERROR_BODY_CHARS * 4).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        text = ""
    return " ".join((text or str(error.reason)).split())[:_ERROR_BODY_CHARS]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:  # urllib reports the bad port itself
        port = None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None
