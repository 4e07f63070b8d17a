"""The building blocks of the config models: strict models, durations, names, time zones, rule errors."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from policy.durations import format_duration, parse_duration

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": ["string", "number"], "examples": ["30m", "1.5h", "2d", 4]}),
]
Op = Literal["is", "is_not", "contains", "does_not_contain", "starts_with", "ends_with"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RequestFor = Literal["themselves", "direct_reports", "others"]
Name = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_timezone), Field(examples=["UTC", "Europe/Berlin"])]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def rule_error(message: str, at: str) -> PydanticCustomError:
    """A model-level rule broken by the key ``at`` (dotted, relative to the model): the YAML path names it."""
    return PydanticCustomError("config_rule", message, {"at": at})


def shared_strings(written: dict[str, str], seen: dict[tuple[tuple[str, str], ...], dict[str, str]]) -> dict[str, str]:
    """``written`` as the one mapping (interned keys and values) kept in ``seen`` for equal mappings: a large
    config's thousands of equal tags or attributes become one object, not one copy per item."""
    items = tuple(written.items())
    shared = seen.get(items)
    if shared is None:
        shared = seen[items] = {sys.intern(k): sys.intern(v) for k, v in items}
    return shared
