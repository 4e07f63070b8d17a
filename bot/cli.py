"""The ``accessbot`` command line (SPEC §2). Errors go to stderr with a non-zero exit code.

Exit codes: 0 done, 1 the command failed (a config that does not validate, a request that cannot be revoked),
2 wrong usage or the bot cannot start (``serve``'s start-up checks, :mod:`bot.startup`), 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, cli_message, exit_code
from bot.settings import Settings
from bot.startup import StartupError, load_settings
from policy.errors import AccessError
from policy.validation import ConfigError, load_config_file, warnings

MAX_ID = 2**31 - 1  # ids are INTEGER columns
REQUEST_STATES = ("pending", "granting", "active", "denied", "canceled", "timed_out", "failed", "expired", "revoked")
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (exit 2) or the help (exit 0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except AccessError as exc:
        print(cli_message(exc), file=sys.stderr)
        return exit_code(exc)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    from bot.version import version

    parser = argparse.ArgumentParser(prog="accessbot", description="Just-in-time access from Slack.")
    parser.add_argument("--version", action="version", version=f"accessbot {version()}")
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the bot (Socket Mode with SLACK_APP_TOKEN, else HTTP)")
    serve.add_argument("--http", action="store_true", help="HTTP mode even when SLACK_APP_TOKEN is set")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--host", default="0.0.0.0")
    serve.set_defaults(func=_serve)

    from bot.demo.main import add_arguments
    from bot.demo.main import run as run_demo

    demo = sub.add_parser("demo", help="the whole product in a browser, no Slack workspace needed")
    add_arguments(demo)
    demo.set_defaults(func=run_demo)

    check = sub.add_parser("check-config", help="validate the config and describe each flow")
    check.add_argument("file", nargs="?", help="default: $ACCESSBOT_CONFIG or ./accessbot.yml")
    check.add_argument("--schema", action="store_true", help="print the JSON Schema of the file")
    check.set_defaults(func=_check_config)

    explain = sub.add_parser("explain", help="what a user may request, for how long, approved by whom")
    explain.add_argument("--user", required=True, help="email or Slack id")
    explain.add_argument("--resource", default="", help="only resources whose name contains TEXT")
    explain.add_argument("--config", help="default: $ACCESSBOT_CONFIG")
    explain.set_defaults(func=_explain)

    db = sub.add_parser("db", help="database operations").add_subparsers(metavar="ACTION")
    db.add_parser("upgrade", help="apply migrations").set_defaults(func=_db_upgrade)
    db.add_parser("current", help="the migration the database is at").set_defaults(func=_db_current)
    db.add_parser("history", help="every migration, newest first").set_defaults(func=_db_history)
    downgrade = db.add_parser("downgrade", help="undo migrations down to REV (base: all of them)")
    downgrade.add_argument("revision", metavar="REV", help="a revision from `accessbot db history`, -1, or base")
    downgrade.set_defaults(func=_db_downgrade)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(metavar="ACTION")
    export = audit.add_parser("export", help="print the audit trail")
    export.add_argument("--since", help="ISO date/time (UTC when no offset)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.set_defaults(func=_audit_export)

    requests = sub.add_parser("requests", help="admin operations on requests").add_subparsers(metavar="ACTION")
    listing = requests.add_parser("list", help="list requests")
    listing.add_argument("--state", action="append", choices=REQUEST_STATES, metavar="STATE",
                         help=f"filter by state (repeatable): {', '.join(REQUEST_STATES)}")
    listing.add_argument("--limit", type=_bounded(1, 10_000), default=50)
    listing.set_defaults(func=_requests_list)
    revoke = requests.add_parser("revoke", help="revoke a request's access now")
    revoke.add_argument("id", type=_bounded(1, MAX_ID), help="the request id")
    revoke.add_argument("--reason", default="revoked by an admin from the shell")
    revoke.set_defaults(func=_requests_revoke)

    mfa = sub.add_parser("mfa", help="second factor administration").add_subparsers(metavar="ACTION")
    reset = mfa.add_parser("reset", help="remove a user's MFA enrolment (a lost authenticator); audited")
    reset.add_argument("user", help="the Slack user id (U…), or an email the directory knows")
    reset.add_argument("--reason", default="reset by an admin from the shell")
    reset.set_defaults(func=_mfa_reset)
    return parser


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits only (``int`` would take ``٣`` or ``1_000``), from ``low`` to ``high``."""

    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text):
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (ASCII digits 0-9 only)")
        if len(text) > len(str(high)) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text[:40]}{'…' if len(text) > 40 else ''} is out of range "
                                             f"({low} to {high})")
        return int(text)

    return parse


# --- config -------------------------------------------------------------------------------------------------


def _settings() -> Settings:
    return load_settings()


def _config_path(explicit: str | None) -> str:
    return explicit or _settings().config_path


def _check_config(args: argparse.Namespace) -> int:
    from policy.config import Config

    if args.schema:
        schema = Config.model_json_schema(by_alias=True, mode="validation")
        schema["title"] = "accessbot.yml"
        print(json.dumps(schema, indent=2))
        return EXIT_OK
    from policy.describe import describe_flow, describe_labels

    path = _config_path(args.file)
    config = load_config_file(path)
    print(f"{path}: valid — {len(config.flows)} flow(s), {len(config.integrations)} integration(s)")
    for flow in config.flows:
        labels = describe_labels(flow)
        print(f"  - {describe_flow(flow, config)}" + (f" [{labels}]" if labels else ""))
    for problem in warnings(config):
        print(f"  {problem}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from bot.lifecycle.explain import explain_user

    config = load_config_file(_config_path(args.config))
    print(explain_user(config, args.user, datetime.now(UTC), resource_text=args.resource))
    return EXIT_OK


# --- database -----------------------------------------------------------------------------------------------


def _container(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.container import build
    from bot.lifecycle.policy_holder import PolicyHolder
    from store.db import Database

    db = Database(settings.database_url)
    db.upgrade()
    import os

    return build(db=db, policy=PolicyHolder.from_file(settings.config_path), secrets=settings.secret_box(),
                 env=os.environ)


def _database():  # type: ignore[no-untyped-def]
    from bot.startup import check_database, check_database_url
    from store.db import Database

    url = _settings().database_url
    check_database_url(url)
    check_database(url)
    return Database(url)


def _db_upgrade(args: argparse.Namespace) -> int:
    _database().upgrade()
    print("database is at the latest schema")
    return EXIT_OK


def _db_current(args: argparse.Namespace) -> int:
    import io

    from store import schema

    out = io.StringIO()
    schema.current(_database(), stdout=out)
    print(out.getvalue().strip() or "no migration applied (an empty database): run `accessbot db upgrade`")
    return EXIT_OK


def _db_history(args: argparse.Namespace) -> int:
    from store import schema

    schema.history()
    return EXIT_OK


def _db_downgrade(args: argparse.Namespace) -> int:
    import io

    from store import schema

    db = _database()
    schema.downgrade(db, args.revision)
    out = io.StringIO()
    schema.current(db, stdout=out)
    print(f"database is at {out.getvalue().strip() or 'base (no migration applied)'}")
    return EXIT_OK


def _audit_export(args: argparse.Namespace) -> int:
    from store import audit as audit_log
    from store.db import Database

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise ValueError(f"--since {args.since!r} is not an ISO date or date-time") from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    settings = _settings()
    db = Database(settings.database_url)
    db.upgrade()
    with db.begin() as session:
        rows = [
            {"id": e.id, "at": e.at.isoformat(), "event": e.event, "actor": e.actor, "request_id": e.request_id,
             "grant_id": e.grant_id, "details": e.details}
            for e in audit_log.audit_events(since=since, session=session)
        ]
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    else:
        fields = ["id", "at", "event", "actor", "request_id", "grant_id", "details"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "details": json.dumps(row["details"], sort_keys=True)})
    return EXIT_OK


def _requests_list(args: argparse.Namespace) -> int:
    from policy.durations import format_duration

    container = _container(_settings())
    records = container.service.list(states=args.state, limit=args.limit)
    print(f"{'ID':>6}  {'STATE':<10} {'FLOW':<20} {'REQUESTER':<24} {'WHAT':<40} {'DURATION':>9}  GRANTS")
    for r in records:
        what = f"{r.permission} on {', '.join(r.resource_names)}"[:40]
        grants = ", ".join(
            f"{g.id}:{g.state}" + (f" ({g.attempts} failed: {g.last_error[:40]})" if g.last_error else "")
            for g in r.grants
        )
        print(f"{r.id:>6}  {r.state:<10} {r.flow_name[:20]:<20} {(r.requester_email or r.requester_id)[:24]:<24} "
              f"{what:<40} {format_duration(r.duration):>9}  {grants}")
    if not records:
        print("(no requests)")
    return EXIT_OK


def _requests_revoke(args: argparse.Namespace) -> int:
    from policy.identity import Identity

    container = _container(_settings())
    operator = Identity(slack_id=None, email="shell-admin@accessbot")
    record = container.revoking.revoke(args.id, operator, reason=args.reason, as_admin=True)
    states = ", ".join(f"grant {g.id}: {g.state}" for g in record.grants) or "no grants"
    print(f"request #{record.id} is {record.state} ({states})")
    return EXIT_OK if all(g.state not in ("active", "granting") for g in record.grants) else EXIT_ERROR


def _mfa_reset(args: argparse.Namespace) -> int:
    from bot.lifecycle.mfa_reset import reset_mfa, slack_user_of

    container = _container(Settings())
    user_id = slack_user_of(args.user, container.directory, container.clock)
    reset_mfa(container.db, container.events, container.clock, user_id, actor="shell-admin@accessbot",
              reason=args.reason, details={"os_user": getpass.getuser()})
    print(f"MFA enrolment of {user_id} removed; they enrol again with /access mfa")
    return EXIT_OK


# --- serve --------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from bot.runtime import serve

    return serve(_settings(), http=args.http, host=args.host, port=args.port)  # StartupError: exit 2, one line


if __name__ == "__main__":
    raise SystemExit(main())
