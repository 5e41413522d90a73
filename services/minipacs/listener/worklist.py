"""Modality Worklist C-FIND (PS3.4 K): one handler for one event."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from pynetdicom.events import Event

from minipacs.db import DatabaseUnavailable
from minipacs.listener.operations import (
    ListenerContext,
    peer,
    status_dataset,
    streaming_operation,
)
from minipacs.status import Status
from minipacs.worklist import mwl
from minipacs.worklist.matching import QueryError

log = logging.getLogger(__name__)


def worklist_find(ctx: ListenerContext) -> Callable[[Event], Iterator]:
    """The EVT_C_FIND handler for ModalityWorklistInformationFind requests,
    to be called by the listener's C-FIND dispatcher."""

    @streaming_operation(ctx, "mwl_count")
    def on_mwl_find(event: Event) -> Iterator:
        try:
            matches = mwl.find(ctx.pool, event.identifier)
        except QueryError as exc:
            log.info("MWL C-FIND from %s: refused: %s", peer(event), exc)
            yield status_dataset(Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc)), None
            return
        except DatabaseUnavailable as exc:
            log.error("MWL C-FIND from %s: database unavailable: %s", peer(event), exc)
            yield status_dataset(Status.OUT_OF_RESOURCES, "worklist database unavailable"), None
            return
        log.info("MWL C-FIND from %s: %d matches", peer(event), len(matches))
        for ds in matches:
            if event.is_cancelled:
                yield Status.CANCEL, None
                return
            yield Status.PENDING, ds

    return on_mwl_find
