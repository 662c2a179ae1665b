"""The plan: what apply will do, record by record, field by field. Saved as JSON (schemas/plan.schema.json).

A plan is exact (apply does what it says and nothing else), complete (every record touched, every field
changed, the graph impact, every connection found) and stale-proof (each record read is fingerprinted,
so apply can refuse when the registry changed since).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from provena_ops.plan.actions import ActionLike, Actions
from provena_ops.safety.scalars import exactly

PLAN_FORMAT: Literal[1] = 1

ActionKind = Literal["update", "relink", "delete_model_run", "delete_study", "relodge", "restore"]
Outcome = Literal["change", "unchanged", "not_found"]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldChange(Frozen):
    """One field of one record: its value now and after apply (None = absent)."""

    field: str
    before: Any = None
    after: Any = None


class GraphImpact(Frozen):
    """What a model-run deletion removes from the provenance graph (Provena's trial-mode delete)."""

    nodes_removed: int
    links_removed: int
    node_references_removed: int  # nodes kept because other records still use them
    link_references_removed: int


class Restoration(Frozen):
    """What the registry admin import (contract 4.10) puts back: a deleted record as it was before the
    run that deleted it (the item with its history, who may see and change it, its lock state), or the
    item fields of an edited model run that Provena's update job resets (`fields`, over the item as it
    is then, its history kept)."""

    item: dict[str, Any] | None = None
    access: dict[str, Any] | None = Field(None, description="AccessSettings: owner, general, groups.")
    lock: dict[str, Any] | None = Field(None, description="LockInformation: locked, and the lock history.")
    overwrite: bool = Field(
        False, description="Import over the record that holds the id now (only when --force names it)."
    )
    fields: dict[str, Any] | None = Field(
        None, description="Item fields put back after the update job (user_metadata, record_status)."
    )


class Neighbour(Frozen):
    """A record next to another in the provenance graph."""

    id: str
    subtype: str
    name: str | None = None


class Action(Frozen):
    key: str = Field(description="Unique within the plan, e.g. 'update 10378.1/1690054'.")
    kind: ActionKind
    record_id: str
    subtype: Literal["MODEL_RUN", "STUDY"]
    display_name: str | None = None
    operations: list[int] = Field(description="Indexes of the playbook operations that asked for this.")
    outcome: Outcome
    why: str | None = Field(None, description="Why nothing happens, for unchanged and not-found actions.")
    reason: str | None = Field(None, description="The reason Provena records in the item's history.")
    changes: list[FieldChange] = Field(default_factory=list)
    record: dict[str, Any] | None = Field(None, description="The ModelRunRecord apply submits (updates).")
    graph: GraphImpact | None = None
    stale_link_to: str | None = Field(
        None,
        description="A study only the provenance graph still links this run to: the record is re-submitted "
        "unchanged, which makes Provena's update job remove that link.",
    )
    restoration: Restoration | None = Field(None, description="What a restore action imports.")
    depends_on: list[str] = Field(
        default_factory=list, description="Keys of actions that must succeed first."
    )
    warnings: list[str] = Field(default_factory=list)
    side_effects: list[str] = Field(default_factory=list)
    overridden: list[str] = Field(
        default_factory=list,
        description="For a study deletion: the linked model runs whose fate model_run_overrides decided.",
    )
    downstream: list[Neighbour] = Field(
        default_factory=list,
        description="For a model-run deletion: the records downstream of the run in the graph (what it "
        "generated, and what used that) that the plan does not delete; they lose that provenance.",
    )


class Problem(Frozen):
    """Something that makes the plan impossible to apply; apply refuses a plan with problems."""

    message: str
    hint: str
    operation: int | None = None
    record_id: str | None = None


class Skipped(Frozen):
    """A record the plan leaves alone although the playbook names it: locked, in an operation with
    `skip_locked: true`, or an action that depends on one that is."""

    record_id: str
    subtype: Literal["MODEL_RUN", "STUDY"]
    display_name: str | None = None
    operation: int
    reason: str


class Summary(Frozen):
    update: int = 0
    relink: int = 0
    delete: int = 0
    relodge: int = 0
    restore: int = 0
    unchanged: int = 0
    not_found: int = Field(0, description="Deletion targets that are not in the registry (typos, or gone).")
    skipped: int = Field(0, description="Records left alone by skip_locked (see the plan's `skipped`).")
    problems: int = 0

    @property
    def changes(self) -> int:
        return self.update + self.relink + self.delete + self.relodge + self.restore

    def line(self) -> str:
        """The same categories as the JSON counts; those that are rare are said only when present."""
        parts = [f"{self.update} to update"]
        if self.relink:
            parts.append(f"{self.relink} to relink")
        parts.append(f"{self.delete} to delete")
        if self.relodge:
            parts.append(f"{self.relodge} to relodge")
        if self.restore:
            parts.append(f"{self.restore} to restore")
        parts.append(f"{self.unchanged} unchanged")
        if self.not_found:
            parts.append(f"{self.not_found} not found")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        text = "Plan: " + ", ".join(parts) + "."
        if self.problems:
            text += (
                f" {self.problems} problem{'s' if self.problems != 1 else ''}: this plan cannot be applied."
            )
        return text


class OperationTargets(Frozen):
    """The records an operation resolved to (selectors and names expanded and pinned)."""

    operation: int
    op: str
    model_runs: list[str] = Field(default_factory=list)
    studies: list[str] = Field(default_factory=list)
    excluded: list[str] = Field(
        default_factory=list, description="Model runs its selectors chose and their exclude left out."
    )
    summary: Summary | None = Field(
        None, description="The counts of this operation's actions (those it was the first to ask for)."
    )


class PlaybookInfo(Frozen):
    file: str
    name: str
    sha256: str


class EnvironmentInfo(Frozen):
    name: str
    stage: str
    registry: str = Field(
        description="The registry API URL read, or 'sandbox:<database path>' for the embedded sandbox."
    )


class Outlier(Frozen):
    record_id: str
    measure: Literal["nodes", "links"]
    value: int
    average: float


class DeletionImpact(Frozen):
    """The graph impact of a plan's model-run deletions, for runs that have a graph."""

    runs: int
    nodes_removed: int
    links_removed: int
    average_nodes: float
    average_links: float
    outliers: list[Outlier] = Field(
        default_factory=list, description="Runs removing more than two standard deviations above average."
    )


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", title="provena-ops plan")

    plan_format: Annotated[Literal[1], exactly(PLAN_FORMAT)] = PLAN_FORMAT
    playbook: PlaybookInfo
    environment: EnvironmentInfo
    planned_by: str
    created_at: str = Field(
        description="When the plan was made (ISO 8601, UTC); the only non-repeatable field."
    )
    targets: list[OperationTargets]
    fingerprints: dict[str, str] = Field(
        description="sha256 of every record read, or 'absent'; '<study id>#links' digests the model runs "
        "found linked to a study being deleted. Apply refuses the plan if any changed."
    )
    actions: Actions
    problems: list[Problem] = Field(default_factory=list)
    skipped: list[Skipped] = Field(
        default_factory=list, description="Records named but left alone (skip_locked), with the reason."
    )
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="The --var and --var-file values the plan was made with (`apply --plan` uses them).",
    )
    targeted: list[str] = Field(
        default_factory=list,
        description="The --target record ids the plan was narrowed to (empty: the whole playbook).",
    )
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list, description="What Provena does besides the listed changes."
    )
    deletion_impact: DeletionImpact | None = None
    summary: Summary

    @property
    def has_changes(self) -> bool:
        return self.summary.changes > 0


def fingerprint(item: dict[str, Any] | None) -> str:
    """Stable digest of a record as read; `absent` when it does not exist."""
    if item is None:
        return "absent"
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def links_fingerprint(graph: list[str], registry: list[str]) -> str:
    """Digest of what links to a study (through the graph and the registry): a run linked to it after
    planning makes the plan stale, as a changed record does."""
    return fingerprint({"graph": sorted(graph), "registry": sorted(registry)})


def summarise(actions: Iterable[ActionLike], problems: list[Problem], skipped: int = 0) -> Summary:
    counts = {
        "update": 0,
        "relink": 0,
        "delete": 0,
        "relodge": 0,
        "restore": 0,
        "unchanged": 0,
        "not_found": 0,
    }
    for action in actions:
        if action.outcome == "unchanged":
            counts["unchanged"] += 1
        elif action.outcome == "not_found":
            counts["not_found"] += 1
        elif action.kind in ("delete_model_run", "delete_study"):
            counts["delete"] += 1
        else:
            counts[action.kind] += 1
    return Summary(**counts, skipped=skipped, problems=len(problems))
