"""``accessbot demo [--config FILE] [--port 8000] [--open] [--postgres URL]``: run until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import webbrowser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="an accessbot.yml to try (default: the demo config shipped with accessbot)")
    parser.add_argument("--port", type=int, default=8000, help="the page's port on 127.0.0.1 (default 8000)")
    parser.add_argument("--open", action="store_true", help="open the page in the browser")
    parser.add_argument("--postgres", metavar="URL",
                        help="make the config's PostgreSQL integrations real, against this server")


def run(args: argparse.Namespace) -> int:
    from bot.demo.server import Demo  # here, so that the rest of the CLI does not load the bot to parse arguments

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number")
    try:
        demo = Demo(args.config, port=args.port, postgres_url=args.postgres).start()
    except OSError as exc:
        raise ValueError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); try --port 8001") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"accessbot demo: open {demo.url}  (the bot: {demo.bot_url}slack/events; Ctrl-C stops)", flush=True)
    if args.open:
        webbrowser.open(demo.url)
    try:
        while not stop.wait(timeout=1.0):  # woken each second: a signal another thread took is seen (bot.runtime)
            pass
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
        print("accessbot demo: stopped", file=sys.stderr)
    return 0
