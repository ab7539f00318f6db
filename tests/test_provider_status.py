"""The provider's status page in the admin: staff only; what /readyz checks, the workers'
and beat's heartbeats, each server's services with their last successful contact (set by a
connection test or a live operation, never by the dry-run backend), and the operations
queued, running and failed with the oldest queued one's age."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from panel import health
from provisioning import backends, journal
from provisioning.exchange import ExchangeClient
from provisioning.models import Customer, Operation
from servers.connectivity import test_connection as connection_test
from servers.models import Service, ServiceKind
from servicplans.models import FeatureType, PlanCategory, PlanFeature, ServicePlan
from tests.support.views import login


def row(page, css_class, text):
    """The text of the table rows of one class that contain `text`."""
    rows = re.findall(rf'<tr class="{css_class}">(.*?)</tr>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>|\s+", " ", r) for r in rows if text in r)


def test_only_staff_see_the_status_page(client, demo):
    url = reverse("provider_status")
    assert client.get(url).status_code == 302
    login(client, "reseller")
    assert client.get(url)["Location"].startswith(reverse("admin:login"))
    login(client, "provider")
    assert client.get(url).status_code == 200
    assert url.encode() in client.get(reverse("admin:index")).content


def test_the_status_page_shows_heartbeats_contacts_and_operations(client, demo,
                                                                  own_broker):
    health.record_heartbeat("worker", "celery@worker-1")
    health.record_heartbeat("beat")
    directory = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    Service.objects.filter(pk=directory.pk).record_contact(
        at=timezone.now() - timedelta(minutes=5))
    queued = Operation.objects.filter(state="queued")
    assert queued.exists()  # the demo's sign-up, not sent while the test's transaction runs
    queued.filter(pk=queued.order_by("pk").first().pk).update(
        created=timezone.now() - timedelta(hours=2))
    Operation.objects.filter(pk=queued.order_by("-pk").first().pk).update(state="failed")

    page = login(client, "provider").get(reverse("provider_status")).content.decode()
    assert "Readiness: ready" in page
    assert "celery@worker-1" in row(page, "worker", "celery@worker-1")
    assert "alive" in row(page, "worker", "celery@worker-1")
    assert "alive" in row(page, "beat", "beat")
    assert "5 minutes ago" in row(page, "service", directory.name)
    exchange = Service.objects.get(kind=ServiceKind.EXCHANGE)
    assert "never" in row(page, "service", exchange.name)
    counts = {state: Operation.objects.filter(state=state).count()
              for state in ("queued", "running", "failed")}
    for state, count in counts.items():
        assert re.search(rf"\b{count}\b", row(page, f"operations-{state}", "")), state
    age = row(page, "oldest-queued", "")
    assert int(re.search(r"(\d+) s old", age).group(1)) >= 7200


def test_the_status_page_says_when_the_broker_is_down(client, demo, own_broker):
    own_broker.stop()
    page = login(client, "provider").get(reverse("provider_status")).content.decode()
    assert "Readiness: not ready" in page
    assert "broker unreachable" in page
    assert "The broker cannot be read" in page


@pytest.fixture
def exchange_service(demo, wsman_endpoint):
    service = Service.objects.get(kind=ServiceKind.EXCHANGE)
    service.winrm_endpoint = wsman_endpoint.url
    service.winrm_transport = "basic"
    service.winrm_allow_insecure = True
    service.exchange_username = "HOSTING\\panel"
    service.exchange_password = "Exchange-Pass-1"
    service.save()
    return service


def test_a_connection_test_that_answers_is_the_last_contact(exchange_service):
    before = exchange_service.updated
    ok, _ = connection_test(exchange_service)
    assert ok
    exchange_service.refresh_from_db()
    assert timezone.now() - exchange_service.last_contact < timedelta(seconds=10)
    # Recording a contact is not a change of the settings: cached clients are kept.
    assert exchange_service.updated == before

    directory = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    directory.ldap_host, directory.ldap_port = "127.0.0.1", 1  # nothing listens there
    directory.save()
    ok, _ = connection_test(directory)
    assert not ok
    directory.refresh_from_db()
    assert directory.last_contact is None


def mailbox_plan(name, megabytes):
    plan = ServicePlan.objects.create(name=name, category=PlanCategory.objects.first())
    PlanFeature.objects.create(service_plan=plan, value=str(megabytes),
                               feature_type=FeatureType.objects.get(name="MailboxSize"))
    return plan


def test_a_live_operation_records_the_services_it_reached(exchange_service, demo, settings,
                                                          wsman_endpoint):
    """A plan change that only touches the mailbox goes to Exchange alone (the WinRM
    stand-in): Exchange's last contact is set, the directory's is not."""
    settings.PROVISIONING_BACKEND = "live"
    small, large = mailbox_plan("Small mailbox", 1024), mailbox_plan("Large mailbox", 4096)
    megan = Customer.objects.get(upn="megan@contoso.example")
    guid = wsman_endpoint.exchange.add_user(f"megan-{uuid.uuid4().hex[:6]}@contoso.example")[
        "Guid"]
    ExchangeClient(backends.exchange_settings(exchange_service)).enable_mailbox(guid)
    Customer.objects.filter(pk=megan.pk).update(object_guid=guid)
    Operation.objects.update(state="succeeded")  # the demo's own operations are not ours
    operation = journal.enqueue(megan, "change_plan", old_plan=small.pk, new_plan=large.pk)

    assert journal.execute(operation.pk).state == "succeeded"
    operation.refresh_from_db()
    assert operation.state == "succeeded", operation.last_error
    exchange_service.refresh_from_db()
    assert timezone.now() - exchange_service.last_contact < timedelta(seconds=10)
    assert Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY).last_contact is None


def test_the_dry_run_backend_records_no_contact(demo, settings):
    settings.PROVISIONING_BACKEND = "dryrun"
    Operation.objects.exclude(action="provision_organization").update(state="succeeded")
    operation = Operation.objects.get(action="provision_organization", customer=demo)
    assert journal.execute(operation.pk).state == "succeeded"
    assert not Service.objects.exclude(last_contact=None).exists()
