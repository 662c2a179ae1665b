"""Playbook format v1: the pydantic models are the source of truth; schemas/playbook.schema.json is generated.

Design rules: every mapping forbids unknown keys (a misspelt key is an error, never silently ignored);
operations are a union discriminated by `op`; record references take a handle id, an exact display name or
a selector, and say which in so many words; values that Provena would reject are rejected here, offline.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Annotated, Any, ClassVar, Literal, Self

from ProvenaInterfaces.ProvenanceModels import ModelRunRecord, TemplatedDataset
from ProvenaInterfaces.RegistryModels import AccessSettings, ItemModelRun, ItemStudy, LockInformation
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from provena_ops.errors import first_problem
from provena_ops.safety.scalars import BLANK, Flag, UnixSeconds, exactly

HANDLE_PATTERN = r"^[0-9]+(\.[0-9]+)*/[0-9A-Za-z][0-9A-Za-z._-]*$"
HANDLE_EXAMPLE = "10378.1/1690001"

HandleId = Annotated[
    str,
    Field(pattern=HANDLE_PATTERN, description=f"A Provena handle id, e.g. {HANDLE_EXAMPLE}."),
]
# Text is never empty or only whitespace, and has a budget: names (and what is searched by) 1,000
# characters, reasons 10,000, descriptions 100,000 (a Provena record holds less).
Text = Annotated[str, Field(min_length=1, max_length=1_000, pattern=BLANK)]
Reason = Annotated[str, Field(min_length=1, max_length=10_000, pattern=BLANK)]
Prose = Annotated[str, Field(min_length=1, max_length=100_000, pattern=BLANK)]
AnnotationValue = Annotated[str, Field(max_length=100_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Named(Strict):
    """Names records: a bare handle string, or a mapping with exactly one of the naming keys."""

    naming_keys: ClassVar[tuple[str, ...]] = ("id", "display_name")

    @model_validator(mode="before")
    @classmethod
    def _string_is_an_id(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _named_once(self) -> Self:
        given = [name for name in self.naming_keys if getattr(self, name) is not None]
        ways = ", ".join(self.naming_keys)
        if len(given) > 1:
            both = " and ".join(given)
            raise ValueError(f"name the record in exactly one way ({ways}); {both} are both given")
        if not given:
            raise ValueError(f"name the record in exactly one way ({ways}); none is given")
        return self

    @property
    def handle(self) -> str | None:
        """The handle id when the reference names one record by id, else None (resolved at plan time)."""
        value = getattr(self, "id", None)
        return value if isinstance(value, str) else None

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core))
        schema["oneOf"] = [{"required": [key]} for key in cls.naming_keys]
        return {
            "anyOf": [{"type": "string", "pattern": HANDLE_PATTERN, "description": "A handle id."}, schema],
            "description": cls.__doc__,
        }


class RunExclusion(Named):
    """A model run a selector leaves out: a handle id, an exact display name, or a glob of names (matched
    against the runs the selector chose)."""

    naming_keys = ("id", "display_name", "display_name_matches")

    id: HandleId | None = None
    display_name: Text | None = None
    display_name_matches: Text | None = None

    def leaves_out(self, run: str, display_name: str) -> bool:
        if self.id is not None:
            return run == self.id
        if self.display_name is not None:
            return display_name == self.display_name
        assert self.display_name_matches is not None
        return fnmatchcase(display_name, self.display_name_matches)


class ModelRunRef(Named):
    """Model runs to act on: a handle id, an exact display name, or a selector the planner expands."""

    naming_keys = ("id", "display_name", "linked_to_study", "display_name_matches")

    id: HandleId | None = None
    display_name: Text | None = Field(
        None, description="Exact display name, resolved through search at plan time; must match one run."
    )
    linked_to_study: HandleId | None = Field(None, description="Every model run linked to this study.")
    display_name_matches: Text | None = Field(
        None, description="Every model run whose display name matches this glob (* ? [abc]), case-sensitive."
    )
    exclude: list[RunExclusion] = Field(
        default_factory=list,
        max_length=10_000,
        description="With a selector (linked_to_study, display_name_matches): runs it leaves out, each a "
        "handle id, {display_name: ...} or {display_name_matches: ...}.",
    )

    @model_validator(mode="after")
    def _exclude_narrows_a_selector(self) -> Self:
        if self.exclude and (self.id is not None or self.display_name is not None):
            raise ValueError(
                "exclude narrows a selector (linked_to_study or display_name_matches); a run named by id "
                "or display_name is left out by removing it from the list"
            )
        return self


class StudyRef(Named):
    """One study: a handle id or an exact display name (resolved at plan time)."""

    id: HandleId | None = None
    display_name: Text | None = None


class ConnectionStrategy(StrEnum):
    """What happens to a model run linked to a study being deleted (Provena's admin script asks per run)."""

    ABORT = "abort"  # refuse to delete the study while this link exists
    REMOVE = "remove"  # clear the model run's study link
    REPLACE = "replace"  # link the model run to the replacement study instead


class ModelRunOverride(Strict):
    """The strategy for one linked model run: a strategy name, or `{replace_with: STUDY}`."""

    strategy: ConnectionStrategy = ConnectionStrategy.REPLACE
    replace_with: StudyRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _string_is_a_strategy(cls, data: Any) -> Any:
        return {"strategy": data} if isinstance(data, str) else data

    @classmethod
    def __get_pydantic_json_schema__(cls, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core))
        return {
            "anyOf": [{"enum": [strategy.value for strategy in ConnectionStrategy]}, schema],
            "description": cls.__doc__,
        }


class StudyDeletion(Named):
    """One study to delete, with optional strategy settings that override the operation's."""

    id: HandleId | None = None
    display_name: Text | None = None
    linked_model_runs: ConnectionStrategy | None = Field(
        None, description="Strategy for this study's linked model runs (default: the operation's)."
    )
    replace_with: StudyRef | None = Field(None, description="The study that `replace` links model runs to.")
    model_run_overrides: dict[HandleId, ModelRunOverride] = Field(
        default_factory=dict, description="Per model run strategy, keyed by model run handle id."
    )


def _step_description() -> Any:
    return Field(None, description="What this step is for; shown in plans and journals.")


StepDescription = Prose | None
# What an operation does to the model runs it names, which is what the reader must read for them: a
# trial delete, the record and what lies downstream, or the graph around it.
RunsAre = Literal["deleted", "edited", "relodged"]


class OperationModel(Strict):
    """What every operation says about itself, so that no stage has to ask which type it is."""

    def skips_locked(self) -> bool:
        """Its `skip_locked:` (restore operations have no such key)."""
        return bool(getattr(self, "skip_locked", False))

    runs_are: ClassVar[RunsAre | None] = None
    plans: ClassVar[tuple[str, ...]] = ()  # the action kinds (plan.model.ActionKind) it can plan

    def run_refs(self) -> list[ModelRunRef]:
        """The model runs it names (handle ids, names or selectors), in playbook order."""
        return list(getattr(self, "model_runs", []))

    def study_refs(self) -> list[StudyRef | StudyDeletion]:
        """Every study it names, replacements included."""
        return []

    def deleted_studies(self) -> list[StudyDeletion]:
        return []

    def patch(self) -> dict[str, Any]:
        """The values it writes into each model run's record, by dotted path (see ModelRunChanges)."""
        return {}


class DeleteModelRuns(OperationModel):
    """Delete model runs from the provenance graph, then from the registry."""

    runs_are: ClassVar[RunsAre | None] = "deleted"
    plans: ClassVar[tuple[str, ...]] = ("delete_model_run",)

    op: Literal["delete_model_runs"]
    model_runs: list[ModelRunRef] = Field(min_length=1)
    reason: Reason | None = Field(None, description="Why; recorded in the journal.")
    description: StepDescription = _step_description()
    skip_locked: Flag = Field(
        False,
        description="Report locked records as skipped, with the reason, instead of as problems that stop "
        "the plan (and skip what depends on them: a study whose linked run is locked stays).",
    )


class DeleteStudies(OperationModel):
    """Delete studies, first dealing with every model run linked to them."""

    plans: ClassVar[tuple[str, ...]] = ("update", "delete_study")

    op: Literal["delete_studies"]
    studies: list[StudyDeletion] = Field(min_length=1)
    linked_model_runs: ConnectionStrategy = Field(
        ConnectionStrategy.ABORT,
        description="Default for linked model runs: abort (refuse while links exist), remove or replace.",
    )
    replace_with: StudyRef | None = Field(None, description="The study that `replace` links model runs to.")
    reason: Reason | None = Field(
        None,
        description="Reason recorded on each model run edit (default: Provena's admin-script wording).",
    )
    description: StepDescription = _step_description()
    skip_locked: Flag = Field(
        False,
        description="Report locked records as skipped, with the reason, instead of as problems that stop "
        "the plan (and skip what depends on them: a study whose linked run is locked stays).",
    )

    def study_refs(self) -> list[StudyRef | StudyDeletion]:
        refs: list[StudyRef | StudyDeletion] = [*self.studies]
        if self.replace_with is not None:
            refs.append(self.replace_with)
        for study in self.studies:
            if study.replace_with is not None:
                refs.append(study.replace_with)
            refs.extend(o.replace_with for o in study.model_run_overrides.values() if o.replace_with)
        return refs

    def deleted_studies(self) -> list[StudyDeletion]:
        return list(self.studies)


class StrictTemplatedDataset(TemplatedDataset):
    """Provena's TemplatedDataset, with unknown keys refused and its ids checked as handle ids."""

    model_config = ConfigDict(extra="forbid")

    dataset_template_id: HandleId
    dataset_id: HandleId


def _never_null(schema: dict[str, Any]) -> None:
    """Schema of a field that may be omitted but not nulled: Provena requires it on every model run."""
    options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        for key, value in options[0].items():
            schema.setdefault(key, value)
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


def _replaceable(description: str | None = None) -> Any:
    return Field(None, description=description, json_schema_extra=_never_null)


class ModelRunChanges(Strict):
    """New values for ModelRunRecord fields; `null` unsets a field Provena lets you unset."""

    display_name: Text | None = _replaceable()
    description: Prose | None = _replaceable()
    study_id: HandleId | None = Field(None, description="The study to link to; null removes the link.")
    modeller_id: HandleId | None = _replaceable("Replace the modeller (a person); it cannot be removed.")
    requesting_organisation_id: HandleId | None = Field(
        None, description="The requesting organisation; null removes it."
    )
    model_version: Text | None = None
    workflow_template_id: HandleId | None = _replaceable()
    inputs: list[StrictTemplatedDataset] | None = _replaceable()
    outputs: list[StrictTemplatedDataset] | None = _replaceable()
    start_time: UnixSeconds | None = _replaceable("Unix seconds.")
    end_time: UnixSeconds | None = _replaceable("Unix seconds.")

    @field_validator(
        "display_name",
        "description",
        "modeller_id",
        "workflow_template_id",
        "inputs",
        "outputs",
        "start_time",
        "end_time",
        mode="before",
    )
    @classmethod
    def _required_by_provena(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(REQUIRED_FIELD_REMOVED)
        return value

    def given(self) -> dict[str, Any]:
        """Only the fields the playbook spells out (an unset `study_id: null` counts)."""
        return {name: getattr(self, name) for name in self.model_fields_set}

    def patch(self) -> dict[str, Any]:
        """What `set:` writes into the record, by dotted path ('associations.modeller_id'), as JSON
        values: the one place the playbook's flat field names meet the record's shape."""
        patch: dict[str, Any] = {}
        for name, value in self.given().items():
            path = f"associations.{name}" if name in ASSOCIATION_FIELDS else name
            if isinstance(value, list):
                value = [item.model_dump(mode="json", exclude_none=True) for item in value]
            patch[path] = value
        return patch


ASSOCIATION_FIELDS = ("modeller_id", "requesting_organisation_id")  # under `associations` in the record
REQUIRED_FIELD_REMOVED = "Provena requires this field on every model run: it can be replaced but not removed"


class AnnotationChanges(Strict):
    """Key-level edits of a model run's annotations."""

    set: dict[Text, AnnotationValue] = Field(default_factory=dict, description="Add or change these keys.")
    remove: list[Text] = Field(default_factory=list, description="Remove these keys (absent keys are fine).")
    clear: Flag = Field(False, description="Drop every existing annotation first (then apply `set`).")


class UpdateModelRuns(OperationModel):
    """Edit model-run records through Provena's update job (the web UI's edit form, in bulk)."""

    runs_are: ClassVar[RunsAre | None] = "edited"
    plans: ClassVar[tuple[str, ...]] = ("update",)

    op: Literal["update_model_runs"]
    model_runs: list[ModelRunRef] = Field(min_length=1)
    reason: Reason = Field(description="Why; Provena stores it in the record's history.")
    set: ModelRunChanges = Field(default_factory=ModelRunChanges)
    annotations: AnnotationChanges = Field(default_factory=AnnotationChanges)
    description: StepDescription = _step_description()
    skip_locked: Flag = Field(
        False,
        description="Report locked records as skipped, with the reason, instead of as problems that stop "
        "the plan (and skip what depends on them: a study whose linked run is locked stays).",
    )

    def patch(self) -> dict[str, Any]:
        return self.set.patch()


class LinkStudies(OperationModel):
    """Link many model runs to one study (Provena's bulk-link-studies, with a dry run)."""

    runs_are: ClassVar[RunsAre | None] = "edited"
    plans: ClassVar[tuple[str, ...]] = ("relink",)

    op: Literal["link_studies"]
    study: StudyRef
    model_runs: list[ModelRunRef] = Field(min_length=1)
    replace_existing_links: Flag = Field(
        False, description="Allow moving runs already linked to another study (otherwise the plan fails)."
    )
    reason: Reason | None = Field(
        None, description="Reason recorded on each edit (default: Provena's wording)."
    )
    description: StepDescription = _step_description()
    skip_locked: Flag = Field(
        False,
        description="Report locked records as skipped, with the reason, instead of as problems that stop "
        "the plan (and skip what depends on them: a study whose linked run is locked stays).",
    )

    def study_refs(self) -> list[StudyRef | StudyDeletion]:
        return [self.study]


class RelodgeModelRuns(OperationModel):
    """Re-lodge model runs' provenance from their registry records (additive: it never removes links)."""

    runs_are: ClassVar[RunsAre | None] = "relodged"
    plans: ClassVar[tuple[str, ...]] = ("relodge",)

    op: Literal["relodge_model_runs"]
    model_runs: list[ModelRunRef] = Field(min_length=1)
    description: StepDescription = _step_description()
    skip_locked: Flag = Field(
        False,
        description="Report locked records as skipped, with the reason, instead of as problems that stop "
        "the plan (and skip what depends on them: a study whose linked run is locked stays).",
    )


RUN_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$"
Fingerprint = Annotated[str, Field(pattern=r"^(absent|sha256:[0-9a-f]{64})$")]


class RestoreImage(Strict):
    """One record as a run found it and left it, from the run's journal: what undoing the run puts back."""

    id: HandleId
    subtype: Literal["MODEL_RUN", "STUDY"]
    undoes: Literal["update", "relink", "delete_model_run", "delete_study", "restore"] = Field(
        description="What the run did to the record."
    )
    result: Literal["changed", "ok", "failed", "skipped", "unknown"] | None = Field(
        None, description="How the run's action ended (None: it never finished, e.g. kill -9)."
    )
    reason: Reason | None = Field(None, description="The reason the run gave.")
    after: Fingerprint | None = Field(
        None, description="The record's fingerprint as the run left it (None: not journalled)."
    )
    written: dict[str, Any] | None = Field(
        None, description="The model-run record the run submitted, to compare with when `after` is unknown."
    )
    access: dict[str, Any] | None = Field(
        None, description="Access settings before a deletion (None: the journal predates them)."
    )
    lock: dict[str, Any] | None = Field(
        None, description="Lock information before a deletion (None: the journal predates it)."
    )
    before: dict[str, Any] | None = Field(description="The record before the run (None: it did not exist).")

    @model_validator(mode="after")
    def _provena_items(self) -> Self:
        """Images are what Provena answered, so they parse as its models; anything else was made up,
        and would fail in the middle of the restore instead of here."""
        if self.before is None and self.undoes != "restore":
            raise ValueError(
                f"a record the run's {self.undoes} changed existed before it: `before` is missing"
            )
        checked = (("access", self.access, AccessSettings), ("lock", self.lock, LockInformation))
        for name, value, settings in checked:
            try:
                if value is not None:  # as JSON, strictly: roles and lock actions are their enums' text
                    settings.model_validate_json(json.dumps(value), strict=True)
            except ValidationError as exc:
                raise ValueError(f"{name}: {first_problem(exc)}") from None
        if self.before is not None:
            model = ItemModelRun if self.subtype == "MODEL_RUN" else ItemStudy
            model.model_validate(self.before)
            if self.before.get("id") != self.id:
                raise ValueError(f"the image before is of {self.before.get('id')!r}, not {self.id}")
            if self.before.get("item_subtype") != self.subtype:
                raise ValueError(
                    f"the image before is {self.before.get('item_subtype')!r}, not {self.subtype}"
                )
        if self.written is not None:
            ModelRunRecord.model_validate(self.written)
        return self


class Restore(OperationModel):
    """Put back every record a run changed, as its journal says it was (written by `provena-ops undo RUN
    --write-playbook`; `digest` makes any edit of the images a validation error)."""

    runs_are: ClassVar[RunsAre | None] = None
    plans: ClassVar[tuple[str, ...]] = ("update", "restore", "relodge", "delete_model_run", "delete_study")

    op: Literal["restore"]
    run: Annotated[str, Field(pattern=RUN_ID_PATTERN, description="The run undone (from `log list`).")]
    registry: Text = Field(description="Where that run was applied (the journal's registry).")
    digest: Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] = Field(
        description="sha256 of run, registry, images and not_started, as undo wrote them."
    )
    images: list[RestoreImage] = Field(min_length=1)
    not_started: list[str] = Field(
        default_factory=list, description="Actions the run planned and never started: left alone."
    )
    description: StepDescription = _step_description()

    def content_digest(self) -> str:
        return restore_digest(self.run, self.registry, self.images, self.not_started)


def restore_digest(run: str, registry: str, images: list[RestoreImage], not_started: list[str]) -> str:
    content = {
        "run": run,
        "registry": registry,
        "images": [image.model_dump(mode="json") for image in images],
        "not_started": not_started,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


Operation = Annotated[
    DeleteModelRuns | DeleteStudies | UpdateModelRuns | LinkStudies | RelodgeModelRuns | Restore,
    Field(discriminator="op"),
]
OPERATION_NAMES = (
    "delete_model_runs",
    "delete_studies",
    "update_model_runs",
    "link_studies",
    "relodge_model_runs",
    "restore",
)
# Parts of an operation kept verbatim: records as Provena held them, never templated nor text-checked
# (a description of `{{ x }}` or a zero-width space in Provena is restored as it was).
VERBATIM = {"restore": "images"}


def _number_as_text(value: Any) -> Any:
    """`feature_number: 42` means the text "42": replacement values are substituted into URLs."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class Playbook(Strict):
    """A reviewed, declarative change to one Provena environment."""

    model_config = ConfigDict(extra="forbid", title="provena-ops playbook")

    version: Annotated[Literal[1], exactly(1)] = Field(description="Playbook format version.")
    name: Text = Field(description="Short name, shown in plans and journals.")
    description: Prose | None = None
    environment: Text = Field(description="Environment name from environments.json (overridable by flag).")
    params: dict[str, Annotated[str, BeforeValidator(_number_as_text)]] = Field(
        default_factory=dict,
        description="Values for the environment's replacements (like Provena's --param id:value).",
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Values for {{ templating }} in this file."
    )
    operations: list[Operation] = Field(min_length=1)
