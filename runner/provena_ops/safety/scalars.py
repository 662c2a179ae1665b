"""Value types that refuse what pydantic's lax mode would quietly convert, for files people and tools write.

`Literal[1]` accepts `true` and `1.0`, `int` accepts `true` and `"5"`, `bool` accepts `"yes"` and `1`: a
YAML `version: yes` or a time of `true` would pass. These types take the value as written or refuse it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool, StrictInt
from pydantic_core import PydanticCustomError

EXACT_NUMBER = "exact_number"
BLANK = r"\S"  # the pattern of text that is not only whitespace (unanchored: one visible character)
LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z


def exactly(expected: int) -> BeforeValidator:
    """A format number is that integer and nothing equal to it."""

    def check(value: Any) -> Any:
        if type(value) is not int or value != expected:
            raise PydanticCustomError(
                EXACT_NUMBER,
                "Input should be exactly {expected} (the number), not {given}",
                {"expected": expected, "given": repr(value)},
            )
        return value

    return BeforeValidator(check)


UnixSeconds = Annotated[StrictInt, Field(ge=0, le=LATEST_TIME, description="Unix seconds.")]
Flag = StrictBool
