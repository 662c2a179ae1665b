"""pydantic 1's error shapes, as Provena's services (FastAPI 0.88 on pydantic 1.10) emit them, from the
pydantic-2 errors the sandbox's models raise. Expected texts are pydantic 1.10.17's."""

from __future__ import annotations

from typing import Any

import pytest
from ProvenaInterfaces import ProvenanceAPI, RegistryModels
from pydantic import BaseModel, ValidationError

from provena_ops.sandbox.http import v1_dump, v1_error


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return [dict(e) for e in raised.value.errors()]


@pytest.mark.parametrize(
    ("depth", "message", "kind", "limit"),
    [
        (0, "ensure this value is greater than or equal to 1", "value_error.number.not_ge", 1),
        (4, "ensure this value is less than or equal to 3", "value_error.number.not_le", 3),
    ],
)
def test_number_limits(depth: int, message: str, kind: str, limit: int) -> None:
    request = {"id": "x", "item_subtype": "STUDY", "depth": depth}
    (error,) = errors_of(ProvenanceAPI.GenerateReportRequest, request)
    assert v1_error(error) == {"loc": ["depth"], "msg": message, "type": kind, "ctx": {"limit_value": limit}}
    assert v1_dump(ProvenanceAPI.GenerateReportRequest, [error]) == (
        f"1 validation error for GenerateReportRequest\ndepth\n  {message} (type={kind}; limit_value={limit})"
    )


def test_an_enum_error_names_the_members_in_a_dump_and_their_values_in_a_422() -> None:
    data = {"id": "x", "item_subtype": "NOPE", "depth": 1}
    (error,) = errors_of(ProvenanceAPI.GenerateReportRequest, data)
    members = list(RegistryModels.ItemSubType)
    assert v1_error(error)["ctx"] == {"enum_values": [m.value for m in members]}
    assert v1_dump(ProvenanceAPI.GenerateReportRequest, [error]).endswith(
        f"(type=type_error.enum; enum_values={members!r})"
    )
