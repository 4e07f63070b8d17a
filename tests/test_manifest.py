"""manifest.yml: valid against the Slack app manifest schema, and declaring what the bot really uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifest.yml"
# the shared schema beside the checkout when there is one; a copy of it in tests/data for a clone on its own
SCHEMA = next(
    path for path in (REPO.parent / "shared" / "slack-app-manifest.schema.json",
                      REPO / "tests" / "data" / "slack-app-manifest.schema.json")
    if path.exists() or path.parent.name == "data"
)

ENDPOINT_PATH = "/slack/events"
EVENTS = {"app_home_opened", "user_change", "team_join", "subteam_created", "subteam_updated",
          "subteam_members_changed"}
# the bot scope each Slack Web API method the code calls needs (https://api.slack.com/methods)
METHOD_SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    "conversations_open": {"im:write"},
    "users_info": {"users:read", "users:read.email"},  # identities in accessbot.yml are email addresses
    "users_lookupByEmail": {"users:read.email"},
    "users_list": {"users:read", "users:read.email"},  # the directory's copy of the workspace
    "auth_test": set(),
    "usergroups_list": {"usergroups:read"},
    "usergroups_users_list": {"usergroups:read"},
    "usergroups_users_update": {"usergroups:write"},
    "files_upload_v2": {"files:write"},
    "views_open": set(),
    "views_update": set(),
    "views_publish": set(),
    "apps_connections_open": set(),  # Socket Mode, with the app-level token (connections:write, not a bot scope)
}
CALL = re.compile(r"\.((?:chat|conversations|users|usergroups|views|files|team|apps|auth)_[A-Za-z0-9_]+)\(")


def methods_the_code_calls() -> set[str]:
    return {
        match for folder in ("bot", "handlers", "integrations")
        for path in (REPO / folder).rglob("*.py")
        for match in CALL.findall(path.read_text(encoding="utf-8"))
    }


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_manifest_matches_the_slack_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_names(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "accessbot"
    assert manifest["features"]["bot_user"]["display_name"] == "accessbot"


def test_slash_command(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/access"
    assert command["description"]
    assert command["usage_hint"] == "[help|list|flows|mfa|extend ID [HOURS]|revoke ID|cancel ID]"
    assert command["url"].endswith(ENDPOINT_PATH)
    assert command["should_escape"] is False


def test_interactivity_and_events_share_the_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    interactivity = settings["interactivity"]
    assert interactivity["is_enabled"] is True
    urls = {
        interactivity["request_url"],
        interactivity["message_menu_options_url"],
        settings["event_subscriptions"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    }
    assert len(urls) == 1 and urls.pop().startswith("https://")


def test_events(manifest: dict[str, Any]) -> None:
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == sorted(EVENTS)
    assert "user_events" not in manifest["settings"]["event_subscriptions"]


def test_scopes_are_the_ones_the_bot_uses(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    bot = scopes["bot"]
    assert len(bot) == len(set(bot)), "duplicate scopes"
    methods = methods_the_code_calls()
    unknown = methods - METHOD_SCOPES.keys()
    assert not unknown, f"add the scopes of these Slack methods to METHOD_SCOPES: {sorted(unknown)}"
    needed = {"commands"}.union(*(METHOD_SCOPES[m] for m in methods))
    assert set(bot) == needed, f"missing: {sorted(needed - set(bot))}; unused: {sorted(set(bot) - needed)}"
    assert not scopes.get("user"), "accessbot needs no user-token scopes"


def test_app_home_and_settings(manifest: dict[str, Any]) -> None:
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True,  # the bot does not read DMs: /access and buttons do everything
    }
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["token_rotation_enabled"] is False
    assert settings["org_deploy_enabled"] is False
