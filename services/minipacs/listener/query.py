"""Query/Retrieve C-FIND (Patient Root and Study Root): read the identifier,
stream the index's answer, map outcomes to statuses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing

from pydicom.dataset import Dataset
from pynetdicom.events import Event
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from minipacs.db import DatabaseUnavailable
from minipacs.index.attributes import PATIENT_ROOT, STUDY_ROOT
from minipacs.index.find import find
from minipacs.index.matching import IdentifierError, MatchOptions
from minipacs.listener.operations import (
    ListenerContext,
    peer,
    status_dataset,
    streaming_operation,
)
from minipacs.status import Status

log = logging.getLogger(__name__)

MODELS = {
    str(PatientRootQueryRetrieveInformationModelFind): PATIENT_ROOT,
    str(StudyRootQueryRetrieveInformationModelFind): STUDY_ROOT,
}
SOP_CLASSES = tuple(MODELS)


def find_handler(ctx: ListenerContext):
    """The EVT_C_FIND handler for the Q/R FIND SOP classes (app.py dispatches
    on the SOP class, so other C-FIND services can share the event)."""
    options = MatchOptions(
        pn_case_sensitive=ctx.settings.pn_case_sensitive,
        retrieve_ae_title=ctx.settings.ae_title,
    )

    @streaming_operation(ctx, "c_find_count")
    def on_c_find(event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        model = MODELS[str(event.request.AffectedSOPClassUID)]
        who = peer(event)
        try:
            identifier = event.identifier
            query, responses = find(
                ctx.pool, identifier, model, options, ctx.settings.find_max_results
            )
        except IdentifierError as exc:
            status = (
                Status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
                if exc.invalid_level
                else Status.UNABLE_TO_PROCESS
            )
            log.info("C-FIND %s from %s: %s: %s", model, who, status.name, exc)
            yield status_dataset(status, str(exc)), None
            return
        except (ValueError, ArithmeticError, LookupError, TypeError, NotImplementedError) as exc:
            log.info("C-FIND %s from %s: undecodable identifier: %s", model, who, exc)
            yield status_dataset(Status.UNABLE_TO_PROCESS, "cannot decode identifier"), None
            return

        pending = Status.PENDING_WARNING if query.unsupported else Status.PENDING
        count = 0
        final: int | Dataset = Status.SUCCESS
        # The stream (a transaction and a cursor) is closed before the final
        # status is yielded: pynetdicom stops iterating after a final status.
        with closing(responses):
            try:
                for response in responses:
                    if event.is_cancelled:
                        final = Status.CANCEL
                        break
                    count += 1
                    yield pending, response
            except DatabaseUnavailable as exc:
                log.error("C-FIND from %s: database unavailable: %s", who, exc)
                final = status_dataset(Status.OUT_OF_RESOURCES, "index database unavailable")
            except Exception:
                log.exception("C-FIND %s from %s failed unexpectedly", query.level, who)
                final = status_dataset(Status.UNABLE_TO_PROCESS, "internal error, see PACS log")
        if final is not Status.SUCCESS:
            outcome = "cancelled" if final == Status.CANCEL else "failed"
            log.info("C-FIND %s from %s: %s after %d matches", query.level, who, outcome, count)
            yield final, None
            return
        log.info(
            "C-FIND %s %s from %s: %d matches%s",
            model,
            query.level,
            who,
            count,
            f" (keys not supported: {', '.join(query.unsupported)})" if query.unsupported else "",
        )
        yield Status.SUCCESS, None

    return on_c_find
