"""Pydantic models of ``accessbot.yml`` (SPEC §3).

Every model forbids unknown keys. Durations accept ``90s``, ``30m``, ``1.5h``, ``2d`` or a bare number of
hours. Cross-references (integrations, permissions, bundles, scopes, spaces) are checked by
:func:`policy.validation.validate_config`, which reports each problem with its YAML path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
    with_config,
)

from policy.config_base import ALL_DAYS as ALL_DAYS
from policy.config_base import Day as Day
from policy.config_base import Duration as Duration
from policy.config_base import Name as Name
from policy.config_base import Op as Op
from policy.config_base import RequestFor as RequestFor
from policy.config_base import StrictModel as StrictModel
from policy.config_base import TimeZoneName as TimeZoneName
from policy.config_base import rule_error as rule_error
from policy.config_base import shared_strings
from policy.config_directory import Directory as Directory
from policy.config_directory import DirectoryUser as DirectoryUser
from policy.config_directory import OncallSchedule as OncallSchedule
from policy.config_directory import OpsgenieSource as OpsgenieSource
from policy.config_directory import PagerDutySource as PagerDutySource
from policy.config_directory import Rotation as Rotation
from policy.durations import format_duration, parse_duration
from policy.resources import Permission, Resource, Risk

# --- attribute conditions -----------------------------------------------------------------------------------


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ValueError("a condition value is text, a number or true/false")


class Condition(StrictModel):
    """``{attribute: group, op: is, values: [sre]}``; several values mean any of them."""

    attribute: str = Field(min_length=1)
    op: Op = "is"
    values: list[
        Annotated[
            str,
            BeforeValidator(_value_text),
            Field(json_schema_extra={"type": ["string", "number", "boolean"]}),
        ]
    ] = Field(min_length=1)


class ConditionSet(StrictModel):
    """Conditions combined with ``match: all`` (AND, default) or ``match: any`` (OR)."""

    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1)


def _owner_condition(conditions: ConditionSet | None) -> int | None:
    """The index of the first ``owner`` condition (an approver-only attribute), or None."""
    if conditions is None:
        return None
    return next((i for i, c in enumerate(conditions.conditions) if c.attribute == "owner"), None)


class Space(StrictModel):
    name: Name
    admins: list[str] = []
    members: ConditionSet | None = None

    @model_validator(mode="after")
    def _no_owner(self) -> Space:
        owner_at = _owner_condition(self.members)
        if owner_at is not None:
            raise rule_error("attribute `owner` applies to approvers only, not to space members",
                             f"members.conditions.{owner_at}.attribute")
        return self


# --- integrations -------------------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class ResourceDef:
    """A resource written in the config. A slotted dataclass that pydantic validates, not a model: a catalog has
    100,000 of them, and a model carries a ``__dict__`` and a set of the fields given (~1 KB a resource here)."""

    type: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    path: str = ""
    source_id: str = ""
    tags: dict[str, str] = dataclass_field(default_factory=dict)
    risk_level: Risk | None = None


class PermissionDef(StrictModel):
    roles: list[str] = []
    risk_level: Risk | None = None


class IntegrationBase(StrictModel):
    name: Name
    owners: list[str] = []
    risk_level: Risk = "medium"
    resources: list[ResourceDef] = []
    permissions: dict[str, PermissionDef] = Field(min_length=1)
    _catalog: tuple[tuple[object, ...], tuple[Resource, ...]] = PrivateAttr(default=((), ()))

    @model_validator(mode="after")
    def _compact(self) -> IntegrationBase:
        """Equal values of the resources shared (the file repeats them), and their catalog values built once.

        Pydantic runs this again when a validated integration is validated as part of a config (as the items of
        a config read in parts are): then there is nothing left to do.
        """
        if not self._catalog_is_current():
            _share_values(self.resources)
            self._catalog = (self._catalog_source(), _catalog_values(self.name, self.risk_level, self.resources))
        return self

    def _catalog_source(self) -> tuple[object, ...]:
        return (self.resources, self.name, self.risk_level)

    def _catalog_is_current(self) -> bool:
        source, current = self._catalog[0], self._catalog_source()
        return len(source) == len(current) and all(a is b for a, b in zip(source, current, strict=True))

    def catalog_resources(self) -> list[Resource]:
        """The static resources of this integration as catalog values.

        Built once, when the integration is validated; the catalog and the connector share these values.
        """
        if not self._catalog_is_current():  # a model_copy(update=…) of name, risk_level or resources
            self._catalog = (self._catalog_source(), _catalog_values(self.name, self.risk_level, self.resources))
        return list(self._catalog[1])

    def catalog_permissions(self) -> dict[str, Permission]:
        return {
            name: Permission(
                integration=self.name, name=name, risk=p.risk_level or self.risk_level, roles=tuple(p.roles)
            )
            for name, p in self.permissions.items()
        }


def _share_values(resources: list[ResourceDef]) -> None:
    """One string for each repeated type, path and tag (interned), one mapping for each repeated set of tags.

    The values are equal either way; only the copies the parser made of each are dropped. ResourceDef is frozen
    for its users; this is the validation finishing it.
    """
    intern = sys.intern
    tags_seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for resource in resources:
        object.__setattr__(resource, "type", intern(resource.type))
        if resource.path:
            object.__setattr__(resource, "path", intern(resource.path))
        if resource.tags:
            object.__setattr__(resource, "tags", shared_strings(resource.tags, tags_seen))


def _catalog_values(integration: str, risk: Risk, resources: list[ResourceDef]) -> tuple[Resource, ...]:
    sorted_tags: dict[int, tuple[tuple[str, str], ...]] = {}  # by id of the (shared) tags mapping
    values = []
    for r in resources:
        tags = sorted_tags.get(id(r.tags))
        if tags is None:
            tags = sorted_tags[id(r.tags)] = tuple(sorted(r.tags.items()))
        values.append(Resource(
            integration=integration,
            type=r.type,
            name=r.name,
            path=r.path,
            source_id=r.source_id or f"{r.type}:{r.name}",
            tags=tags,
            risk=r.risk_level or risk,
        ))
    return tuple(values)


class PostgresIntegration(IntegrationBase):
    type: Literal["postgresql"]
    dsn_env: str = Field(min_length=1)
    discover: bool = False


class SlackUsergroupIntegration(IntegrationBase):
    type: Literal["slack_usergroup"]


class WebhookIntegration(IntegrationBase):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret_env: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class NoopIntegration(IntegrationBase):
    """Grants nothing outside accessbot: for trials, demos and tests."""

    type: Literal["noop"]


Integration = Annotated[
    PostgresIntegration | SlackUsergroupIntegration | WebhookIntegration | NoopIntegration,
    Field(discriminator="type"),
]


# --- targets, bundles, scopes -------------------------------------------------------------------------------


class ResourceSelector(StrictModel):
    """Exactly one of ``any``, ``except``, ``names``, ``tags``, ``query``."""

    any: bool | None = None
    except_: list[str] | None = Field(default=None, alias="except")
    names: list[str] | None = None
    tags: dict[str, str] | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ResourceSelector:
        chosen = [k for k in ("any", "except_", "names", "tags", "query") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of any, except, names, tags, query")
        if self.any is False:
            raise ValueError("`any: false` selects nothing; use names, tags, except or query")
        return self


class IntegrationTarget(StrictModel):
    integration: str
    resource_type: str | None = None
    permissions: list[str] = Field(min_length=1)
    resources: ResourceSelector = ResourceSelector(any=True)


class BundleTarget(StrictModel):
    bundle: str


class ScopeTarget(StrictModel):
    access_scope: str
    permissions: list[str] | None = None


_TARGET_TAGS = {"integration": "IntegrationTarget", "bundle": "BundleTarget", "access_scope": "ScopeTarget"}
"""Union tags of the target kinds; capitalised so that they never read as a YAML key in an error's path."""


def _target_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in _TARGET_TAGS.items():
            if key in value:
                return tag
        return None
    if isinstance(value, IntegrationTarget | BundleTarget | ScopeTarget):
        return type(value).__name__
    return None


Target = Annotated[
    Annotated[IntegrationTarget, Tag("IntegrationTarget")]
    | Annotated[BundleTarget, Tag("BundleTarget")]
    | Annotated[ScopeTarget, Tag("ScopeTarget")],
    Discriminator(
        _target_kind,
        custom_error_type="target",
        custom_error_message="a target has one of the keys integration, bundle or access_scope",
    ),
]


class Bundle(StrictModel):
    name: Name
    targets: list[IntegrationTarget] = Field(min_length=1)


class AccessScope(StrictModel):
    name: Name
    query: str = Field(min_length=1)


# --- flows --------------------------------------------------------------------------------------------------


class Window(StrictModel):
    days: list[Day] = Field(default=list(ALL_DAYS), min_length=1)
    from_: time = Field(alias="from")
    to: time
    timezone: TimeZoneName | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        if isinstance(value, int) and 0 <= value < 24 * 60 * 60:  # YAML reads 08:00 as sexagesimal 480
            return time(value // 3600, (value // 60) % 60) if value >= 1440 else time(value // 60, value % 60)
        if isinstance(value, str) and ("+" in value or value.endswith("Z") or value.count("-")):
            raise ValueError("write a wall-clock time like 08:00; the window's `timezone` says which zone")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Window:
        if self.from_ == self.to:
            raise rule_error("`from` and `to` are the same time; use `when: always` for all day", "to")
        return self


class Extend(StrictModel):
    max_times: int = Field(default=0, ge=0, le=10)
    each: Duration = timedelta(minutes=30)


class Escalation(StrictModel):
    every: Duration = timedelta(minutes=30)
    tiers: list[ConditionSet] = Field(min_length=1, max_length=5)


class Approval(StrictModel):
    type: Literal["automatic", "approvers"] = "automatic"
    combine: Literal["any_of", "all_of"] = "any_of"
    channel: str | None = Field(default=None, pattern=r"^[CG][A-Z0-9]{2,}$")
    notify: Literal["dm", "channel", "both"] = "dm"
    distinct_approvers: bool = False
    groups: list[ConditionSet] = []
    escalation: Escalation | None = None
    pending_timeout: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _consistent(self) -> Approval:
        if self.type == "approvers" and not self.groups:
            raise rule_error("approval type `approvers` needs at least one group in `groups`", "groups")
        if self.type == "automatic" and self.escalation:
            raise rule_error(
                "`escalation` needs `type: approvers`; an automatic approval never escalates", "escalation"
            )
        if self.type == "automatic" and self.groups:
            raise rule_error("`groups` need `type: approvers`; an automatic approval asks nobody", "groups")
        if self.distinct_approvers and self.combine != "all_of":
            raise rule_error("`distinct_approvers` applies to `combine: all_of` only", "distinct_approvers")
        if self.notify != "dm" and self.channel is None:
            raise rule_error(f"`notify: {self.notify}` needs `channel: C…` (the channel to post the request to)",
                             "notify")
        if self.channel is not None and self.type != "approvers":
            raise rule_error("`channel` needs `type: approvers`; an automatic approval asks nobody", "channel")
        return self


class FlowSettings(StrictModel):
    require_mfa: bool = False
    require_justification: bool = True
    require_approver_reason: bool = False
    no_self_approval: bool = True
    break_glass: bool = False


GrantFor = Annotated[
    timedelta | None,
    BeforeValidator(lambda v: None if v == "indefinite" else parse_duration(v)),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": ["string", "number"], "examples": ["4h", "indefinite"]}),
]


MIN_GRANT_FOR = timedelta(minutes=1)


class Flow(StrictModel):
    name: Name
    type: Literal["self_serve", "automatic"] = "self_serve"
    space: str | None = None
    labels: list[str] = []
    when: Literal["always"] | Window = "always"
    requestors: ConditionSet
    request_for: list[RequestFor] = Field(
        default_factory=lambda: list[RequestFor](["themselves"]), min_length=1
    )
    grantees: ConditionSet | None = None
    targets: list[Target] = Field(min_length=1)
    grant_for: GrantFor = timedelta(hours=1)
    require_duration: bool = False
    extend: Extend = Extend()
    approval: Approval = Approval()
    settings: FlowSettings = FlowSettings()
    description: str = Field(default="", max_length=300)

    @field_validator("grant_for")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < MIN_GRANT_FOR:
            raise rule_error(
                f"grant_for {format_duration(value)} is under one minute; allowed: 1m or more, or `indefinite`", ""
            )
        return value

    @field_validator("requestors", "grantees")
    @classmethod
    def _no_owner(cls, value: ConditionSet | None, info: ValidationInfo) -> ConditionSet | None:
        owner_at = _owner_condition(value)
        if owner_at is not None:
            raise rule_error(
                "attribute `owner` applies to approvers only (approval.groups, escalation tiers), "
                f"not to {info.field_name}", f"conditions.{owner_at}.attribute"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Flow:
        if self.settings.break_glass and self.type != "self_serve":
            raise rule_error("`break_glass` applies to self-serve flows only", "settings.break_glass")
        if self.grant_for is not None and self.extend.max_times and self.extend.each > self.grant_for:
            raise rule_error(
                f"extend.each ({format_duration(self.extend.each)}) is longer than grant_for "
                f"({format_duration(self.grant_for)})",
                "extend.each",
            )
        if self.type == "automatic" and self.approval.type != "automatic":
            raise rule_error(
                "an automatic flow grants while the requestors match; it takes no approvers", "approval.type"
            )
        return self

    @property
    def max_duration(self) -> timedelta | None:
        return self.grant_for


class Config(StrictModel):
    admins: list[str] = []
    spaces: list[Space] = []
    audit_channel: str | None = None
    timezone: TimeZoneName = "UTC"
    reminder_before: Duration = timedelta(minutes=10)
    directory: Directory = Directory()
    integrations: list[Integration] = []
    bundles: list[Bundle] = []
    access_scopes: list[AccessScope] = []
    flows: list[Flow] = []
