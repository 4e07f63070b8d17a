"""A fake Slack Web API on 127.0.0.1 that records every call.

Point `slack_sdk.WebClient(token="xoxb-test", base_url=fake.url)` (or the bot's `SLACK_API_URL`) at it:

    with FakeSlack() as fake:
        fake.add_user("U1", "ada@example.com")
        client = WebClient(token="xoxb-test", base_url=fake.url)
        client.chat_postMessage(channel="U1", text="hi")
        assert fake.calls_to("chat.postMessage")[0]["text"] == "hi"

It answers like Slack: `{"ok": true, ...}` with Slack's response shapes, `{"ok": false, "error": ...}` for
unknown ids and invalid Block Kit, HTTP 429 with `Retry-After` for failures injected with `fail_next`. Bodies
may be form-encoded, JSON or a GET query; the token comes from the Authorization header (or a `token`
argument, which is not recorded in `args`). Structured form fields (`blocks`, `view`, ...) are recorded
decoded. Response URLs handed out in Slack payloads can point at `fake.hooks_url`; posts there are recorded
as calls to the method `"response_url"`.

Like the real thing it can be slow and busy: `latency` (seconds, every Web API call; `method_latency` per method)
delays each answer without holding up other calls; `fail_next` injects 429 bursts with `Retry-After` or 500s per
method; `channel_limit` refuses (429, `Retry-After: 1`) a chat.postMessage to a channel that already had its
messages this second; users.list pages with a cursor (at most 1000 a page, `limit_required` without a limit
past 1000 members). `apps.connections.open` takes only an app-level token (`xapp-…`,
which no other method takes: `not_allowed_token_type`) and hands out `socket_mode_url` (a `FakeSocketMode`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.fake_slack_methods import APP_TOKEN_METHODS, METHODS, apps_connections_open, receive_upload
from tests.support.fake_slack_workspace import (
    BOT_USER_ID,
    SlackError,
    Upload,
    Workspace,
    decode_json_fields,
    make_user,
    make_usergroup,
)

__all__ = ["Call", "FakeSlack", "Upload"]


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    failed: bool = False
    error: str | None = None
    at: float = 0.0  # time.monotonic() when the call reached the fake (before its latency)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    times: int
    after: int = 0  # calls still answered before this failure starts


class FakeSlack:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._workspace = Workspace()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.hooks_url = ""
        self.socket_mode_url = ""  # where apps.connections.open sends the app: `FakeSocketMode.url`
        self.latency = 0.0  # seconds added to every Web API call
        self.method_latency: dict[str, float] = {}  # per method, instead of `latency`
        self._channel_limit: tuple[float, int] | None = None  # (messages per second, burst) per channel
        self._channel_sends: dict[str, list[float]] = {}
        self._channel_failures: dict[str, list[int]] = {}  # channel -> [Retry-After, answers left] (429s)
        self.paced_refusals = 0  # chat.postMessage calls refused by `channel_limit`
        self._workspace.users[BOT_USER_ID] = make_user(
            BOT_USER_ID, None, name="accessbot", real_name="accessbot", tz="UTC", deleted=False, is_bot=True
        )

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        port = server.server_address[1]
        root = f"http://127.0.0.1:{port}/"
        self.url, self.hooks_url = f"{root}api/", f"{root}hooks/"
        self._workspace.base_url = root
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-slack-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- recorded calls ---------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def timed_calls(self, method: str) -> list[Call]:
        """The calls to `method` that succeeded, with when they arrived (`Call.at`)."""
        with self._lock:
            return [call for call in self._calls if call.method == method and not call.failed]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [call.args for call in self._calls if call.method == method]

    def clear(self) -> None:
        """Forgets the recorded calls (the workspace's users, groups, views and messages stay)."""
        with self._lock:
            self._calls.clear()

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_to(method)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                recorded = [call.method for call in self.calls]
                raise AssertionError(
                    f"expected {count} call(s) to {method} within {timeout}s, got {len(found)}; "
                    f"recorded: {recorded}"
                )
            time.sleep(0.01)

    # --- workspace state --------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        email: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "UTC",
        deleted: bool = False,
        is_bot: bool = False,
    ) -> None:
        user = make_user(
            user_id, email, name=name, real_name=real_name, tz=tz, deleted=deleted, is_bot=is_bot
        )
        with self._lock:
            self._workspace.users[user_id] = user

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        with self._lock:
            self._workspace.usergroups[group_id] = make_usergroup(group_id, handle, users)

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """User objects by id, as `users.info` returns them (includes the bot user UBOT)."""
        return self._workspace.users

    @property
    def usergroups(self) -> dict[str, dict[str, Any]]:
        """User groups by id; `["users"]` is the current membership."""
        return self._workspace.usergroups

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Every view opened, pushed, updated or published, by view id, as Slack returned it."""
        return self._workspace.views

    @property
    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Messages currently in Slack by (channel, ts): posts, as updated, minus deletions."""
        return self._workspace.messages

    @property
    def uploads(self) -> dict[str, Upload]:
        """Files by file id: filename, length, data (once uploaded), title and channel (once completed)."""
        return self._workspace.uploads

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._workspace.views.get(self._workspace.home_views.get(user_id, ""))

    def last_view(self, callback_id: str | None = None) -> dict[str, Any]:
        """The modal opened, pushed or updated last (with that callback_id if given), with id and hash."""
        with self._lock:
            modals = [
                v
                for v in self._workspace.views.values()
                if v.get("type") == "modal" and (callback_id is None or v.get("callback_id") == callback_id)
            ]
            if not modals:
                raise AssertionError(f"no modal view with callback_id={callback_id!r} was opened")
            return max(modals, key=lambda v: int(v["hash"].split(".")[0]))

    def fail_next(
        self,
        method: str,
        *,
        error: str = "ratelimited",
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next `times` calls to `method` fail so (once `after` more calls have been answered)."""
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(error, status, retry_after, times, after))

    def rate_limit(self, method: str, *, times: int, retry_after: int = 1, after: int = 0) -> None:
        """A burst of `times` HTTP 429 answers (`Retry-After` seconds) to `method`, after `after` answered calls."""
        self.fail_next(method, error="ratelimited", status=429, retry_after=retry_after, times=times, after=after)

    def rate_limit_channel(self, channel: str, *, times: int, retry_after: int) -> None:
        """The next `times` chat.postMessage calls to `channel` answer HTTP 429 with `Retry-After` seconds."""
        with self._lock:
            self._channel_failures[channel] = [retry_after, times]

    def channel_limit(self, per_second: float = 1.0, *, burst: int = 1) -> None:
        """Refuse chat.postMessage beyond `burst` messages per `1/per_second` seconds to one channel."""
        with self._lock:
            self._channel_limit = (per_second, burst)

    # --- request handling (called from the server's threads) --------------------------------------

    def _delay(self, method: str) -> None:
        delay = self.method_latency.get(method, self.latency)
        if delay > 0:
            time.sleep(delay)  # Slack's latency: this call waits, the others go on

    def _paced_out(self, method: str, args: dict[str, Any]) -> bool:
        if self._channel_limit is None or method != "chat.postMessage":
            return False
        per_second, burst = self._channel_limit
        window = burst / per_second
        now = time.monotonic()
        channel = str(args.get("channel") or "")
        sends = [t for t in self._channel_sends.get(channel, []) if now - t < window]
        if len(sends) >= burst:
            self._channel_sends[channel] = sends
            self.paced_refusals += 1
            return True
        self._channel_sends[channel] = [*sends, now]
        return False

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        if failure.after > 0:
            failure.after -= 1
            return None
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    def _handle_api(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        arrived = time.monotonic()
        self._delay(method)
        with self._lock:
            failure = self._take_failure(method)
            if failure is not None:
                self._calls.append(Call(method, args, token, True, failure.error, arrived))
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                return failure.status, {"ok": False, "error": failure.error}, headers
            held = self._channel_failures.get(str(args.get("channel") or "")) if method == "chat.postMessage" else None
            if held is not None and held[1] > 0:
                held[1] -= 1
                self._calls.append(Call(method, args, token, True, "ratelimited", arrived))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(held[0])}
            if self._paced_out(method, args):
                self._calls.append(Call(method, args, token, True, "ratelimited", arrived))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
            try:
                if token is None:
                    raise SlackError("not_authed")
                app_level = token.startswith("xapp-")
                if not app_level and not token.startswith("xox"):
                    raise SlackError("invalid_auth")
                implementation = METHODS.get(method)
                if implementation is None:
                    raise SlackError("unknown_method", req_method=method)
                if app_level != (method in APP_TOKEN_METHODS):
                    raise SlackError("not_allowed_token_type")
                if implementation is apps_connections_open:
                    body = apps_connections_open(self._workspace, args, self.socket_mode_url)
                else:
                    body = implementation(self._workspace, args)
            except SlackError as exc:
                self._calls.append(Call(method, args, token, True, exc.error, arrived))
                return 200, exc.body, {}
            self._calls.append(Call(method, args, token, at=arrived))
            return 200, body, {}

    def _handle_hook(self, path: str, args: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        arrived = time.monotonic()
        self._delay("response_url")
        with self._lock:
            failure = self._take_failure("response_url")
            if failure is not None:
                self._calls.append(Call("response_url", dict(args, _path=path), None, True, failure.error, arrived))
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                return failure.status, failure.error.encode(), headers
            self._calls.append(Call("response_url", dict(args, _path=path), None, at=arrived))
            return 200, b"ok", {}

    def _handle_upload(self, file_id: str, data: bytes) -> bool:
        with self._lock:
            return receive_upload(self._workspace, file_id, data)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # like a real server: socketserver's 5 drops concurrent connections (1 s SYN retries)


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        parsed = json.loads(raw.decode("utf-8"))
        return parsed if isinstance(parsed, dict) else {"_body": parsed}
    return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._dispatch(b"")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            self._dispatch(self.rfile.read(length) if length else b"")

        def _dispatch(self, raw: bytes) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path.startswith("/api/"):
                args = dict(parse_qsl(parts.query, keep_blank_values=True))
                try:
                    args.update(_parse_body(self.headers.get("Content-Type") or "", raw))
                except ValueError:
                    self._reply(200, {"ok": False, "error": "invalid_json"})
                    return
                header = self.headers.get("Authorization") or ""
                token = header[7:] if header.startswith("Bearer ") else None
                body_token = args.pop("token", None)
                status, body, headers = fake._handle_api(
                    path[len("/api/") :], decode_json_fields(args), token or body_token or None
                )
                self._reply(status, body, headers)
            elif path.startswith("/upload/v1/") and self.command == "POST":
                if fake._handle_upload(path[len("/upload/v1/") :], raw):
                    self._reply(200, f"OK - {len(raw)}".encode(), content_type="text/plain")
                else:
                    self._reply(404, b"file not found", content_type="text/plain")
            elif path.startswith("/hooks/") and self.command == "POST":
                try:
                    args = _parse_body(self.headers.get("Content-Type") or "application/json", raw)
                except ValueError:
                    self._reply(400, b"invalid_payload", content_type="text/plain")
                    return
                status, text, headers = fake._handle_hook(path, args)
                self._reply(status, text, headers, content_type="text/plain")
            else:
                self._reply(404, b"not found", content_type="text/plain")

        def _reply(
            self,
            status: int,
            body: dict[str, Any] | bytes,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json; charset=utf-8",
        ) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
