"""A loopback fake of PagerDuty's and Opsgenie's on-call endpoints (the real services cannot be reached here).

It serves what accessbot reads, the way the real APIs do:

* PagerDuty ``GET /oncalls`` (REST API v2): ``Authorization: Token token=…``, ``schedule_ids[]``,
  ``include[]=users`` (without it a user is a reference with no email), ``since``/``until`` (entries that overlap
  the window), ``limit``/``offset`` paging with ``more``; 401 for a wrong token.
* Opsgenie ``GET /v2/schedules/{identifier}/on-calls``: ``Authorization: GenieKey …``,
  ``scheduleIdentifierType=name`` (default id), ``flat=true`` for ``onCallRecipients`` (else
  ``onCallParticipants``); 404 for an unknown schedule, 422 for a missing key.

``down = True`` answers 503 to everything; ``delay`` holds each answer back (a slow provider).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PD_TOKEN = "pd-test-token"
OG_KEY = "og-test-key"


@dataclass
class PagerDutyShift:
    email: str
    start: datetime
    end: datetime | None


@dataclass
class FakeOncall:
    pagerduty: dict[str, list[PagerDutyShift]] = field(default_factory=dict)  # schedule id -> entries
    opsgenie: dict[str, list[str]] = field(default_factory=dict)  # schedule name -> usernames on call
    down: bool = False
    delay: float = 0.0
    page_size_cap: int = 100
    requests: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
                status, body = fake.answer(self.path, dict(self.headers))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); as a real server, just drop it

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the stdlib's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def calls(self, path_start: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].startswith(path_start)]

    # --- the APIs --------------------------------------------------------------------------------------------

    def answer(self, raw_path: str, headers: dict[str, str]) -> tuple[int, Any]:
        parsed = urlparse(raw_path)
        query = parse_qs(parsed.query)
        self.requests.append({"path": parsed.path, "query": query, "headers": headers})
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            return 503, {"error": {"message": "Service Unavailable"}}
        if parsed.path == "/oncalls":
            return self._pagerduty(query, headers)
        prefix, suffix = "/v2/schedules/", "/on-calls"
        if parsed.path.startswith(prefix) and parsed.path.endswith(suffix):
            return self._opsgenie(unquote(parsed.path[len(prefix):-len(suffix)]), query, headers)
        return 404, {"error": "not found"}

    def _pagerduty(self, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Token token={PD_TOKEN}":
            return 401, {"error": {"message": "Unauthorized", "code": 2006}}
        since = datetime.fromisoformat(query["since"][0])
        until = datetime.fromisoformat(query["until"][0])
        with_users = "users" in query.get("include[]", [])
        entries = []
        for schedule_id in query.get("schedule_ids[]", []):
            for shift in self.pagerduty.get(schedule_id, []):
                if shift.start < until and (shift.end is None or shift.end > since):
                    user: dict[str, Any] = {"id": "P" + shift.email.split("@")[0].upper(),
                                            "summary": shift.email.split("@")[0].title()}
                    user |= {"type": "user", "name": user["summary"], "email": shift.email} if with_users else {
                        "type": "user_reference"}
                    entries.append({
                        "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference"},
                        "escalation_level": 1,
                        "schedule": {"id": schedule_id, "type": "schedule_reference"},
                        "user": user,
                        "start": shift.start.isoformat(),
                        "end": shift.end.isoformat() if shift.end else None,
                    })
        limit = min(int(query.get("limit", ["25"])[0]), self.page_size_cap)
        offset = int(query.get("offset", ["0"])[0])
        page = entries[offset:offset + limit]
        return 200, {"oncalls": page, "limit": limit, "offset": offset, "more": offset + limit < len(entries),
                     "total": None}

    def _opsgenie(self, identifier: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        if headers.get("Authorization") != f"GenieKey {OG_KEY}":
            return 422, {"message": "Key format is not valid!", "took": 0.0, "requestId": "r1"}
        if query.get("scheduleIdentifierType", ["id"])[0] != "name" or identifier not in self.opsgenie:
            return 404, {"message": f"No schedule exists with identifier [{identifier}]", "took": 0.0,
                         "requestId": "r2"}
        people = self.opsgenie[identifier]
        data: dict[str, Any] = {"_parent": {"id": "d875e654", "name": identifier, "enabled": True}}
        if query.get("flat", ["false"])[0] == "true":
            data["onCallRecipients"] = list(people)
        else:
            data["onCallParticipants"] = [{"id": f"u{i}", "name": p, "type": "user"} for i, p in enumerate(people)]
        return 200, {"data": data, "took": 0.01, "requestId": "r3"}
