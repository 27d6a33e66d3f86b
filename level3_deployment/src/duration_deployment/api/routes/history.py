"""``/history`` (the history of the table and the notes written into it) and ``GET
/predictions`` (the prediction log, joined with the feedback). Both need the token: the log
holds every ride's inputs."""

from typing import Annotated

import anyio.to_thread
import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import StringConstraints

from duration_deployment.api.deps import ActorHeader, LogDep, ManagerDep, require_token
from duration_deployment.api.responses import CONTROL_ERRORS
from duration_deployment.history import Action
from duration_deployment.routing import VARIANT_NAME
from duration_deployment.schemas import (
    NOTE_KIND,
    HistoryPage,
    NoteRequest,
    PredictionsPage,
)

#: Most rows one ``GET /predictions`` answers.
MAX_PAGE_ROWS = 200_000

router = APIRouter(
    tags=["control"], dependencies=[Depends(require_token)], responses=CONTROL_ERRORS
)


@router.get("/history", response_model=HistoryPage)
async def history(
    log: LogDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    action: Annotated[
        list[Action], Query(description="entries of these actions (repeatable)")
    ] = [],  # noqa: B006 (FastAPI copies a default; the signature is the query's schema)
    kind: Annotated[
        list[Annotated[str, StringConstraints(pattern=NOTE_KIND)]],
        Query(max_length=20, description="notes of these kinds (repeatable)"),
    ] = [],  # noqa: B006
) -> HistoryPage:
    """The newest ``limit`` entries after ``after_id``, oldest first: every table change and
    note, or only those of the ``action`` values and the notes of the ``kind`` values."""
    entries = await anyio.to_thread.run_sync(
        lambda: log.history(limit, actions=action or None, after_id=after_id, kind=kind or None)
    )
    return HistoryPage(entries=entries, count=len(entries))


@router.post("/history", status_code=201)
async def add_note(
    body: NoteRequest, manager: ManagerDep, actor: ActorHeader = "api"
) -> dict[str, object]:
    """Write a note into the history (the table does not change); the entry is returned."""
    return await manager.note(
        body.kind,
        body.summary,
        body.data,
        actor=actor,
        variant=body.variant,
        model_version=body.model_version,
    )


@router.get("/predictions", response_model=PredictionsPage)
async def logged_predictions(
    log: LogDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last: Annotated[int, Query(ge=1, le=MAX_PAGE_ROWS)] = 10_000,
    variant: Annotated[str | None, Query(pattern=VARIANT_NAME)] = None,
    shadow: bool | None = None,
    labelled: Annotated[bool, Query(description="only rides with an actual duration")] = False,
) -> PredictionsPage:
    """The newest ``last`` logged predictions after ``after_id`` (of ``variant``, live or
    shadow, labelled only), oldest first, each with its actual duration (minutes)."""

    def read() -> pd.DataFrame:
        return log.frame(
            after_id=after_id, variant=variant, shadow=shadow, last=last, labelled=labelled
        )

    frame = await anyio.to_thread.run_sync(read)
    frame = frame.astype(object).where(frame.notna(), None)
    rows = frame.to_numpy().tolist()
    last_id = int(frame["id"].max()) if len(frame) else 0
    return PredictionsPage(columns=list(frame.columns), rows=rows, count=len(rows), last_id=last_id)
