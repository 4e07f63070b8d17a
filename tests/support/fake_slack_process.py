"""The fake Slack in a process of its own (for benchmarks: the bot under test then has its interpreter to itself).

    python -m tests.support.fake_slack_process --users 2000 --prefix UOUT --latency 0
    -> prints "http://127.0.0.1:PORT/api/" on the first line, then serves until stdin closes.

``--users N`` creates users PREFIX00000 … (so DMs to them resolve); recorded calls are counted, and the count of
successful chat.postMessage calls is printed on exit.
"""

from __future__ import annotations

import argparse
import sys

from tests.support.fake_slack import FakeSlack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--prefix", default="UOUT")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--also", default="", help="more user ids, comma-separated")
    args = parser.parse_args()
    fake = FakeSlack()
    for n in range(args.users):
        user_id = f"{args.prefix}{n:05d}"
        fake.add_user(user_id, f"{user_id.lower()}@example.com")
    for user_id in filter(None, args.also.split(",")):
        fake.add_user(user_id, f"{user_id.lower()}@example.com")
    fake.latency = args.latency
    with fake:
        print(fake.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        print(len(fake.timed_calls("chat.postMessage")), flush=True)


if __name__ == "__main__":
    main()
