"""Config reload: a valid new file takes over; an invalid one is refused and the old config stays in force."""

from __future__ import annotations

import os
from pathlib import Path

from bot.lifecycle.policy_holder import PolicyHolder
from policy.validation import ConfigError
from tests.bot.fixtures import CONFIG


def test_reload_refuses_a_bad_file_and_keeps_the_old_config(tmp_path: Path) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(CONFIG)
    holder = PolicyHolder.from_file(str(path))
    refused: list[ConfigError] = []
    holder.on_refused.append(refused.append)
    assert set(holder.current.flows) == {"read-any", "write-prod", "staging-auto"}

    path.write_text(CONFIG.replace("grant_for: 4h", "grant_for: -4h"))
    os.utime(path, (1, 1))
    assert holder.reload_if_changed() is False
    assert refused and "flows[0].grant_for" in str(refused[0])
    assert holder.current.flows["read-any"].flow.grant_for is not None
    assert holder.current.flows["read-any"].flow.grant_for.total_seconds() == 4 * 3600

    path.write_text(CONFIG.replace("grant_for: 4h", "grant_for: 6h"))
    os.utime(path, (2, 2))
    assert holder.reload_if_changed() is True
    assert holder.current.flows["read-any"].flow.grant_for.total_seconds() == 6 * 3600  # type: ignore[union-attr]
    assert holder.reload_if_changed() is False  # unchanged file: nothing to do
