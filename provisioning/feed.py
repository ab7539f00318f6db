"""The billing feed: every event exactly once, in commit order, to a poller that keeps a cursor.

An event's id is given when its row is inserted, but transactions commit in any order: a
poller that read "id > 41" just after event 42 committed would never see 41 if 41's
transaction committed a moment later. So the feed does not hand out ids. Each event gets a
place in a second sequence only after its transaction has committed, from one sequencer at
a time:

- `Event.save` writes the event and a pending `EventSequence` row (no number yet) in one
  transaction.
- `sequence_pending()` takes a transaction-level advisory lock (one sequencer at a time),
  reads the pending rows that have committed, numbers them after the highest number given
  so far (in event id order), and commits. It runs after every commit that wrote events,
  and in every feed read before it reads, so an event committed before a poll started is in
  that poll's answer (or on a later page of it).
- A sequencer's numbers become visible when it commits, and the next sequencer takes the
  lock only after that commit is visible (PostgreSQL releases locks after making a commit
  visible), so every reader sees a prefix of the sequence: no number ever appears below
  one a reader has already seen. A poller that passes back the cursor it was given
  therefore misses nothing and gets nothing twice, however the writers' transactions
  interleave.
- `read()` bounds each page by the highest number committed when it starts, so the cursor
  it returns for a short page is that number: polling with filters moves on even when
  nothing matched.

Why not PostgreSQL's transaction ids (each row's `pg_current_xact_id()` read only below
`pg_snapshot_xmin(pg_current_snapshot())`)? That is correct too, but its horizon is the
oldest transaction running anywhere in the cluster: one long transaction, in any database
of the server, holds every poller back. The sequencer costs one small UPDATE per batch.

The sequencer needs READ COMMITTED (Django's default on PostgreSQL): each statement sees
what committed before it. Rows written without `Event.save` (bulk_create, raw SQL) have no
pending row and never reach the feed. On SQLite (the single-process development setup) a
process-wide lock stands in for the advisory lock."""

import logging
import threading

from django.db import connection, transaction
from django.db.models import Case, Max, Value, When

from .models import EventSequence

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the sequencer: "event-feed" as a number.
LOCK_KEY = 0x6576656E74666564
BATCH = 1000
_local_lock = threading.Lock()


def _lock():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        return None
    _local_lock.acquire()
    return _local_lock


def sequence_pending():
    """Number every committed pending event, in batches; returns how many were numbered."""
    total = 0
    while True:
        numbered = _sequence_batch()
        total += numbered
        if numbered < BATCH:
            return total


def _sequence_batch():
    held = None
    try:
        with transaction.atomic():
            held = _lock()
            pending = list(EventSequence.objects.filter(sequence__isnull=True)
                           .order_by("event_id").values_list("event_id", flat=True)[:BATCH])
            if not pending:
                return 0
            top = EventSequence.objects.aggregate(top=Max("sequence"))["top"] or 0
            EventSequence.objects.filter(event_id__in=pending).update(sequence=Case(
                *[When(event_id=event_id, then=Value(top + n))
                  for n, event_id in enumerate(pending, start=1)]))
            return len(pending)
    finally:
        if held is not None:
            held.release()


def _sequence_quietly():
    try:
        sequence_pending()
    except Exception:  # noqa: BLE001 - the next write or read numbers them instead
        log.warning("could not number new events for the billing feed; the next feed read "
                    "or write will", exc_info=True)


def sequence_after_commit():
    """Number the events of the current transaction once it commits (once per transaction)."""
    if connection.in_atomic_block and any(
            entry[1] is _sequence_quietly for entry in connection.run_on_commit):
        return
    transaction.on_commit(_sequence_quietly, robust=True)


def read(events, after=0, limit=100):
    """One page of the feed: the events of `events` (a scoped, filtered queryset) numbered
    after the cursor `after`, in feed order, and the cursor that continues after them.

    The numbers are the provider's one sequence: a tenant sees the numbers of its own events
    only, but their gaps (and a short page's cursor, the highest number committed) tell how
    many events the panel recorded meanwhile, not whose or what. A per-tenant sequence
    would hide that at the cost of one sequencer per tenant."""
    sequence_pending()
    horizon = EventSequence.objects.aggregate(top=Max("sequence"))["top"] or 0
    page = list(events.filter(feed_entry__sequence__gt=after,
                              feed_entry__sequence__lte=horizon)
                .select_related("feed_entry").order_by("feed_entry__sequence")[:limit + 1])
    if len(page) > limit:
        page = page[:limit]
        return page, page[-1].feed_entry.sequence, True
    return page, max(horizon, after), False
