"""The billing feed: GET /api/v1/events/?after=<cursor> gives a poller every event exactly
once, in commit order, while writers' transactions commit in any order
(provisioning.feed); filters narrow it without stalling the cursor; JSON and CSV."""

import csv
import io
import random
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from provisioning import constants as c
from provisioning import feed, services
from provisioning.models import Customer, Event, EventSequence
from tests.support.api import api_client, token_of
from tests.support.views import PRIMARY, RESELLER

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="needs concurrent transactions")


def poll(client, after, **filters):
    response = client.get("/api/v1/events/", {"after": after, **filters})
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"], body["next_cursor"], body["more"]


def drain(client, after=0, **filters):
    events = []
    while True:
        page, after, more = poll(client, after, **filters)
        events += page
        if not more:
            return events, after


def in_thread(target, *args):
    def run():
        try:
            target(*args)
        finally:
            connection.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_not_skipped():
    """Event a gets the lower id but commits after event b, which a poller has already
    received: a cursor of ids would skip a for ever; the feed's cursor does not."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    contoso = Customer.objects.organizations().get(name="Contoso")
    client = api_client(RESELLER)
    _, cursor = drain(client)
    a_inserted, b_polled, ids = threading.Event(), threading.Event(), {}

    def slow_writer():
        with transaction.atomic():
            ids["a"] = services.record_event(contoso, c.PLAN_CHANGE, note="a").pk
            a_inserted.set()
            assert b_polled.wait(20)

    thread = in_thread(slow_writer)
    assert a_inserted.wait(20)
    ids["b"] = services.record_event(contoso, c.PLAN_CHANGE, note="b").pk
    assert ids["a"] < ids["b"]
    page, cursor, _ = poll(client, cursor)
    assert [e["id"] for e in page] == [ids["b"]]
    b_polled.set()
    thread.join(20)
    page, cursor, _ = poll(client, cursor)
    assert [e["id"] for e in page] == [ids["a"]]
    assert poll(client, cursor)[0] == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_committing_in_random_order_nothing_missed_nothing_repeated():
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    contoso = Customer.objects.organizations().get(name="Contoso")
    token = token_of(RESELLER)
    writers, transactions_each = 6, 8
    done, received, errors = threading.Event(), [], []

    def writer(n):
        rng = random.Random(n)
        for t in range(transactions_each):
            with transaction.atomic():
                for e in range(rng.randint(1, 3)):
                    services.record_event(contoso, c.PLAN_CHANGE, writer=n, tx=t, e=e)
                    time.sleep(rng.uniform(0, 0.02))
                time.sleep(rng.uniform(0, 0.03))  # commit later, in random order

    def poller():
        client, cursor = api_client(token=token), 0
        try:
            while True:
                finished = done.is_set()  # read before polling: one full poll after
                page, cursor, more = poll(client, cursor, limit=7)
                received.extend(page)
                if finished and not more:
                    return
                time.sleep(0.005 if more else 0.02)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    polling = in_thread(poller)
    threads = [in_thread(writer, n) for n in range(writers)]
    for thread in threads:
        thread.join(120)
    done.set()
    polling.join(120)
    assert not errors
    ids = [e["id"] for e in received]
    assert len(ids) == len(set(ids)), "an event was received twice"
    assert sorted(ids) == sorted(Event.objects.values_list("pk", flat=True)), \
        "an event was missed"
    cursors = [e["cursor"] for e in received]
    assert cursors == sorted(cursors)
    # The writers' events really did commit out of id order.
    assert ids != sorted(ids)
    assert not EventSequence.objects.filter(sequence__isnull=True).exists()


# --- Filters, formats, cursors -------------------------------------------------------------


def test_filters_narrow_the_feed_and_the_cursor_still_moves_on(demo, other_tenant):
    provider = api_client("provider")
    everything, end = drain(provider)
    assert [e["cursor"] for e in everything] == sorted(e["cursor"] for e in everything)
    megan = demo.children.get(upn="megan@contoso.example")
    signups, cursor = drain(provider, event_type=c.PLAN_SIGNUP)
    assert signups and {e["event_type"] for e in signups} == {c.PLAN_SIGNUP}
    assert cursor == end  # past what did not match
    own, _ = drain(provider, customer=megan.pk)
    assert {e["customer"]["id"] for e in own} == {megan.pk}
    organization, _ = drain(provider, organization=demo.pk)
    assert {e["customer"]["id"] for e in organization} == {
        demo.pk, *demo.children.values_list("pk", flat=True)} & {
        e["customer"]["id"] for e in everything}
    subtree, _ = drain(provider, reseller=other_tenant["reseller"].pk)
    assert {e["customer"]["name"] for e in subtree} >= {"Fabrikam", "Fabrikam User"}
    assert not {e["customer"]["name"] for e in subtree} & {"Contoso", "Megan Bowen"}


def test_an_organizations_login_gets_its_own_events_only(demo, other_tenant):
    events, _ = drain(api_client(PRIMARY))
    customers = {e["customer"]["id"] for e in events}
    assert customers <= {demo.pk, *demo.children.values_list("pk", flat=True)}
    assert demo.pk in customers


def test_pages_and_cursors(demo):
    client = api_client(RESELLER)
    page, cursor, more = poll(client, 0, limit=2)
    assert len(page) == 2 and more and cursor == page[-1]["cursor"]
    response = client.get("/api/v1/events/", {"after": cursor, "limit": 2})
    assert response["X-Next-Cursor"] == str(response.json()["next_cursor"])
    assert f"after={response.json()['next_cursor']}" in response["Link"]
    # A cursor from the future waits there.
    assert poll(client, 10**9) == ([], 10**9, False)
    for bad in ({"after": -1}, {"after": "x"}, {"limit": 0}, {"limit": 1001},
                {"event_type": "NoSuchType"}, {"since": "yesterday"}):
        assert client.get("/api/v1/events/", bad).status_code == 400, bad


def test_the_feed_as_csv(demo):
    client = api_client(RESELLER)
    response = client.get("/api/v1/events/", {"format": "csv", "limit": 3})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:4] == ["cursor", "id", "occurred_at", "event_type"]
    assert len(rows) == 4
    assert response["X-Next-Cursor"] == rows[-1][0]
    following = client.get("/api/v1/events/", {"format": "csv", "limit": 3,
                                               "after": response["X-Next-Cursor"]})
    first = list(csv.reader(io.StringIO(following.content.decode())))[1]
    assert int(first[0]) > int(rows[-1][0])


def test_a_formula_in_an_event_is_defused_in_csv(demo):
    services.record_event(demo, c.PLAN_CHANGE, note="=HYPERLINK(\"http://evil\")")
    text = api_client(RESELLER).get("/api/v1/events/", {"format": "csv", "limit": 1000}
                                    ).content.decode()
    assert "note==HYPERLINK" in text  # the cell starts with "note=", never with "="
    rows = list(csv.reader(io.StringIO(text)))
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_the_sequencer_numbers_what_is_pending_once(demo):
    feed.sequence_pending()
    event = services.record_event(demo, c.PLAN_CHANGE)
    # Inside this test's transaction nothing has committed: the event waits, unnumbered.
    assert EventSequence.objects.get(event=event).sequence is None
    assert feed.sequence_pending() == 1
    assert feed.sequence_pending() == 0
    assert EventSequence.objects.get(event=event).sequence == EventSequence.objects.count()
