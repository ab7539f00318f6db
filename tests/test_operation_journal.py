"""The operation journal's rules, without a directory: the dry-run backend records what it
would send, operations of one customer run in order, and passwords never reach the
journal, the database or the broker in clear text."""

import base64
import json
import uuid

import pytest
import redis
from celery import current_app
from django.conf import settings as django_settings

from provisioning import journal, secrets, services
from provisioning.models import Customer, Operation, OperationSecret
from servicplans.models import ServicePlan

PASSWORD = "Sealed-Password-2026!"


@pytest.fixture
def dry_run(settings):
    settings.PROVISIONING_BACKEND = "dryrun"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = False


@pytest.mark.django_db(transaction=True)
def test_the_dry_run_backend_journals_the_exact_ldap_and_exchange_calls(dry_run):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    org = Customer.objects.get(name="Contoso")
    operation = Operation.objects.get(customer=org, action="provision_organization")
    assert operation.state == "succeeded"
    ldap = [e for e in operation.backend_log if e["backend"] == "ldap"]
    root = "OU=Microsoft Exchange Hosted Organizations,DC=hosting,DC=test"
    assert ldap[0] == {"backend": "ldap", "op": "add", "dn": root,
                       "attributes": {"objectClass": ["top", "organizationalUnit"]}}
    # The organization's own objects carry the tenant mark that proves whose they are.
    mark = f"hosted-panel customer={org.pk} op={operation.pk}"
    assert {"backend": "ldap", "op": "add", "dn": f"OU=Contoso,{root}",
            "attributes": {"objectClass": ["top", "organizationalUnit"],
                           "adminDescription": mark}} in ldap
    cmdlets = [e["cmdlet"] for e in operation.backend_log if e["backend"] == "exchange"]
    assert "New-AcceptedDomain" in cmdlets and "New-AddressBookPolicy" in cmdlets
    user = Customer.objects.get(upn="megan@contoso.example")
    log = Operation.objects.get(customer=user).backend_log
    password_writes = [e for e in log if "unicodePwd" in e.get("changes", {})]
    assert password_writes[0]["changes"]["unicodePwd"] == [["replace", ["********"]]]
    assert "Demo-Panel-2026!" not in json.dumps(log)


def test_operations_of_one_customer_run_in_order(demo, settings):
    settings.PROVISIONING_BACKEND = "dryrun"
    user = Customer.objects.get(upn="alex@contoso.example")
    first = journal.enqueue(user, "set_user_enabled", enabled=False)
    second = journal.enqueue(user, "set_user_enabled", enabled=True)
    # The later one is asked to wait while an earlier one of its customer is pending ...
    outcome = journal.execute(second.pk)
    assert outcome.state == "queued" and outcome.retry_in is not None
    second.refresh_from_db()
    assert second.state == "queued" and second.attempts == 0
    # ... and so is a user's while its organization's operation is pending.
    org_operation = Operation.objects.get(customer=user.parent,
                                          action="provision_organization")
    assert org_operation.state == "queued"
    assert journal.execute(first.pk).retry_in is not None
    assert journal.execute(org_operation.pk).state == "succeeded"


def test_a_finished_operation_is_never_run_twice(demo, settings):
    settings.PROVISIONING_BACKEND = "dryrun"
    org_operation = Operation.objects.get(customer=demo, action="provision_organization")
    assert journal.execute(org_operation.pk).state == "succeeded"
    org_operation.refresh_from_db()
    attempts, steps = org_operation.attempts, org_operation.steps
    assert journal.execute(org_operation.pk).state == "succeeded"
    org_operation.refresh_from_db()
    assert (org_operation.attempts, org_operation.steps) == (attempts, steps)


@pytest.mark.django_db(transaction=True)
def test_passwords_never_reach_the_journal_or_the_broker_in_clear_text():
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    org = Customer.objects.get(name="Contoso")
    queue = f"inspect-{uuid.uuid4().hex}"
    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue  # a queue no worker reads
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        user = services.create_user(org, display_name="Sealed", local_part="sealed",
                                    domain="contoso.example", password=PASSWORD,
                                    service_plan=ServicePlan.objects.get(name="Gold"))
        messages = broker.lrange(queue, 0, -1)
    finally:
        current_app.conf.task_default_queue = previous
        broker.delete(queue)
    operation = Operation.objects.get(customer=user)
    assert operation.needs_secret
    assert PASSWORD not in json.dumps([operation.params, operation.steps,
                                       operation.backend_log, operation.last_error])
    # The message carries the operation's id only; the password waits in the outbox,
    # sealed, until the operation no longer needs it.
    assert len(messages) == 1
    raw = messages[0].decode()
    assert PASSWORD not in raw
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    assert body[0] == [operation.pk]
    sealed = OperationSecret.objects.get(operation=operation).sealed
    assert PASSWORD not in sealed and secrets.unseal(sealed) == PASSWORD


def test_stale_operations_are_sent_again_with_their_sealed_password(demo, settings):
    """Defect 3: work created while the broker was down used to wait ten minutes and then
    fail for want of its password. Now every lost message is sent again, and the
    password is read from the outbox."""
    from datetime import timedelta

    from django.utils import timezone

    settings.PROVISIONING_BACKEND = "dryrun"
    user = Customer.objects.get(upn="alex@contoso.example")
    # As if the broker had been down when these committed, a minute ago.
    plain = journal.enqueue(user, "set_user_enabled", enabled=False)
    secret = journal.enqueue(user, "reset_password", secret=PASSWORD)
    fresh = journal.enqueue(user, "set_user_enabled", enabled=True)
    Operation.objects.filter(pk__in=[plain.pk, secret.pk]).update(
        due=timezone.now() - timedelta(minutes=1))
    queue = f"inspect-{uuid.uuid4().hex}"
    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue  # a queue no worker reads
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        assert journal.requeue_stale() == 2
        # Sent once, an operation is not sent again before another grace period.
        assert journal.requeue_stale() == 0
        messages = broker.lrange(queue, 0, -1)
    finally:
        current_app.conf.task_default_queue = previous
        broker.delete(queue)
    sent = sorted(json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in messages)
    assert sent == [plain.pk, secret.pk]
    assert fresh.pk not in sent
    secret.refresh_from_db()
    assert secret.state == "queued"
    # The worker finds the password in the outbox, and it is destroyed once used.
    for pk in Operation.objects.order_by("pk").values_list("pk", flat=True):
        assert journal.execute(pk).state == "succeeded"
    assert not OperationSecret.objects.filter(operation=secret).exists()


def test_an_operation_waiting_behind_another_is_never_failed_as_lost(demo, settings):
    """Defect 4: the blocked path never touched the operation, so requeue_stale took an
    operation re-delivered every second for minutes for a lost one and failed it."""
    from datetime import timedelta

    from django.utils import timezone

    settings.PROVISIONING_BACKEND = "dryrun"
    user = Customer.objects.get(upn="alex@contoso.example")
    first = journal.enqueue(user, "set_user_enabled", enabled=False)
    second = journal.enqueue(user, "reset_password", secret=PASSWORD)
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    Operation.objects.filter(pk__in=[first.pk, second.pk]).update(
        created=ten_minutes_ago, updated=ten_minutes_ago, due=ten_minutes_ago)
    # The first holds a live lease; the second keeps being delivered and waits its turn.
    Operation.objects.filter(pk=first.pk).update(
        state="running", lease_until=timezone.now() + timedelta(minutes=1))
    assert journal.execute(second.pk).retry_in is not None
    queue = f"inspect-{uuid.uuid4().hex}"
    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue
    try:
        assert journal.requeue_stale() == 0
    finally:
        current_app.conf.task_default_queue = previous
        redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(queue)
    second.refresh_from_db()
    assert second.state == "queued" and second.last_error == ""
    assert OperationSecret.objects.filter(operation=second).exists()


def test_an_attempt_is_counted_when_it_starts(demo, settings):
    """Defect 7: a worker killed mid-operation left `attempts` uncounted, because the
    count was written only when an attempt ended."""
    from datetime import timedelta

    from django.utils import timezone

    from provisioning.journal import _claim

    org_operation = Operation.objects.get(customer=demo, action="provision_organization")
    assert _claim(org_operation.pk, "task-1")
    org_operation.refresh_from_db()
    assert (org_operation.state, org_operation.attempts) == ("running", 1)
    # The worker dies; its lease runs out; the redelivered task takes over.
    Operation.objects.filter(pk=org_operation.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1))
    settings.PROVISIONING_BACKEND = "dryrun"
    assert journal.execute(org_operation.pk, task_id="task-2").state == "succeeded"
    org_operation.refresh_from_db()
    assert org_operation.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_dry_run_gives_a_new_object_a_new_guid_as_ad_does(dry_run):
    """Issue #9, finding 9: dry-run GUIDs were derived from the DN, so a user renamed and
    then re-created under the old name collided with it, and the rollback journaled the
    delete of the other user."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    org = Customer.objects.get(name="Contoso")
    gold = ServicePlan.objects.get(name="Gold")
    first = services.create_user(org, display_name="Pat Doe", local_part="pat",
                                 domain="contoso.example", password=PASSWORD, service_plan=gold)
    services.update_user(first, display_name="Pat Doe-Smith")
    second = services.create_user(org, display_name="Pat Doe", local_part="pat.doe",
                                  domain="contoso.example", password=PASSWORD, service_plan=gold)
    first.refresh_from_db()
    second.refresh_from_db()
    assert Operation.objects.get(customer=second).state == "succeeded"
    assert None not in (first.object_guid, second.object_guid)
    assert first.object_guid != second.object_guid
    deletes = [e for o in Operation.objects.all() for e in o.backend_log
               if e.get("op") == "delete"]
    assert deletes == []


def test_priming_the_dry_run_directory_keeps_recorded_guids_and_is_linear(
        demo, settings, django_assert_max_num_queries):
    """After a restart the in-memory directory is rebuilt from the panel's records, with
    their GUIDs, in one pass over the organization's users: a fixed number of queries
    whatever their number (bench/ measures how fast)."""
    import uuid as uuidlib

    from provisioning.actions import prime_dry_run
    from provisioning.directory import DirectorySettings, DryRunDirectoryClient
    from tests.support.bulk import add_users

    settings.PROVISIONING_BACKEND = "dryrun"
    Customer.objects.filter(pk=demo.pk).update(object_guid=uuidlib.uuid4())
    demo.refresh_from_db()
    add_users(demo, 2000)
    for pk in Customer.objects.filter(parent=demo, object_guid=None).values_list("pk",
                                                                                flat=True):
        Customer.objects.filter(pk=pk).update(object_guid=uuidlib.uuid4())
    users = list(Customer.objects.filter(parent=demo).users())
    assert len(users) > 2000
    client = DryRunDirectoryClient(DirectorySettings(host="x", base_dn="DC=hosting,DC=test"))
    with django_assert_max_num_queries(2):
        prime_dry_run(client, demo)
    for user in users:
        assert client.get_by_guid(str(user.object_guid))["userPrincipalName"] == user.upn
    assert client.get_by_guid(str(demo.object_guid))["kind"] == "ou"
    assert client.journal == []
