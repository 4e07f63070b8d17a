"""A fake Slack Socket Mode server on 127.0.0.1: it says hello, pushes envelopes and records the acknowledgements.

Slack's side of Socket Mode: the app calls `apps.connections.open` with its app-level token (`xapp-…`) and
connects to the WebSocket URL it gets back; Slack sends `{"type": "hello", ...}`, then one envelope per
request, and the app acknowledges each with `{"envelope_id": ..., "payload": ...}` (the payload only when
the ack carries a response). Route the fake Slack Web API here with `fake.socket_mode_url = socket_mode.url`:

    with FakeSlack() as fake, FakeSocketMode() as socket_mode:
        fake.socket_mode_url = socket_mode.url
        ... start the bot with SLACK_APP_TOKEN=xapp-… and SLACK_API_URL=fake.url ...
        socket_mode.wait_connected()
        envelope_id = socket_mode.slash_command("U1", "help", response_url=fake.hooks_url + "commands/1")
        ack = socket_mode.wait_for_ack(envelope_id)

Envelopes have Slack's wire format: `{"envelope_id", "type": "slash_commands" | "interactive" |
"events_api", "payload", "accepts_response_payload"}` (events also carry `retry_attempt`/`retry_reason`).
`disconnect()` sends Slack's `{"type": "disconnect", "reason": "refresh_requested"}`: a well-behaved app opens
a new connection. The server is `websockets`' threaded implementation; each connection gets its own thread.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.support.slack_sender import APP_ID, command_payload, event_callback, interactive_envelope

__all__ = ["FakeSocketMode", "SocketConnection"]



@dataclass
class SocketConnection:
    """One WebSocket connection the app opened: the path it asked for and what it sent (acks, anything else)."""

    path: str
    connection: ServerConnection
    received: list[dict[str, Any]] = field(default_factory=list)
    hello_sent: bool = False
    closed: bool = False


class FakeSocketMode:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._connections: list[SocketConnection] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        if self._server is not None:
            return self
        # no compression and no server pings: slack_sdk's builtin client offers no extensions and pings itself
        server = serve(self._serve_connection, "127.0.0.1", 0, compression=None, ping_interval=None)
        port = server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/link/"
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"fake-socket-mode-{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            for connection in self.connections:
                connection.connection.close()
            server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- connections and acknowledgements ---------------------------------------------------------

    @property
    def connections(self) -> list[SocketConnection]:
        with self._lock:
            return list(self._connections)

    @property
    def current(self) -> SocketConnection:
        """The newest open connection that was said hello to."""
        with self._lock:
            live = [c for c in self._connections if c.hello_sent and not c.closed]
        if not live:
            raise AssertionError("the app has no open Socket Mode connection")
        return live[-1]

    def wait_connected(self, count: int = 1, timeout: float = 15.0) -> SocketConnection:
        """Waits until `count` connections in all were opened and said hello to; returns the newest open one."""
        self._wait(lambda: len([c for c in self.connections if c.hello_sent]) >= count, timeout,
                   lambda: f"expected {count} Socket Mode connection(s) within {timeout}s, "
                           f"got {len(self.connections)}")
        return self.current

    def received(self) -> list[dict[str, Any]]:
        """Every message the app sent, over all connections, in order per connection."""
        with self._lock:
            return [message for c in self._connections for message in c.received]

    def acks(self) -> list[dict[str, Any]]:
        return [m for m in self.received() if "envelope_id" in m]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def acked() -> bool:
            found[:] = [m for m in self.acks() if m["envelope_id"] == envelope_id]
            return bool(found)

        self._wait(acked, timeout, lambda: f"envelope {envelope_id} was not acknowledged within {timeout}s; "
                                           f"received: {self.received()}")
        return found[0]

    # --- what Slack sends -------------------------------------------------------------------------

    def send(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        envelope_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Pushes one envelope over the current connection; returns its envelope id."""
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            **extra,
        }
        self.current.connection.send(json.dumps(envelope))
        return envelope_id

    def slash_command(
        self, user_id: str, text: str, *, response_url: str, command: str = "/access", channel_id: str = "C0GENERAL"
    ) -> str:
        payload = command_payload(user_id, text, response_url=response_url, command=command, channel_id=channel_id)
        return self.send("slash_commands", payload, accepts_response_payload=True)

    def interactive(self, payload: dict[str, Any], *, accepts_response_payload: bool = False) -> str:
        """An interactive payload (block_actions, view_submission, ...) as the HTTP form's `payload` carries it."""
        return self.send("interactive", interactive_envelope(payload),
                         accepts_response_payload=accepts_response_payload)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_attempt: int = 0) -> str:
        payload = event_callback(event, event_id=event_id, id_prefix="Ev0SOCK")
        return self.send("events_api", payload, retry_attempt=retry_attempt,
                         retry_reason="timeout" if retry_attempt else "")

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's warning that it will close the current connection: the app should open a new one."""
        self.current.connection.send(json.dumps({"type": "disconnect", "reason": reason,
                                                 "debug_info": {"host": "fake-socket-mode"}}))

    # --- server side (one thread per connection) --------------------------------------------------

    def _serve_connection(self, connection: ServerConnection) -> None:
        request = connection.request
        link = SocketConnection(request.path if request is not None else "", connection)
        with self._lock:
            self._connections.append(link)
            number = len(self._connections)
        try:
            connection.send(json.dumps({
                "type": "hello",
                "num_connections": number,
                "debug_info": {"host": "fake-socket-mode", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            }))
            link.hello_sent = True
            for message in connection:
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = {"_raw": message}
                with self._lock:
                    link.received.append(parsed if isinstance(parsed, dict) else {"_raw": parsed})
        except ConnectionClosed:
            pass
        finally:
            link.closed = True

    @staticmethod
    def _wait(done: Any, timeout: float, describe: Any) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise AssertionError(describe())
            time.sleep(0.01)
