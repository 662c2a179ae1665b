"""Read what undoing a run needs: every record the run touched as it is now (typed, with roles and lock
state; an id that is now another kind of item, by the general fetch), and, for model runs that are back
as they were, the graph around them (to tell whether a relodge is still owed).

Read-only and bounded like the playbook reader: the connection lanes bound the requests, a semaphore
the reads waiting for one.
"""

from __future__ import annotations

import asyncio

from provena_ops.facts.model import RecordFact, State
from provena_ops.facts.reader import fatal, new_state, together
from provena_ops.playbook.model import Restore, RestoreImage
from provena_ops.provena import prov, registry
from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp


async def read_restore_state(http: ProvenaHttp, restore: Restore) -> State:
    state = await new_state(http)
    waiting = asyncio.Semaphore(2 * http.concurrency)

    async def read(image: RestoreImage) -> None:
        async with waiting:
            await _read_one(http, image, state)

    await together(*(read(image) for image in restore.images))
    return state


async def _read_one(http: ProvenaHttp, image: RestoreImage, state: State) -> None:
    try:
        fetched = await registry.fetch(http, image.subtype, image.id)
        if fetched.item is None and not fetched.unreadable:
            fetched = await registry.general_fetch(http, image.id)  # another kind of item now?
    except ProvenaError as exc:
        if fatal(exc):
            raise
        state.keep(RecordFact(id=image.id, problem=exc.message, unreadable=True))
        return
    state.keep(
        RecordFact.read(
            image.id,
            fetched.item,
            roles=list(fetched.roles),
            locked=fetched.locked,
            problem=fetched.problem,
            unreadable=fetched.unreadable,
        )
    )
    if image.undoes == "delete_model_run" and fetched.item is not None:  # back: is its graph too?
        try:
            upstream, downstream = await together(
                prov.explore(http, "upstream", image.id, depth=1),
                prov.explore(http, "downstream", image.id, depth=1),
            )
        except ProvenaError as exc:
            if fatal(exc):
                raise
            state.graph_read_errors[image.id] = exc.message
            return
        state.lineage[image.id] = {
            "upstream": sorted(node.id for node in upstream),
            "downstream": sorted(node.id for node in downstream),
        }
