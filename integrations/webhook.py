"""Webhook connector: tells an HTTP endpoint of yours to grant, extend and revoke.

Every operation is one ``POST`` to the configured URL with a JSON body::

    {"action": "grant" | "extend" | "revoke",
     "grant": {"id": 12, "request_id": 3, "grantee": {"slack_id": "U…", "email": "…"},
               "integration": "deploy",
               "resource": {"type": …, "name": …, "path": …, "source_id": …, "tags": {…}},
               "permission": "deployer", "expires_at": "2026-01-05T10:00:00+00:00" | null},
     "until": "<ISO 8601 UTC>" | null}

``until`` is when the access ends: the expiry on ``grant``, the new expiry on ``extend`` (``null`` = no end),
and always ``null`` on ``revoke``. Headers:

- ``X-Accessbot-Timestamp``: unix seconds when the call was made.
- ``X-Accessbot-Signature``: ``v1=<hex HMAC-SHA256>`` of the bytes ``v1:<timestamp>:<raw body>`` keyed with
  the shared secret (``secret_env``); absent when no secret is configured.
- ``Idempotency-Key``: ``grant-<id>-grant``, ``grant-<id>-revoke``, and for extensions
  ``grant-<id>-extend-<until as unix seconds, or "indefinite">`` (each extension is a distinct operation).

A receiver verifies a call like this (and should refuse timestamps more than five minutes old)::

    expected = "v1=" + hmac.new(secret, b"v1:" + timestamp.encode() + b":" + raw_body, "sha256").hexdigest()
    ok = hmac.compare_digest(expected, request.headers["X-Accessbot-Signature"])

Calls are retried, so a receiver must treat a repeated ``Idempotency-Key`` as done. Any 2xx answer means done;
a JSON object in the answer may carry ``{"external_ref": "…", "credentials": {"k": "v"}, "note": "…"}``,
which a grant passes to the grantee. Anything else is a ``ConnectorError``: timeouts, connection errors, 5xx,
408, 409 and 429 are retryable; other 4xx and redirects (not followed) need a human.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from integrations.base import (
    ConnectorContext,
    ConnectorError,
    GrantResult,
    GrantSpec,
    idempotency_key,
    register_connector,
)
from policy.resources import Resource

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1 << 20
RETRYABLE_CLIENT_ERRORS = frozenset({408, 409, 429})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Accessbot-Signature`` value for a body sent at ``timestamp`` (unix seconds, as sent)."""
    message = b"v1:" + timestamp.encode() + b":" + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class WebhookConnector:
    """POSTs signed JSON to ``url`` for every grant, extension and revocation (protocol: module docstring)."""

    shared_access = False  # the receiver is told each grant id and decides

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None,
        resources: Iterable[Resource],
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret or None
        self._resources = list(resources)
        self._timeout = timeout
        self._clock = clock
        parts = urlsplit(url)
        self._target = (
            f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"  # no secrets
        )
        if self._secret is None:
            log.warning("webhook %s: no secret configured; calls to %s are not signed", name, self._target)

    def catalog(self) -> list[Resource]:
        return list(self._resources)

    def grant(self, grant: GrantSpec) -> GrantResult:
        answer = self._post("grant", grant, grant.expires_at, key=idempotency_key("grant", grant.grant_id))
        credentials = answer.get("credentials")
        external_ref = answer.get("external_ref")
        note = answer.get("note")
        return GrantResult(
            external_ref=str(external_ref) if external_ref is not None else None,
            credentials={str(k): str(v) for k, v in credentials.items()}
            if isinstance(credentials, dict)
            else {},
            note=note if isinstance(note, str) else "",
        )

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        self._post("extend", grant, until, key=idempotency_key("extend", grant.grant_id, until))

    def revoke(self, grant: GrantSpec) -> None:
        self._post("revoke", grant, None, key=idempotency_key("revoke", grant.grant_id))

    def _post(self, action: str, grant: GrantSpec, until: datetime | None, *, key: str) -> dict[str, Any]:
        """Send one signed call; return the JSON object answered (empty if none), or raise ConnectorError."""
        payload = {"action": action, "grant": grant.as_json(), "until": _iso(until)}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "accessbot-webhook/1",
            "X-Accessbot-Timestamp": timestamp,
            "Idempotency-Key": key,
        }
        if self._secret is not None:
            headers["X-Accessbot-Signature"] = signature(self._secret, timestamp, body)
        request = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        what = f"webhook {self.name}: {action} of grant {grant.grant_id} at {self._target}"
        try:
            with _opener().open(request, timeout=self._timeout) as response:
                status, raw = response.status, response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            exc.close()
            retryable = exc.code >= 500 or exc.code in RETRYABLE_CLIENT_ERRORS
            raise ConnectorError(
                f"{what} failed: HTTP {exc.code} {exc.reason}", retryable=retryable
            ) from None
        except urllib.error.URLError as exc:
            reason = (
                "timed out" if isinstance(exc.reason, TimeoutError) else f"could not connect ({exc.reason})"
            )
            raise ConnectorError(f"{what} failed: {reason}") from None
        except TimeoutError:
            raise ConnectorError(f"{what} failed: timed out after {self._timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectorError(f"{what} failed: {type(exc).__name__}: {exc}") from None
        log.info("webhook %s: %s of grant %s done (HTTP %s)", self.name, action, grant.grant_id, status)
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return {}  # a 2xx with a non-JSON body is still done
        return answer if isinstance(answer, dict) else {}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


@register_connector("webhook")
def webhook_connector(config: Any, ctx: ConnectorContext) -> WebhookConnector:
    """Factory for ``type: webhook`` (config: name, url, secret_env, timeout_seconds, catalog_resources())."""
    secret = None
    if config.secret_env:
        secret = ctx.env.get(config.secret_env)
        if not secret:
            raise ConnectorError(
                f"webhook {config.name}: environment variable {config.secret_env} (the secret) is not set",
                retryable=False,
            )
    return WebhookConnector(
        config.name, config.url, secret, config.catalog_resources(), timeout=config.timeout_seconds
    )
