"""Config reload: a valid new file takes over; an invalid one is refused and the old config stays in force."""

from __future__ import annotations

import os
import platform
from datetime import timedelta
from pathlib import Path

import pytest

from bot.lifecycle.policy_holder import PolicyHolder, limit_malloc_arenas
from policy.resources import Resource
from policy.validation import ConfigError, load_config_file
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


def test_discovering_the_same_resources_again_keeps_the_policy_in_force(tmp_path: Path) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(CONFIG)
    holder = PolicyHolder.from_file(str(path))
    first = holder.current
    holder.set_discovered({})  # nothing to discover (no `discover: true`): nothing to recompile
    assert holder.current is first

    found = Resource(integration="db", type="database", name="found-later")
    holder.set_discovered({"db": [found]})
    assert holder.current is not first
    assert holder.current.catalog.resource(found.key) == found
    second = holder.current
    holder.set_discovered({"db": [Resource(integration="db", type="database", name="found-later")]})
    assert holder.current is second  # equal resources: the same catalog
    holder.set_discovered({})
    assert holder.current.catalog.resource(found.key) is None  # gone from the connector: gone from the catalog


def test_a_holder_of_a_config_read_earlier_reloads_a_change_made_since(tmp_path: Path) -> None:
    path = tmp_path / "accessbot.yml"
    path.write_text(CONFIG)
    os.utime(path, (1, 1))
    mtime = os.path.getmtime(path)
    config = load_config_file(str(path))  # as the start-up checks read it
    path.write_text(CONFIG.replace("grant_for: 4h", "grant_for: 6h"))  # changed before the holder exists
    os.utime(path, (2, 2))

    holder = PolicyHolder.from_config(config, str(path), mtime=mtime)
    assert holder.current.config is config  # not read again
    assert holder.reload_if_changed() is True
    assert holder.current.flows["read-any"].flow.grant_for == timedelta(hours=6)


def test_malloc_arenas_are_capped_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's environment wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() is glibc
