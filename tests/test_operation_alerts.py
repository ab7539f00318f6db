"""An operation that fails for good, or waits too long, is e-mailed once to the people who
must act: the organization's administrators (primary and full-administrator peers) and its
reseller's. Many at once make one digest per person; the provider gets a daily summary.
No e-mail carries a password."""

import re
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.utils import timezone

from provisioning import alerts, journal, services
from provisioning.directory import DryRunDirectoryClient, PermanentDirectoryError
from provisioning.models import Account, Customer, Operation, OperationAlert, Role
from servicplans.models import HostingPlan, ServicePlan
from tests.support.processes import free_port
from tests.support.views import make_login

SECRET = "Alert-Secret-Pass-2026!"
CONTOSO_ADMINS = {"admin@contoso.example", "contoso-peer-full-admin@panel.example",
                  "reseller@panel.example"}


@pytest.fixture
def provisioned(demo, contoso_peers, other_tenant, settings):
    """The demo provisioned by the dry run, its peers of every role, and another tenant
    (Litware > Fabrikam) whose people must hear nothing of Contoso."""
    settings.PROVISIONING_BACKEND = "dryrun"
    settings.OPERATION_ALERT_AFTER_MINUTES = 30
    settings.PANEL_URL = "https://panel.example"
    for pk in Operation.objects.filter(scope=demo).order_by("pk").values_list("pk", flat=True):
        assert journal.execute(pk).state == "succeeded"
    return demo


@pytest.fixture
def conflict(monkeypatch):
    """Every user the dry-run directory is asked to make clashes with one made by hand."""
    def refuse(self, *args, **kwargs):
        raise PermanentDirectoryError("An account of that name exists in the directory and "
                                      "was not made by this panel.")

    monkeypatch.setattr(DryRunDirectoryClient, "ensure_user", refuse)


def fail_new_user(org, local, domain="contoso.example"):
    # No service plan: no mailbox, so the organization's disk quota does not run out.
    user = services.create_user(org, display_name=f"User {local}", local_part=local,
                                domain=domain, password=SECRET)
    operation = Operation.objects.get(customer=user)
    assert journal.execute(operation.pk).state == "failed"
    operation.refresh_from_db()
    return operation


def recipients(outbox):
    assert all(len(message.to) == 1 for message in outbox)
    return sorted(message.to[0] for message in outbox)


def listed(message):
    """The operation numbers an e-mail lists."""
    return sorted(int(n) for n in re.findall(r"^#(\d+) ", message.body, re.MULTILINE))


def no_secret_in(outbox):
    for message in outbox:
        text = message.message().as_string()
        assert SECRET not in text and "sealed" not in text.lower()


def test_one_failure_is_one_email_to_each_administrator(provisioned, conflict, mailoutbox):
    operation = fail_new_user(provisioned, "clash")
    assert alerts.send_operation_alerts() == 3
    # The primary administrator, the full-administrator peer and the reseller; not the
    # helpdesk, user-manager or read-only peers, not the provider, not another tenant.
    assert recipients(mailoutbox) == sorted(CONTOSO_ADMINS)
    message = mailoutbox[0]
    assert message.subject == "[Hosted Organizations] 1 operation needs attention (Contoso)"
    assert listed(message) == [operation.pk]
    assert "Provision user: User clash (clash@contoso.example) — Contoso" in message.body
    assert "was not made by this panel" in message.body
    assert f"https://panel.example/organizations/{provisioned.pk}/operations/" in message.body
    no_secret_in(mailoutbox)
    # Told once: the next runs send nothing.
    assert alerts.send_operation_alerts() == 0
    assert alerts.send_operation_alerts() == 0
    assert len(mailoutbox) == 3
    assert OperationAlert.objects.filter(operation=operation).count() == 3


def test_many_failures_at_once_are_one_digest_per_person(provisioned, conflict, mailoutbox):
    failed = [fail_new_user(provisioned, f"clash{i}").pk for i in range(6)]
    assert alerts.send_operation_alerts() == 3
    assert recipients(mailoutbox) == sorted(CONTOSO_ADMINS)
    for message in mailoutbox:
        assert listed(message) == failed
        assert message.subject == ("[Hosted Organizations] 6 operations need attention "
                                   "(Contoso)")
        assert message.body.startswith("6 operations failed")
    assert alerts.send_operation_alerts() == 0
    # One more failure later: one e-mail each, about it alone.
    later = fail_new_user(provisioned, "later")
    assert alerts.send_operation_alerts() == 3
    assert [listed(message) for message in mailoutbox[3:]] == [[later.pk]] * 3
    no_secret_in(mailoutbox)


def test_a_reseller_gets_one_digest_for_all_its_organizations(provisioned, conflict,
                                                              mailoutbox):
    northwind = provisioned.parent
    other = services.sign_up_organization(
        reseller=northwind, name="Tailspin", primary_domain="tailspin.example",
        admin_username="tailspin-admin", admin_password=SECRET,
        admin_email="it@tailspin.example",
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name="Gold"))
    for pk in Operation.objects.filter(scope=other).values_list("pk", flat=True):
        assert journal.execute(pk).state == "succeeded"
    contoso = fail_new_user(provisioned, "clash")
    tailspin = fail_new_user(other, "clash", domain="tailspin.example")
    assert alerts.send_operation_alerts() == 4
    by_person = {message.to[0]: message for message in mailoutbox}
    assert set(by_person) == CONTOSO_ADMINS | {"it@tailspin.example"}
    assert listed(by_person["reseller@panel.example"]) == sorted([contoso.pk, tailspin.pk])
    assert by_person["reseller@panel.example"].subject == (
        "[Hosted Organizations] 2 operations need attention")
    assert listed(by_person["admin@contoso.example"]) == [contoso.pk]
    assert listed(by_person["it@tailspin.example"]) == [tailspin.pk]
    no_secret_in(mailoutbox)


def test_an_operation_waiting_too_long_is_told_once_and_its_failure_again(
        provisioned, conflict, mailoutbox, settings):
    user = Customer.objects.get(upn="megan@contoso.example")
    stuck = journal.enqueue(user, "set_user_enabled", enabled=False)
    fresh = journal.enqueue(user, "set_user_enabled", enabled=True)
    Operation.objects.filter(pk=stuck.pk).update(
        requested=timezone.now() - timedelta(minutes=45), attempts=2,
        last_error="The directory server cannot be reached at the moment; the panel will "
                   "try again.")
    Operation.objects.filter(pk=fresh.pk).update(
        requested=timezone.now() - timedelta(minutes=10))
    assert alerts.send_operation_alerts() == 3
    assert recipients(mailoutbox) == sorted(CONTOSO_ADMINS)
    message = mailoutbox[0]
    assert listed(message) == [stuck.pk]
    assert "still not done after 30 minutes" in message.body
    assert "(45 min ago), now queued, 2 attempts" in message.body
    assert alerts.send_operation_alerts() == 0
    # Past the threshold the other one is told too, once.
    settings.OPERATION_ALERT_AFTER_MINUTES = 5
    assert alerts.send_operation_alerts() == 3
    assert {tuple(listed(m)) for m in mailoutbox[3:]} == {(fresh.pk,)}
    # The stuck one then fails for good: that is news.
    Operation.objects.filter(pk=stuck.pk).update(
        state="failed", finished=timezone.now(), last_error="Gave up.")
    assert alerts.send_operation_alerts() == 3
    assert all(listed(m) == [stuck.pk] and "Failed" in m.body for m in mailoutbox[6:])
    assert alerts.send_operation_alerts() == 0


def test_a_retried_operation_that_fails_again_is_told_again(provisioned, conflict,
                                                            mailoutbox):
    operation = fail_new_user(provisioned, "clash")
    assert alerts.send_operation_alerts() == 3
    journal.retry(operation, secret="Another-Secret-2026!")
    assert journal.execute(operation.pk).state == "failed"
    assert alerts.send_operation_alerts() == 3
    assert [listed(m) for m in mailoutbox[3:]] == [[operation.pk]] * 3
    assert all("Another-Secret-2026!" not in m.message().as_string() for m in mailoutbox)


def test_failures_before_the_look_back_and_people_without_email_are_left_out(
        provisioned, conflict, mailoutbox, settings):
    old = fail_new_user(provisioned, "old")
    Operation.objects.filter(pk=old.pk).update(finished=timezone.now() - timedelta(days=2))
    assert alerts.send_operation_alerts() == 0
    # An administrator without an address, or whose login is disabled, is not written to.
    admin = make_login("contoso-second-admin")
    admin.email = ""
    admin.save()
    Account.objects.create(user=admin, customer=provisioned, role=Role.PEER_FULL_ADMIN)
    full = Account.objects.get(user__username="contoso-peer-full-admin").user
    full.is_active = False
    full.save()
    fail_new_user(provisioned, "now")
    assert alerts.send_operation_alerts() == 2
    assert recipients(mailoutbox) == sorted(CONTOSO_ADMINS - {full.email})


def test_the_provider_gets_a_daily_summary(provisioned, conflict, mailoutbox, settings):
    settings.PROVIDER_ALERT_EMAIL = ["noc@provider.example"]
    for local in ("clash1", "clash2"):
        fail_new_user(provisioned, local)
    assert alerts.send_provider_summary() == 2
    # Staff with an e-mail address (the demo's provider) and the configured address.
    assert recipients(mailoutbox) == ["noc@provider.example", "provider@panel.example"]
    message = mailoutbox[0]
    assert message.subject == ("[Hosted Organizations] Daily summary: 2 failed, 0 waiting, "
                               "2 sign-up(s)")
    assert "  Provision user: 3 succeeded, 2 failed\n" in message.body
    assert "Now queued: 2 " in message.body  # Fabrikam and its mail contact, not provisioned
    assert "Contoso: 2" in message.body
    assert "Organizations signed up: 2." in message.body
    no_secret_in(mailoutbox)
    # Nobody to tell: nothing is sent.
    settings.PROVIDER_ALERT_EMAIL = []
    get_user_model().objects.filter(is_staff=True).update(email="")
    assert alerts.send_provider_summary() == 0


def test_the_daily_summary_goes_once_a_day_however_often_beat_fires(provisioned, conflict,
                                                                      mailoutbox, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.PROVIDER_ALERT_EMAIL = ["noc@provider.example"]
    fail_new_user(provisioned, "clash1")
    now = timezone.now()
    assert alerts.send_provider_summary(now) == 2
    # Beat fires again the same day (a second scheduler, a restart at the hour): nothing.
    assert alerts.send_provider_summary(now + timedelta(minutes=1)) == 0
    assert len(mailoutbox) == 2
    # A new address added that day still gets its one summary.
    settings.PROVIDER_ALERT_EMAIL = ["noc@provider.example", "night@provider.example"]
    assert alerts.send_provider_summary(now + timedelta(minutes=2)) == 1
    assert recipients(mailoutbox[2:]) == ["night@provider.example"]
    # The next day, everyone again.
    assert alerts.send_provider_summary(now + timedelta(days=1)) == 3


# --- Through a real SMTP server -----------------------------------------------------------


class Inbox:
    def __init__(self):
        self.messages = []
        self.started = False

    def start(self):
        self.controller.start()
        self.started = True

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content.decode()))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings):
    """An SMTP server on loopback, and Django's SMTP backend pointed at it."""
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.DEFAULT_FROM_EMAIL = "panel@provider.example"
    inbox.controller = controller
    yield inbox
    if inbox.started:
        controller.stop()


def test_alerts_go_out_through_smtp_and_wait_for_a_server_that_is_down(provisioned,
                                                                       conflict, smtp):
    operation = fail_new_user(provisioned, "clash")
    # The mail server is not running yet: nothing is recorded as told ...
    assert alerts.send_operation_alerts() == 0
    assert not OperationAlert.objects.exists()
    # ... and once it answers, each person gets their e-mail, once.
    smtp.start()
    assert alerts.send_operation_alerts() == 3
    assert alerts.send_operation_alerts() == 0
    assert sorted(rcpt for _, rcpts, _ in smtp.messages for rcpt in rcpts) == sorted(
        CONTOSO_ADMINS)
    for sender, rcpts, content in smtp.messages:
        assert sender == "panel@provider.example" and len(rcpts) == 1
        assert f"To: {rcpts[0]}" in content
        assert "Subject: [Hosted Organizations] 1 operation needs attention (Contoso)" in content
        assert f"#{operation.pk} Provision user" in content
        assert SECRET not in content
    assert alerts.send_provider_summary() == 1
    assert smtp.messages[-1][1] == ["provider@panel.example"]
