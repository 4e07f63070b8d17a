"""The demo's view of the connectors: every grant, extension and revocation, and the webhook calls received.

:class:`RecordingConnector` wraps any connector (it still does the real work: the webhook really POSTs to the
demo, ``--postgres`` really creates roles) and writes what it was asked and what came of it to the side panel.
:func:`receive_webhook` is the webhook connector's endpoint inside the demo: it checks the signature as a
receiver would and answers like a deploy system.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.demo.workspace import Workspace
from integrations.base import Connector, ConnectorError, GrantResult, GrantSpec
from integrations.webhook import signature
from policy.resources import Resource

MAX_SKEW_SECONDS = 300


@dataclass
class RecordingConnector:
    inner: Connector
    workspace: Workspace
    name: str = ""
    shared_access: bool = False

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.shared_access = self.inner.shared_access

    def catalog(self) -> list[Resource]:
        return self.inner.catalog()

    def grant(self, grant: GrantSpec) -> GrantResult:
        result: GrantResult = self._run("grant", grant, None, lambda: self.inner.grant(grant))
        return result

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        self._run("extend", grant, until, lambda: self.inner.extend(grant, until))

    def revoke(self, grant: GrantSpec) -> None:
        self._run("revoke", grant, None, lambda: self.inner.revoke(grant))

    def _run(self, operation: str, grant: GrantSpec, until: datetime | None, work: Any) -> Any:
        what = (f"{grant.permission.name} on {grant.resource.name} for {grant.grantee_email or grant.grantee_slack_id}"
                f" (grant {grant.grant_id})")
        detail: dict[str, Any] = {"connector": type(self.inner).__name__, "grant": grant.as_json()}
        if until is not None:
            detail["until"] = until.isoformat()
        try:
            result = work()
        except ConnectorError as exc:
            detail["error"] = str(exc)
            self.workspace.record("connector", f"{self.name}: {operation} failed", f"{what}: {exc}", detail, ok=False)
            raise
        if isinstance(result, GrantResult):  # credentials stay in the grantee's DM, never in the panel
            detail["result"] = {"external_ref": result.external_ref, "note": result.note,
                                "credentials": sorted(result.credentials)}
        self.workspace.record("connector", f"{self.name}: {operation}", what, detail)
        return result


def receive_webhook(ws: Workspace, name: str, secret: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One call of the webhook connector: verify it as a receiver should, record it, answer 2xx."""
    timestamp = headers.get("x-accessbot-timestamp", "")
    sent = headers.get("x-accessbot-signature", "")
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_SKEW_SECONDS
    valid = fresh and hmac.compare_digest(signature(secret, timestamp, body), sent)
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body.decode("utf-8", errors="replace")
    action = payload.get("action", "?") if isinstance(payload, dict) else "?"
    grant = (payload.get("grant") or {}) if isinstance(payload, dict) else {}
    summary = (f"{action} {grant.get('permission', '')} on {(grant.get('resource') or {}).get('name', '')}"
               f" · signature {'valid' if valid else 'INVALID'}")
    ws.record("webhook", f"POST /webhooks/{name}", summary,
              {"headers": {k: v for k, v in headers.items() if k.startswith(("x-", "idempotency", "content-type"))},
               "body": payload, "signature_valid": valid}, ok=valid)
    if not valid:
        return 401, b'{"error": "bad signature"}'
    answer = {"external_ref": f"demo-{name}-{grant.get('id')}",
              "note": f"The demo's {name} endpoint recorded this {action}."} if action == "grant" else {}
    return 200, json.dumps(answer).encode()
