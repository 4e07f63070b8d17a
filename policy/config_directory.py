"""The ``directory`` section of ``accessbot.yml``: users and on-call schedules (rotation, PagerDuty, Opsgenie)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator, with_config

from policy.config_base import Duration, StrictModel, TimeZoneName, rule_error, shared_strings


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A person of the directory. A slotted dataclass that pydantic validates, not a model: a directory has tens
    of thousands, and a model carries a ``__dict__`` and a set of the fields given (~1 KB a user)."""

    email: Annotated[str, Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")]
    slack_id: str | None = None
    groups: list[str] = dataclass_field(default_factory=list)
    manager: str | None = None
    attributes: dict[str, str] = dataclass_field(default_factory=dict)


class Rotation(StrictModel):
    every: Duration
    starts: datetime
    members: list[str] = Field(min_length=1)


class PagerDutySource(StrictModel):
    """The schedule's on-call read from PagerDuty (``GET /oncalls``); the API token comes from the environment."""

    schedule_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9]+$")
    token_env: str = Field(min_length=1)


class OpsgenieSource(StrictModel):
    """The schedule's on-call read from Opsgenie (``GET /v2/schedules/{name}/on-calls``), by schedule name."""

    schedule: str = Field(min_length=1)
    token_env: str = Field(min_length=1)


ONCALL_SOURCES = ("rotation", "pagerduty", "opsgenie")


class OncallSchedule(StrictModel):
    """A schedule whose on-call comes from exactly one of a static ``rotation``, ``pagerduty`` or ``opsgenie``."""

    schedule: str = Field(min_length=1)
    timezone: TimeZoneName = "UTC"
    rotation: Rotation | None = None
    pagerduty: PagerDutySource | None = None
    opsgenie: OpsgenieSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OncallSchedule:
        given = [name for name in ONCALL_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            written = ", ".join(given) if given else "none"
            raise rule_error(
                f"give exactly one of rotation, pagerduty, opsgenie (written: {written})",
                given[1] if len(given) > 1 else "rotation",
            )
        return self

    @property
    def provider(self) -> Literal["pagerduty", "opsgenie"] | None:
        """The incident tool this schedule is read from, or None for a static rotation."""
        if self.pagerduty is not None:
            return "pagerduty"
        if self.opsgenie is not None:
            return "opsgenie"
        return None


class Directory(StrictModel):
    slack_usergroups: bool = False
    users: list[DirectoryUser] = []
    oncall: list[OncallSchedule] = []

    @model_validator(mode="after")
    def _share_values(self) -> Directory:
        """One string for each repeated group name and manager, one mapping for each repeated set of attributes.

        The values are equal either way; only the copies the parser made of each are dropped (DirectoryUser is
        frozen for its users; this is the validation finishing it).
        """
        intern = sys.intern
        attributes_seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        for user in self.users:
            if user.groups:
                object.__setattr__(user, "groups", [intern(g) for g in user.groups])
            if user.manager:
                object.__setattr__(user, "manager", intern(user.manager))
            if user.attributes:
                object.__setattr__(user, "attributes", shared_strings(user.attributes, attributes_seen))
        return self
