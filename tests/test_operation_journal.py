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
from provisioning.models import Customer, Operation
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
    assert {"backend": "ldap", "op": "add", "dn": f"OU=Contoso,{root}",
            "attributes": {"objectClass": ["top", "organizationalUnit"]}} in ldap
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
    assert len(messages) == 1
    raw = messages[0].decode()
    assert PASSWORD not in raw
    body = json.loads(base64.b64decode(json.loads(raw)["body"]))
    operation_id, sealed = body[0]
    assert operation_id == operation.pk
    assert PASSWORD not in sealed and secrets.unseal(sealed) == PASSWORD


def test_stale_operations_are_sent_again_or_failed_visibly(demo, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.PROVISIONING_BACKEND = "dryrun"
    user = Customer.objects.get(upn="alex@contoso.example")
    # As if the broker had been down when these committed, ten minutes ago.
    plain = journal.enqueue(user, "set_user_enabled", enabled=False)
    secret = journal.enqueue(user, "reset_password", secret=PASSWORD)
    fresh = journal.enqueue(user, "set_user_enabled", enabled=True)
    Operation.objects.filter(pk__in=[plain.pk, secret.pk]).update(
        updated=timezone.now() - timedelta(minutes=10))
    queue = f"inspect-{uuid.uuid4().hex}"
    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = queue  # a queue no worker reads
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        assert journal.requeue_stale() == 1
        messages = broker.lrange(queue, 0, -1)
    finally:
        current_app.conf.task_default_queue = previous
        broker.delete(queue)
    sent = [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in messages]
    assert sent == [plain.pk]
    assert fresh.pk not in sent
    secret.refresh_from_db()
    assert secret.state == "failed" and "Retry it with a new password" in secret.last_error
