"""A deterministic demo registry in Provena's handle form, with the awkward cases admins meet.

Same input, same registry: ids, timestamps and choices depend only on the run count, so tests,
golden files and rehearsals can name records. It includes a study linked to something that is
not a model run, a model run without a study, runs with annotations and user_metadata, a locked
record, and a model run whose graph is missing (registered but never lodged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ProvenaInterfaces.ProvenanceModels import ModelRunRecord

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.graph import Link, Node
from provena_ops.sandbox.items import SUBTYPES, new_item
from provena_ops.sandbox.provenance import graph_for, prov_serialisation
from provena_ops.sandbox.realm import DEFAULT_CLIENTS, DEFAULT_USERS
from provena_ops.sandbox.store import BulkTagger

HANDLE_PREFIX = "10378.1/"
FIRST_HANDLE = 1690001
BASE_TIME = 1_700_000_000
OWNERS = ("alice", "bob")
MODELLERS_GROUP = "modellers"


class SandboxNotEmpty(Exception):
    pass


@dataclass
class SeedSummary:
    counts: dict[str, int] = field(default_factory=dict)
    notable: dict[str, str] = field(default_factory=dict)


class _Seeder:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.next_handle = FIRST_HANDLE
        self.clock = BASE_TIME
        self.summary = SeedSummary()

    def add(
        self,
        subtype: str,
        domain: dict[str, Any],
        owner: str = "admin",
        general: list[str] | None = None,
        groups: dict[str, list[str]] | None = None,
    ) -> str:
        item_id = f"{HANDLE_PREFIX}{self.next_handle}"
        self.next_handle += 1
        self.clock += 600
        new_item(self.sandbox, SUBTYPES[subtype], item_id, owner, domain, self.clock, general)
        if groups:
            auth = self.sandbox.store.get_auth(item_id) or {}
            auth["access_settings"]["groups"] = groups
            self.sandbox.store.put_auth(auth)
        self.summary.counts[subtype] = self.summary.counts.get(subtype, 0) + 1
        return item_id


def _person(first: str, last: str) -> dict[str, Any]:
    return {
        "display_name": f"{first} {last}",
        "user_metadata": None,
        "email": f"{first.lower()}.{last.lower()}@example.org",
        "first_name": first,
        "last_name": last,
        "orcid": None,
        "ethics_approved": True,
    }


def _dataset(name: str, organisation: str, custodian: str, index: int) -> dict[str, Any]:
    unchecked = {"relevant": False, "obtained": False}
    return {
        "display_name": name,
        "user_metadata": None,
        "collection_format": {
            "associations": {
                "organisation_id": organisation,
                "data_custodian_id": custodian,
                "point_of_contact": None,
            },
            "approvals": {
                "ethics_registration": unchecked,
                "ethics_access": unchecked,
                "indigenous_knowledge": unchecked,
                "export_controls": unchecked,
            },
            "dataset_info": {
                "name": name,
                "description": f"{name}: demo dataset registered in the sandbox.",
                "access_info": {"reposited": True, "uri": None, "description": None},
                "publisher_id": organisation,
                "created_date": {"relevant": False, "value": None},
                "published_date": {"relevant": False, "value": None},
                "license": "https://creativecommons.org/licenses/by/4.0/",
                "keywords": ["demo", "sandbox"],
            },
        },
        "s3": {
            "bucket_name": "sandbox-data-store",
            "path": f"datasets/{index:05d}/",
            "s3_uri": f"s3://sandbox-data-store/datasets/{index:05d}/",
        },
        "release_history": [],
        "release_status": "NOT_RELEASED",
        "release_approver": None,
        "release_timestamp": None,
        "access_info_uri": None,
    }


def _template_resources(template: dict[str, Any]) -> dict[str, str] | None:
    keys = [r["key"] for r in template["deferred_resources"] if not r.get("optional")]
    return {key: f"files/{key}.nc" for key in keys} or None


PEOPLE = [
    ("Ada", "Nguyen"),
    ("Ben", "Okafor"),
    ("Chloe", "Martin"),
    ("Dev", "Patel"),
    ("Erin", "Walsh"),
    ("Farid", "Haddad"),
]
ORGANISATIONS = ["Coastal Research Institute", "Inland Water Agency", "Reef Observatory"]
MODELS = ["Reef Hydrodynamics Model", "Catchment Runoff Model", "Seagrass Growth Model"]
STUDIES = [
    "Great Barrier Reef 2030 outlook",
    "Murray catchment drought scenarios",
    "Seagrass recovery trial",
    "Coastal inundation baseline",
    "Legacy sediment survey",
]
SCENARIOS = ["baseline", "rcp45", "rcp85", "restoration"]


def seed_demo(sandbox: Sandbox, runs: int = 60) -> SeedSummary:
    """Fill an empty sandbox. Raises SandboxNotEmpty when it already holds items."""
    if sandbox.store.count_items():
        raise SandboxNotEmpty(f"the sandbox already holds {sandbox.store.count_items()} items")
    seeder = _Seeder(sandbox)
    with sandbox.store.bulk_load() as tagger:
        _seed(seeder, runs, tagger)
        sandbox.store.set_meta("handle.next", str(seeder.next_handle))
    return seeder.summary


SERVICE_ACCOUNTS = [
    str(client["service_account"]["username"])
    for client in DEFAULT_CLIENTS.values()
    if "service_account" in client
]


def _seed(seeder: _Seeder, runs: int, tagger: BulkTagger) -> None:
    sandbox = seeder.sandbox
    people = [seeder.add("PERSON", _person(first, last)) for first, last in PEOPLE]
    # Each realm user (and the CI service account) is linked to a Person, as production requires of
    # anyone who edits a study.
    for username, linked_person in zip([*DEFAULT_USERS, *SERVICE_ACCOUNTS], people, strict=False):
        sandbox.store.put_link(username, linked_person)
    organisations = [
        seeder.add("ORGANISATION", {"display_name": name, "user_metadata": None, "name": name, "ror": None})
        for name in ORGANISATIONS
    ]
    models = [
        seeder.add(
            "MODEL",
            {
                "display_name": name,
                "user_metadata": None,
                "name": name,
                "description": f"The {name}.",
                "documentation_url": f"https://models.example.org/{index}/docs",
                "source_url": f"https://git.example.org/models/{index}",
            },
        )
        for index, name in enumerate(MODELS)
    ]
    template_specs = [
        ("Forcing data", "forcing", False),
        ("Model configuration", "config", False),
        ("Gridded output", "grid", False),
        ("Summary statistics", "summary", True),
    ]
    dataset_templates: list[tuple[str, dict[str, Any]]] = []
    for name, key, optional_extra in template_specs:
        domain: dict[str, Any] = {
            "display_name": name,
            "user_metadata": None,
            "description": f"Template for {name.lower()}.",
            "defined_resources": [],
            "deferred_resources": [
                {
                    "key": key,
                    "description": f"The {name.lower()} file.",
                    "usage_type": "GENERAL_DATA",
                    "optional": False,
                    "is_folder": False,
                    "additional_metadata": None,
                }
            ],
        }
        if optional_extra:
            domain["deferred_resources"].append(
                {
                    "key": "notes",
                    "description": "Optional notes.",
                    "usage_type": "GENERAL_DATA",
                    "optional": True,
                    "is_folder": False,
                    "additional_metadata": None,
                }
            )
        dataset_templates.append((seeder.add("DATASET_TEMPLATE", domain), domain))
    forcing, config, grid, summary = dataset_templates
    workflow_specs: list[tuple[str, list[Any], list[Any], dict[str, list[str]] | None]] = [
        (models[0], [forcing, config], [grid], {"required": ["scenario"], "optional": ["notes"]}),
        (models[1], [forcing], [summary], {"required": [], "optional": ["calibration"]}),
        (models[2], [grid], [summary, grid], None),
    ]
    workflows: list[tuple[str, list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]] = []
    for index, (model, inputs, outputs, template_annotations) in enumerate(workflow_specs):
        workflow_id = seeder.add(
            "MODEL_RUN_WORKFLOW_TEMPLATE",
            {
                "display_name": f"{MODELS[index]} workflow",
                "user_metadata": None,
                "software_id": model,
                "input_templates": [{"template_id": t, "optional": False} for t, _ in inputs],
                "output_templates": [{"template_id": t, "optional": False} for t, _ in outputs],
                "annotations": template_annotations,
            },
        )
        workflows.append((workflow_id, inputs, outputs))

    datasets_per_template = max(6, runs // 8)
    datasets: dict[str, list[str]] = {}
    counter = 0
    for template_id, domain in dataset_templates:
        datasets[template_id] = []
        for number in range(datasets_per_template):
            counter += 1
            name = f"{domain['display_name']} #{number + 1}"
            datasets[template_id].append(
                seeder.add(
                    "DATASET",
                    _dataset(
                        name,
                        organisations[counter % len(organisations)],
                        people[counter % len(people)],
                        counter,
                    ),
                )
            )

    studies = [
        seeder.add(
            "STUDY",
            {
                "display_name": title,
                "user_metadata": None,
                "title": title,
                "description": f"Study: {title}.",
                "study_alternative_id": f"ST-{i + 1:03d}",
            },
            owner=OWNERS[i % 2],
        )
        for i, title in enumerate(STUDIES)
    ]

    run_ids: list[str] = []
    for number in range(runs):
        workflow_id, inputs, outputs = workflows[number % len(workflows)]

        def pick(template: tuple[str, dict[str, Any]], offset: int, number: int = number) -> dict[str, Any]:
            pool = datasets[template[0]]
            return {
                "dataset_template_id": template[0],
                "dataset_id": pool[(number + offset) % len(pool)],
                "dataset_type": "DATA_STORE",
                "resources": _template_resources(template[1]),
            }

        annotations: dict[str, str] | None = None
        if number % len(workflows) == 0:
            annotations = {"scenario": SCENARIOS[number % len(SCENARIOS)]}
            if number % 4 == 0:
                annotations["notes"] = "spin-up of 10 model years"
        elif number % 5 == 1:
            annotations = {"calibration": f"v{number % 3 + 1}"}
        study = None if number % 12 == 11 else studies[number % 4]
        start = BASE_TIME + 86_400 * number
        record = ModelRunRecord.model_validate(
            {
                "workflow_template_id": workflow_id,
                "model_version": f"1.{number % 4}.0",
                "inputs": [pick(t, i) for i, t in enumerate(inputs)],
                "outputs": [pick(t, 3 + i) for i, t in enumerate(outputs)],
                "annotations": annotations,
                "display_name": f"{MODELS[number % len(MODELS)].split()[0]} run {number + 1:03d}",
                "description": f"Demo model run {number + 1} of the sandbox registry.",
                "study_id": study,
                "associations": {
                    "modeller_id": people[number % len(people)],
                    "requesting_organisation_id": organisations[number % 3] if number % 3 else None,
                },
                "start_time": start,
                "end_time": start + 3_600 * (1 + number % 5),
            }
        )
        never_lodged = number == runs - 1
        owner = OWNERS[number % 2]
        run_id = f"{HANDLE_PREFIX}{seeder.next_handle}"
        graph = graph_for(sandbox, run_id, record)
        serialisation = prov_serialisation(run_id, graph)
        seeder.add(
            "MODEL_RUN",
            {
                "display_name": record.display_name,
                "user_metadata": {"batch": f"B{number // 10}", "operator": owner}
                if number % 7 == 3
                else None,
                "record_status": "COMPLETE" if never_lodged else "LODGED",
                "record": record.model_dump(mode="json"),
                "prov_serialisation": serialisation,
            },
            owner=owner,
            groups={MODELLERS_GROUP: ["metadata-read", "metadata-write"]} if number % 2 else None,
        )
        if not never_lodged:  # lodged additively, as merge_additively does, in bulk
            tagger.tag(run_id, graph.nodes, graph.links.values())
        run_ids.append(run_id)
    tagger.flush()  # before tagging through the store, which numbers links itself
    sandbox.store.add_group_member(MODELLERS_GROUP, "alice")

    # A non-model-run connection: a CREATE activity that informed the legacy study.
    legacy_study = studies[4]
    create_id = seeder.add(
        "CREATE",
        {
            "display_name": "Create activity for legacy survey data",
            "user_metadata": None,
            "created_item_id": datasets[forcing[0]][0],
        },
    )
    create = Node(create_id, "CREATE", "ACTIVITY")
    dataset = Node(datasets[forcing[0]][0], "DATASET", "ENTITY")
    person = Node(people[0], "PERSON", "AGENT")
    for link in (
        Link(dataset, create, "wasGeneratedBy"),
        Link(create, person, "wasAssociatedWith"),
        Link(dataset, person, "wasAttributedTo"),
        Link(create, Node(legacy_study, "STUDY", "ACTIVITY"), "wasInformedBy"),
    ):
        sandbox.store.tag_link(link, create_id)

    locked_run = run_ids[min(4, len(run_ids) - 1)] if run_ids else studies[0]
    lock = sandbox.store.get_lock(locked_run) or {}
    lock["lock_information"] = {
        "locked": True,
        "history": [
            {
                "action_type": "LOCK",
                "username": "admin",
                "email": "admin@sandbox.provena.test",
                "reason": "Under review by the data steward",
                "timestamp": seeder.clock,
            }
        ],
    }
    sandbox.store.put_lock(lock)

    notable = seeder.summary.notable
    notable["study with a non-model-run connection"] = legacy_study
    notable["locked record"] = locked_run
    if run_ids:
        notable["model run without graph (never lodged)"] = run_ids[-1]
        notable["model run without study"] = run_ids[min(11, len(run_ids) - 1)]
        notable["model run with annotations"] = run_ids[0]
        notable["model run with user_metadata"] = run_ids[min(3, len(run_ids) - 1)]
    notable["studies"] = ", ".join(studies)
