"""Rules that span fields and operations, checked offline on a structurally valid playbook.

Only what the playbook itself proves is checked here (records named by id or exact display name);
selectors are expanded, and checked the same way, by the planner against live state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from provena_ops.playbook.diagnostics import Diagnostic, KeyPath, format_path
from provena_ops.playbook.model import (
    ConnectionStrategy,
    DeleteModelRuns,
    DeleteStudies,
    LinkStudies,
    ModelRunRef,
    Operation,
    OperationModel,
    RelodgeModelRuns,
    Restore,
    StudyDeletion,
    StudyRef,
    UpdateModelRuns,
)
from provena_ops.playbook.yaml_source import SourceMap


def ref_key(ref: ModelRunRef | StudyRef | StudyDeletion) -> str | None:
    """A stable name for a record reference the playbook pins down, or None for selectors."""
    if ref.id is not None:
        return ref.id
    if ref.display_name is not None:
        return f"named {ref.display_name!r}"
    return None


@dataclass(slots=True)
class _Use:
    """One place where the playbook touches a model run (150,000 of them for a playbook listing as many
    ids: slots, and the operation's fields shared, not copied)."""

    path: KeyPath
    operation: int
    kind: str  # delete | update | link | relodge | relink
    study: str | None = None  # link/relink target, as a ref key ("" = remove the link)
    fields: dict[str, Any] = field(default_factory=dict)


class _Checker:
    def __init__(self, operations: list[tuple[int, Operation]], source: SourceMap) -> None:
        self.operations = operations
        self.source = source
        self.found: list[Diagnostic] = []
        self.deleted_studies: dict[str, KeyPath] = {}
        self.runs: dict[str, list[_Use]] = {}
        self.references: list[tuple[KeyPath, str, str]] = []  # (path, record id, what the field names)

    def error(
        self,
        path: KeyPath,
        message: str,
        expected: str,
        hint: str,
        severity: Literal["error", "warning"] = "error",
    ) -> None:
        self.found.append(self.source.diagnostic(path, message, expected, hint, severity=severity))

    def run(self) -> list[Diagnostic]:
        for index, operation in self.operations:
            if operation.deleted_studies():
                self._collect_deleted_studies(index, operation.deleted_studies())
        # One check per operation type.
        checks: dict[type[OperationModel], Callable[[KeyPath, int, Any], None]] = {
            DeleteStudies: self._delete_studies,
            DeleteModelRuns: self._delete_runs,
            RelodgeModelRuns: self._relodge_runs,
            LinkStudies: self._link_studies,
            UpdateModelRuns: self._update,
            Restore: self._restore,
        }
        for index, operation in self.operations:
            checks[type(operation)](("operations", index), index, operation)
        self._conflicts()
        self._references_to_deleted()
        return self.found

    def _restore(self, base: KeyPath, index: int, operation: Restore) -> None:
        """A restore is the whole playbook (its records' order and dependencies are the run's, not to be
        mixed with other changes), and is exactly what undo wrote."""
        if len(self.operations) > 1 or index != 0:
            self.error(
                (*base, "op"),
                "a restore operation must be the playbook's only operation",
                "one restore operation, as `provena-ops undo RUN --write-playbook` writes it",
                "move the other operations to a playbook of their own",
            )
        if operation.content_digest() != operation.digest:
            self.error(
                (*base, "digest"),
                "the restore's images were edited after undo wrote them (their sha256 is not the "
                f"digest {operation.digest})",
                "the images exactly as `provena-ops undo` wrote them",
                f"write the playbook again: provena-ops undo {operation.run} --write-playbook FILE",
            )
        seen: dict[str, int] = {}
        for position, image in enumerate(operation.images):
            if image.id in seen:
                self.error(
                    (*base, "images", position, "id"),
                    f"{image.id} is restored twice (also images[{seen[image.id]}])",
                    "each record once",
                    f"write the playbook again: provena-ops undo {operation.run} --write-playbook FILE",
                )
            seen.setdefault(image.id, position)

    def _delete_runs(self, base: KeyPath, index: int, operation: DeleteModelRuns) -> None:
        self._targets(base, index, operation.model_runs, "delete")

    def _relodge_runs(self, base: KeyPath, index: int, operation: RelodgeModelRuns) -> None:
        self._targets(base, index, operation.model_runs, "relodge")

    def _link_studies(self, base: KeyPath, index: int, operation: LinkStudies) -> None:
        self._not_deleted_study(operation.study, (*base, "study"), "links model runs to")
        self._targets(base, index, operation.model_runs, "link", study=ref_key(operation.study))

    # -- studies ---------------------------------------------------------------------------------------

    def _collect_deleted_studies(self, index: int, studies: list[StudyDeletion]) -> None:
        for position, study in enumerate(studies):
            key = ref_key(study)
            path: KeyPath = ("operations", index, "studies", position)
            if key is None:
                continue
            if key in self.deleted_studies:
                self.error(
                    path,
                    f"study {key} is listed for deletion twice "
                    f"(also at {format_path(self.deleted_studies[key])})",
                    "each study once",
                    "remove one of the two entries",
                )
            else:
                self.deleted_studies[key] = path

    def _delete_studies(self, base: KeyPath, index: int, operation: DeleteStudies) -> None:
        op_replacement_used = False
        op_strategy_reported = False
        for position, study in enumerate(operation.studies):
            path: KeyPath = (*base, "studies", position)
            strategy = study.linked_model_runs or operation.linked_model_runs
            replacement = study.replace_with or operation.replace_with
            replacement_path = (*path, "replace_with") if study.replace_with else (*base, "replace_with")
            needs_replacement = strategy is ConnectionStrategy.REPLACE
            for run_id, override in study.model_run_overrides.items():
                override_path: KeyPath = (*path, "model_run_overrides", run_id)
                if override.strategy is not ConnectionStrategy.REPLACE and override.replace_with is not None:
                    self.error(
                        (*override_path, "replace_with"),
                        f"replace_with is given but the strategy is '{override.strategy.value}'",
                        "a replacement only with strategy replace",
                        "drop replace_with, or drop the strategy (replace_with alone means replace)",
                    )
                if override.strategy is ConnectionStrategy.REPLACE and override.replace_with is None:
                    needs_replacement = True
                    if replacement is None:
                        self.error(
                            override_path,
                            f"model run {run_id} is to be relinked (replace) but no replacement is named",
                            "{replace_with: <study id>} for this model run, or replace_with: on the study",
                            "name the study to link it to, or use `remove` to clear its study link",
                        )
                if override.strategy is ConnectionStrategy.ABORT:
                    continue
                if override.strategy is ConnectionStrategy.REMOVE:
                    self._use(run_id, _Use(override_path, index, "relink", study=""))
                    continue
                own = override.replace_with or replacement
                if own is not None:
                    self._check_replacement(study, own, override_path)
                self._use(run_id, _Use(override_path, index, "relink", study=ref_key(own) if own else None))
            if strategy is ConnectionStrategy.REPLACE and replacement is None:
                own_strategy = study.linked_model_runs is not None
                if own_strategy or not op_strategy_reported:
                    self.error(
                        (*path, "linked_model_runs") if own_strategy else (*base, "linked_model_runs"),
                        "linked_model_runs is 'replace' but no replacement study is named",
                        "replace_with: <study id>, on this study or on the operation",
                        "name the study to link the model runs to, or choose `linked_model_runs: remove`",
                    )
                    op_strategy_reported = op_strategy_reported or not own_strategy
            if replacement is not None:
                if needs_replacement:
                    self._check_replacement(study, replacement, replacement_path)
                    op_replacement_used = op_replacement_used or study.replace_with is None
                elif study.replace_with is not None:
                    self.error(
                        (*path, "replace_with"),
                        f"replace_with is given but linked_model_runs is '{strategy.value}'",
                        "replace_with only together with linked_model_runs: replace",
                        "set `linked_model_runs: replace` on this study, or remove replace_with",
                    )
        if operation.replace_with is not None and not op_replacement_used:
            self.error(
                (*base, "replace_with"),
                "replace_with is given but no study in this operation uses `replace`",
                "replace_with only together with linked_model_runs: replace",
                "set `linked_model_runs: replace`, or remove replace_with",
            )

    def _check_replacement(self, study: StudyDeletion, replacement: StudyRef, path: KeyPath) -> None:
        if ref_key(replacement) == ref_key(study):
            self.error(
                path,
                f"study {ref_key(study)} cannot be replaced by itself",
                "a different, existing study",
                "name another study in replace_with, or use `remove` to clear the links",
            )
            return
        self._not_deleted_study(replacement, path, "relinks model runs to")

    def _not_deleted_study(self, study: StudyRef, path: KeyPath, verb: str) -> None:
        key = ref_key(study)
        if key is not None and key in self.deleted_studies:
            self.error(
                path,
                f"this {verb} study {key}, which the same playbook deletes "
                f"(at {format_path(self.deleted_studies[key])})",
                "a study that outlives this playbook",
                "link to another study, or do not delete this one",
            )

    # -- model runs ------------------------------------------------------------------------------------

    def _targets(
        self,
        base: KeyPath,
        index: int,
        refs: list[ModelRunRef],
        kind: str,
        study: str | None = None,
        **fields: Any,
    ) -> None:
        seen: dict[str, KeyPath] = {}
        for position, ref in enumerate(refs):
            path: KeyPath = (*base, "model_runs", position)
            key = ref_key(ref)
            if key is None:
                continue
            if key in seen:
                self.error(
                    path,
                    f"model run {key} is listed twice in this operation (also at {format_path(seen[key])})",
                    "each model run once per operation",
                    "remove the repeated entry",
                    severity="warning",
                )
                continue
            seen[key] = path
            self._use(key, _Use(path, index, kind, study=study, fields=fields))

    def _update(self, base: KeyPath, index: int, operation: UpdateModelRuns) -> None:
        changes = operation.set.given()
        annotations = operation.annotations
        if not changes and not annotations.set and not annotations.remove and not annotations.clear:
            self.error(
                base,
                "this update changes nothing",
                "set: and/or annotations: with at least one change",
                "add the fields to change under set:, or remove the operation",
            )
        start, end = changes.get("start_time"), changes.get("end_time")
        if start is not None and end is not None and start > end:
            self.error(
                (*base, "set", "end_time"),
                f"end_time {end} is before start_time {start}",
                "start_time <= end_time (Provena refuses the record otherwise)",
                "swap or correct the two times (Unix seconds)",
            )
        for key in sorted(set(annotations.set) & set(annotations.remove)):
            self.error(
                (*base, "annotations", "remove"),
                f"annotation '{key}' is both set and removed",
                "each annotation key in set or remove, not both",
                "keep it under set: to change it, or under remove: to drop it",
            )
        if annotations.clear and annotations.remove:
            self.error(
                (*base, "annotations", "remove"),
                "remove has no effect: clear already drops every annotation",
                "either clear or remove",
                "drop the remove list",
                severity="warning",
            )
        if "study_id" in changes and changes["study_id"] is not None:
            self._not_deleted_study(
                StudyRef(id=changes["study_id"]), (*base, "set", "study_id"), "links model runs to"
            )
        for name in REFERENCE_FIELDS:
            if changes.get(name) is not None:
                self.references.append(((*base, "set", name), changes[name], name))
        for side in ("inputs", "outputs"):
            for position, dataset in enumerate(changes.get(side) or []):
                for name in ("dataset_id", "dataset_template_id"):
                    path: KeyPath = (*base, "set", side, position, name)
                    self.references.append((path, getattr(dataset, name), name))
        fields: dict[str, Any] = {f"set.{name}": value for name, value in changes.items()}
        fields.update({f"annotation {key!r}": value for key, value in annotations.set.items()})
        fields.update({f"annotation {key!r}": None for key in annotations.remove})
        if annotations.clear:
            fields["annotations.clear"] = True
        study = None
        if "study_id" in changes:
            study = changes["study_id"] or ""
        self._targets(base, index, operation.model_runs, "update", study=study, **fields)

    def _references_to_deleted(self) -> None:
        """An id a model run is given that names a record this playbook deletes: a dangling link."""
        for path, record, name in self.references:
            if record in self.deleted_studies:
                where = format_path(self.deleted_studies[record])
                self.error(
                    path,
                    f"{name} names study {record}, which the same playbook deletes (at {where})",
                    "a record that outlives this playbook",
                    "name another record, or do not delete this one",
                )
                continue
            deleting = next((use for use in self.runs.get(record, []) if use.kind == "delete"), None)
            if deleting is not None:
                self.error(
                    path,
                    f"{name} names model run {record}, which operations[{deleting.operation}] deletes",
                    "a record that outlives this playbook",
                    "name another record, or do not delete this one",
                )

    def _use(self, run: str, use: _Use) -> None:
        self.runs.setdefault(run, []).append(use)

    def _conflicts(self) -> None:
        for run, uses in self.runs.items():
            deletes = [use for use in uses if use.kind == "delete"]
            if deletes:
                for use in uses:
                    if use is not deletes[0] and use.kind != "delete":
                        self.error(
                            use.path,
                            f"model run {run} is deleted by operations[{deletes[0].operation}] "
                            f"and also changed here",
                            "each model run either deleted or changed",
                            "remove it from one of the two operations",
                        )
                for use in deletes[1:]:
                    self.error(
                        use.path,
                        f"model run {run} is already deleted by operations[{deletes[0].operation}]",
                        "each model run deleted once",
                        "remove the repeated entry",
                        severity="warning",
                    )
                continue
            self._field_conflicts(run, uses)

    def _field_conflicts(self, run: str, uses: list[_Use]) -> None:
        study: tuple[str, _Use] | None = None
        values: dict[str, tuple[Any, _Use]] = {}
        for use in uses:
            if use.study is not None:
                if study is not None and study[0] != use.study:
                    self.error(
                        use.path,
                        f"model run {run} is linked to {_describe_study(use.study)} here but to "
                        f"{_describe_study(study[0])} by operations[{study[1].operation}]",
                        "one study link per model run",
                        "decide which study the model run belongs to and keep only that operation",
                    )
                elif study is None:
                    study = (use.study, use)
            for name, value in use.fields.items():
                if name in values and values[name][0] != value:
                    self.error(
                        use.path,
                        f"model run {run}: {name} is {_describe_value(value)} here but "
                        f"{_describe_value(values[name][0])} in operations[{values[name][1].operation}]",
                        "compatible edits of the same model run",
                        "make the two operations agree, or edit this field in one of them only",
                    )
                values.setdefault(name, (value, use))
            if "annotations.clear" in use.fields:
                self._cleared_and_edited(run, use, uses)
        self._time_order(run, values)

    def _time_order(self, run: str, values: dict[str, tuple[Any, _Use]]) -> None:
        """start_time and end_time set by different operations must still be in order (one operation's
        pair is checked with it)."""
        start, end = values.get("set.start_time"), values.get("set.end_time")
        if start is None or end is None or start[1].operation == end[1].operation:
            return
        if start[0] > end[0]:
            self.error(
                end[1].path,
                f"model run {run}: end_time {end[0]} here is before start_time {start[0]} set by "
                f"operations[{start[1].operation}]",
                "start_time <= end_time (Provena refuses the record otherwise)",
                "correct one of the two times (Unix seconds)",
            )

    def _cleared_and_edited(self, run: str, use: _Use, uses: list[_Use]) -> None:
        for other in uses:
            if other is not use and any(name.startswith("annotation") for name in other.fields):
                self.error(
                    use.path,
                    f"model run {run}: annotations are cleared here but also edited by "
                    f"operations[{other.operation}]",
                    "annotation edits of a model run in one operation when clearing",
                    "move the annotation edits into this operation's annotations.set",
                )
                break


REFERENCE_FIELDS = ("modeller_id", "requesting_organisation_id", "workflow_template_id")


def _describe_study(key: str) -> str:
    return "no study" if key == "" else f"study {key}"


def _describe_value(value: Any) -> str:
    return "removed" if value is None else repr(value)


def check_operations(operations: list[tuple[int, Operation]], source: SourceMap) -> list[Diagnostic]:
    """Cross-field and cross-operation rules over the operations that are valid on their own."""
    return _Checker(operations, source).run()
