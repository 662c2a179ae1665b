"""A saved plan (`plan --out`) read back for `apply --plan`, and trusted for nothing.

It has sat on a disk or in a pull request's artefacts, and may have been edited. So it is parsed strictly
(no duplicate keys, no unknown keys, no coercion, this exact format), checked for consistency (unique keys,
real dependencies, a summary that counts its actions, no problems), refused before anything is contacted
when it was made for another environment, database or playbook, and then only compared with a plan made
now: apply carries out the fresh plan, and only when every action of one is matched by the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.keys import action_key, is_links_key, key_record, study_of_links_key
from provena_ops.plan.model import Action, Plan, summarise
from provena_ops.playbook.diagnostics import format_path
from provena_ops.safety.strict_json import JsonProblem, loads
from provena_ops.text import hidden_character, plural

MAX_PLAN_BYTES = 512 * 1024 * 1024  # a 100,000-action plan is about 300 MB
SHOWN = 10
QUIET_ERRORS = ("exact_number", "extra_forbidden")  # their message already says what was found
REMAKE = "plan again, review, and apply the new plan"


class NotApplied(ProvenaOpsError):
    """Apply stopped before writing anything: problems, a stale or altered plan, no confirmation."""


def _not_a_plan(path: Path, what: str) -> ProvenaOpsError:
    return ProvenaOpsError(
        f"{path} is not a provena-ops plan: {what}",
        hint="save plans with `provena-ops plan PLAYBOOK --out plan.json`, and apply them as saved "
        "(a file cut short or edited by hand is not applied); nothing was applied",
    )


def read_saved_plan(path: Path) -> Plan:
    """The plan in `path`, refused unless it is exactly what `provena-ops plan --out` writes."""
    try:
        if path.exists() and not path.is_file():
            raise _not_a_plan(path, "it is not a regular file (a directory, device, pipe or socket)")
        with path.open("rb") as file:
            raw = file.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise ProvenaOpsError(f"cannot read the plan {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_PLAN_BYTES:
        raise _not_a_plan(path, f"it is larger than {MAX_PLAN_BYTES // 1024 // 1024} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_a_plan(path, f"it is not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        loads(text)  # duplicate keys, NaN, absurd numbers and nesting, each at its line and column
    except JsonProblem as problem:
        at = f"{problem.path}: " if problem.path else ""
        place = f" (line {problem.line}, column {problem.column})" if problem.line else ""
        raise _not_a_plan(path, f"{at}{problem.message}{place}") from None
    try:
        plan = Plan.model_validate_json(text, strict=True)  # strict: `true` is not 1, "1" is not 1
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = format_path(tuple(first["loc"]))
        found = first.get("input")
        shown = (
            f" (found {found!r})" if isinstance(found, str | int | float | bool) and found is not None else ""
        )
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        said = (f"{where}: {first['msg']}" if where else first["msg"]) + shown + more
        raise _not_a_plan(path, said) from None
    inconsistency = _inconsistency(plan)
    if inconsistency:
        raise _not_a_plan(path, inconsistency)
    return plan


def _inconsistency(plan: Plan) -> str | None:
    """What no plan written by `provena-ops plan` can hold."""
    named = {
        "playbook.file": plan.playbook.file,
        "playbook.name": plan.playbook.name,
        "environment.name": plan.environment.name,
        "environment.stage": plan.environment.stage,
        "environment.registry": plan.environment.registry,
        "planned_by": plan.planned_by,
    }
    for index, action in enumerate(plan.actions):
        named[f"actions[{index}].record_id"] = action.record_id
    for where, value in named.items():
        hidden = hidden_character(value)
        if hidden is not None:
            return f"{where} holds {hidden[1]}"
    keys: set[str] = set()
    for index, action in enumerate(plan.actions):
        if action.key != action_key(action.kind, action.record_id):
            return (
                f"actions[{index}]: the key {action.key!r} does not name its {action.kind} of "
                + action.record_id
            )
        if action.key in keys:
            return f"actions[{index}]: {action.key} is listed twice"
        if action.record_id not in plan.fingerprints:
            return f"actions[{index}] ({action.key}) acts on a record the plan never read"
        keys.add(action.key)
    operations = [target.operation for target in plan.targets]
    if operations != list(range(len(operations))):
        return "its targets do not list the playbook's operations in order"
    earlier: set[str] = set()
    for index, action in enumerate(plan.actions):
        unknown = [key for key in action.depends_on if key not in keys]
        if unknown:
            return f"actions[{index}] ({action.key}) depends on {unknown[0]}, which the plan does not hold"
        later = [key for key in action.depends_on if key not in earlier]
        if later:  # the planner orders every action after what it depends on: no cycles
            return f"actions[{index}] ({action.key}) depends on {later[0]}, which does not come before it"
        if not action.operations or not set(action.operations) <= set(operations):
            return (
                f"actions[{index}] ({action.key}) comes from operations {action.operations}, which the "
                "plan's targets do not list"
            )
        earlier.add(action.key)
    if plan.summary != summarise(plan.actions, plan.problems):
        return "its summary does not count its actions"
    return None


def refuse_problems(saved: Plan) -> None:
    if saved.problems:
        first = saved.problems[0].message
        raise NotApplied(
            f"the saved plan lists {plural(len(saved.problems), 'problem')} (first: {first}); a plan with "
            "problems is never applied; nothing was contacted",
            hint="fix them in the playbook, then plan again",
        )


def refuse_other_target(
    saved: Plan, name: str, stage: str | None, identity: str | None, from_flag: bool
) -> None:
    """Before anything is contacted: the saved plan must be for the environment this apply targets (the
    playbook's own, or -e), as it is defined now (stage and registry, when known). Apply never switches
    environment on its own."""
    made_for = saved.environment
    if made_for.name != name:
        origin = "-e names" if from_flag else "the playbook targets"
        raise NotApplied(
            f"the plan was made for '{made_for.name}', but {origin} '{name}'; nothing was contacted",
            hint=f"to apply it to '{made_for.name}', say so: -e {made_for.name}; to apply to '{name}', "
            "plan for it",
        )
    if stage is not None and made_for.stage != stage:
        raise NotApplied(
            f"the plan was made when '{name}' was stage {made_for.stage}; it is stage {stage} now; nothing "
            "was contacted",
            hint=REMAKE,
        )
    if identity is not None and made_for.registry != identity:
        what = "sandbox database" if identity.startswith("sandbox:") else "registry"
        raise NotApplied(
            f"the plan was made for another {what} ({made_for.registry}); '{name}' is {identity} here; "
            "nothing was contacted",
            hint="apply from the directory the plan was made in, or " + REMAKE,
        )


def stale(saved: Plan, fresh: Plan) -> list[str]:
    """What changed since the saved plan was made, other than by carrying it out (a run of this plan
    that was interrupted must be finishable by the same command): records and study links whose
    fingerprint differs, unless the fresh plan finds the saved plan's action on them already done, or
    the only change to a study's links is runs that no longer link to it."""
    done = {a.record_id for a in fresh.actions if a.outcome != "change"} & {
        a.record_id for a in saved.actions if a.outcome == "change"
    }
    changed = []
    for key in sorted(set(saved.fingerprints) | set(fresh.fingerprints)):
        before, now_ = saved.fingerprints.get(key), fresh.fingerprints.get(key)
        if before == now_ or now_ is None or key in done:
            continue  # unchanged, no longer read (its action needs nothing now), or carried out already
        if is_links_key(key) and _linked(fresh, key) <= _linked(saved, key):
            continue  # only relinks or deletions since: what this plan does
        changed.append(key)
    return changed


# What an action writes, and the field diff a reviewer read: both must be as saved. Graph counts and
# dependencies may shrink as an interrupted run's deletions and relinks are done.
REVIEWED = ("kind", "record_id", "subtype", "reason", "record", "stale_link_to", "changes", "operations")


def altered(saved: Plan, fresh: Plan) -> list[str]:
    """Writes planned now that the saved plan does not show exactly (an edited file, or another version
    of provena-ops). Its actions that are done by now are absent from, or unchanged in, the fresh plan."""
    reviewed = {action.key: action for action in saved.actions if action.outcome == "change"}
    pending = {action.key for action in fresh.actions if action.outcome == "change"}

    def differs(action: Action) -> bool:
        saved_action = reviewed.get(action.key)
        if saved_action is None:
            return True
        if any(getattr(action, name) != getattr(saved_action, name) for name in REVIEWED):
            return True
        now, then = set(action.depends_on), set(saved_action.depends_on)
        # Dependencies only shrink, as what they waited for gets done: one on a write still to do that
        # the plan made now does not have is not the plan's.
        return not now <= then or bool((then - now) & pending)

    return [action.key for action in fresh.actions if action.outcome == "change" and differs(action)]


def unmatched(saved: Plan, fresh: Plan) -> list[Action]:
    """The saved plan's writes that the fresh plan does not hold at all: done by an interrupted run (apply
    checks each record), or never part of this playbook's plan (an edited file)."""
    now = {action.key for action in fresh.actions}
    return [action for action in saved.actions if action.outcome == "change" and action.key not in now]


def listing(keys: Iterable[str]) -> str:
    items = list(keys)
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _linked(plan: Plan, links_key: str) -> set[str]:
    """The runs a plan found linked to a study it deletes: the records its deletion waits for."""
    study = study_of_links_key(links_key)
    return {
        key_record(key)
        for action in plan.actions
        if action.kind == "delete_study" and action.record_id == study
        for key in action.depends_on
    }
