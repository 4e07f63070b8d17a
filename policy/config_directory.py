"""The ``directory`` section of ``accessbot.yml``: users and on-call schedules (rotation, PagerDuty, Opsgenie)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from policy.config_base import Duration, StrictModel, TimeZoneName, rule_error


class DirectoryUser(StrictModel):
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    slack_id: str | None = None
    groups: list[str] = []
    manager: str | None = None
    attributes: dict[str, str] = {}


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
