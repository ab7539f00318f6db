"""Quotas across the customer tree: a reseller's hosting space bounds the sum over every
organization below it, checked under row locks taken top-most first, against PostgreSQL
with real concurrent transactions (one thread and one connection each)."""

import importlib
import pkgutil
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
import redis
from celery import current_app
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connections
from django.urls import reverse

from provisioning import constants as c
from provisioning import quotas, services
from provisioning.models import Customer, CustomerAsset, Event, HostingSpace, Operation
from servicplans.models import HostingPlan, HostingPlanQuota, ServicePlan

PASSWORD = "Quota-Tree-Pass-2026"


# --- helpers ------------------------------------------------------------------------------

@pytest.fixture
def quiet_broker(settings):
    """Operations are journaled and sent, after commit, to a queue nobody reads; nothing is
    provisioned, and the queue is dropped afterwards."""
    settings.PROVISIONING_BACKEND = "dryrun"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queue = f"quotas-tree-{uuid.uuid4().hex}"
    previous = current_app.conf.task_default_queue, current_app.conf.task_always_eager
    current_app.conf.task_default_queue, current_app.conf.task_always_eager = queue, False
    yield
    current_app.conf.task_default_queue, current_app.conf.task_always_eager = previous
    redis.Redis.from_url(django_settings.CELERY_BROKER_URL).delete(queue)


@pytest.fixture
def slow_commit(monkeypatch):
    """Widen the window between a quota check and its commit: every event recorded inside a
    service's transaction waits a little, so a missing lock shows up every time."""
    record = services.record_event

    def slow(*args, **kwargs):
        time.sleep(0.05)
        return record(*args, **kwargs)

    # Each service module holds its own reference to record_event.
    for info in pkgutil.iter_modules(services.__path__):
        module = importlib.import_module(f"{services.__name__}.{info.name}")
        if getattr(module, "record_event", None) is record:
            monkeypatch.setattr(module, "record_event", slow)


def seeded_tree():
    """The demo (Northwind Hosting > Contoso with 3 users) and a sibling organization,
    Fabrikam, on the same Business Basic plan with Gold and Silver."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reseller = Customer.objects.get(name="Northwind Hosting")
    fabrikam = services.sign_up_organization(
        reseller=reseller, name="Fabrikam", primary_domain="fabrikam.example",
        admin_username="fabrikam-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name__in=["Gold", "Silver"]))
    return SimpleNamespace(
        reseller=reseller, space=reseller.hosting_spaces.get(),
        contoso=Customer.objects.get(name="Contoso"), fabrikam=fabrikam,
        orgs=[Customer.objects.get(name="Contoso"), fabrikam],
        domains={"Contoso": "contoso.example", "Fabrikam": "fabrikam.example"},
        silver=ServicePlan.objects.get(name="Silver"), gold=ServicePlan.objects.get(name="Gold"))


def race(calls):
    """Run every call at once, each in its own thread, transaction and connection; return
    "ok" or the exception per call, in order."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            call()
            results[index] = "ok"
        except Exception as exc:  # noqa: BLE001 - a deadlock must show up as a result
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def refused(results, field, text):
    """The quota refusals among the results; anything else but "ok" fails the test."""
    errors = [r for r in results if r != "ok"]
    for error in errors:
        assert isinstance(error, ValidationError), repr(error)
        (entry,) = error.error_dict[field]
        assert entry.code == "quota"
        assert text in entry.message, entry.message
    return errors


def subtree_users(tree):
    return Customer.objects.filter(parent__in=tree.orgs).users().live()


def assert_tree_consistent(root=None):
    """The nested-set numbers of every tree (root's alone, if given): 1..2n, each node
    inside its nested-set parent, one root per tree; every organization roots its own
    tree and its users sit in it, every other customer hangs under its parent."""
    trees = {}
    query = Customer.objects.all() if root is None else Customer.objects.filter(
        tree_id=root.tree_id)
    for node in query:
        trees.setdefault(node.tree_id, {})[node.pk] = node
    for nodes in trees.values():
        numbers = sorted([n.lft for n in nodes.values()] + [n.rght for n in nodes.values()])
        assert numbers == list(range(1, 2 * len(nodes) + 1))
        assert len([n for n in nodes.values() if n.tree_parent_id is None]) == 1
        for node in nodes.values():
            expected = None if node.is_organization else node.parent_id
            assert node.tree_parent_id == expected, node
            if node.tree_parent_id is not None:
                parent = nodes[node.tree_parent_id]
                assert parent.lft < node.lft < node.rght < parent.rght, node
                assert node.level == parent.level + 1, node


def create_user(tree, org, local_part, service_plan=None):
    return lambda: services.create_user(
        org, display_name=local_part, local_part=local_part, domain=tree.domains[org.name],
        password=PASSWORD, service_plan=service_plan)


def used(space, quota):
    space = HostingSpace.objects.get(pk=space.pk)
    (row,) = quotas.usage(space, only={quota})
    return row.used, row.limit


# --- concurrent creates -----------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_the_resellers_user_quota_holds_across_sibling_organizations(quiet_broker, slow_commit):
    tree = seeded_tree()
    assert subtree_users(tree).count() == 3
    limit = 3 + 5
    tree.space.quota_overrides.create(quota="users", limit=limit)

    results = race([create_user(tree, tree.orgs[i % 2], f"race{i}") for i in range(20)])

    assert results.count("ok") == 5
    errors = refused(results, "local_part", "The reseller's quota for users is reached: 8 of 8")
    assert len(errors) == 15
    assert subtree_users(tree).count() == limit
    assert used(tree.space, "users") == (limit, limit)
    assert_tree_consistent()


@pytest.mark.django_db(transaction=True)
def test_the_organizations_own_user_quota_still_holds(quiet_broker, slow_commit):
    tree = seeded_tree()
    space = tree.contoso.hosting_spaces.get()
    space.quota_overrides.create(quota="users", limit=3 + 5)

    results = race([create_user(tree, tree.contoso, f"race{i}") for i in range(20)])

    assert results.count("ok") == 5
    errors = refused(results, "local_part",
                     "The organization's quota for users is reached: 8 of 8")
    assert len(errors) == 15
    assert Customer.objects.filter(parent=tree.contoso).users().live().count() == 8
    assert used(space, "users") == (8, 8)
    assert used(tree.space, "users") == (8, None)  # Reseller Standard: users unlimited


@pytest.mark.django_db(transaction=True)
def test_the_resellers_space_bounds_mailbox_disk(quiet_broker, slow_commit):
    tree = seeded_tree()
    assert used(tree.space, "mailbox_disk_mb") == (14336, None)  # Gold + 2 Silver
    limit = 14336 + 5 * 2048
    tree.space.quota_overrides.create(quota="mailbox_disk_mb", limit=limit)

    results = race([create_user(tree, tree.orgs[i % 2], f"disk{i}", tree.silver)
                    for i in range(12)])

    assert results.count("ok") == 5
    assert len(refused(results, "service_plan",
                       "The reseller's quota for mailbox disk space (mb) is reached")) == 7
    assert used(tree.space, "mailbox_disk_mb") == (limit, limit)
    # An upgrade needs disk too: Silver -> Gold is 8192 MB more.
    alex = Customer.objects.get(upn="alex@contoso.example")
    with pytest.raises(ValidationError) as exc:
        services.change_plan(alex, tree.gold)
    assert exc.value.error_dict["service_plan"][0].code == "quota"
    assert "reseller's quota for mailbox disk space (mb) is reached: 24576 of 24576 used, " \
           "8192 more requested" in exc.value.message_dict["service_plan"][0]
    alex.refresh_from_db()
    assert alex.service_plan == tree.silver


@pytest.mark.django_db(transaction=True)
def test_the_resellers_space_bounds_domains(quiet_broker, slow_commit):
    tree = seeded_tree()
    assert used(tree.space, "domains") == (2, None)  # the two primary domains
    tree.space.quota_overrides.create(quota="domains", limit=2 + 3)

    results = race([
        (lambda org=tree.orgs[i % 2], i=i: services.add_domain(org, f"extra{i}.example"))
        for i in range(10)])

    # Each Business Basic organization could add 2 more; the reseller allows 3 in all.
    assert results.count("ok") == 3
    errors = refused(results, "name", "quota for domains is reached")
    assert any("The reseller's quota for domains is reached: 5 of 5" in e.messages[0]
               for e in errors)
    assert CustomerAsset.objects.filter(customer__in=tree.orgs).count() == 5
    assert used(tree.space, "domains") == (5, 5)
    # A sign-up's primary domain counts too, and a refused sign-up leaves nothing behind.
    before = Customer.objects.count()
    with pytest.raises(ValidationError) as exc:
        services.sign_up_organization(
            reseller=tree.reseller, name="Tailspin", primary_domain="tailspin.example",
            admin_username="tailspin-admin", admin_password=PASSWORD,
            hosting_plan=HostingPlan.objects.get(name="Business Basic"))
    assert "The reseller's quota for domains is reached: 5 of 5" in (
        exc.value.message_dict["primary_domain"][0])
    assert Customer.objects.count() == before
    assert not get_user_model().objects.filter(username="tailspin-admin").exists()


# --- concurrent plan changes -------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_administrators_changing_one_users_plan_chain_their_changes(quiet_broker,
                                                                        slow_commit):
    tree = seeded_tree()
    consumer = ServicePlan.objects.get(name="Consumer")
    tree.contoso.available_service_plans.add(consumer)
    alex = Customer.objects.get(upn="alex@contoso.example")
    assert alex.service_plan == tree.silver
    targets = {"Gold": tree.gold, "Consumer": consumer}  # an upgrade and a downgrade

    results = race([lambda plan=plan: services.change_plan(alex, plan)
                    for plan in targets.values()])

    assert results == ["ok", "ok"]
    changes = [e.data for e in Event.objects.filter(
        customer=alex, event_type_id=c.PLAN_CHANGE).order_by("pk")]
    assert len(changes) == 2
    first, last = changes
    assert first["old"] == "Silver" and first["new"] in targets
    assert last == {"old": first["new"], "new": ({"Gold", "Consumer"} - {first["new"]}).pop()}
    alex.refresh_from_db()
    assert alex.service_plan.name == last["new"]
    operations = [o.params for o in Operation.objects.filter(
        customer=alex, action="change_plan").order_by("pk")]
    assert operations == [
        {"old_plan": tree.silver.pk, "new_plan": targets[first["new"]].pk},
        {"old_plan": targets[first["new"]].pk, "new_plan": targets[last["new"]].pk}]


@pytest.mark.django_db(transaction=True)
def test_plan_changes_and_creates_in_a_sibling_organization_do_not_deadlock(quiet_broker,
                                                                            slow_commit):
    """A create in Contoso renumbers the tree rows after it, Fabrikam's users included;
    a plan change that locked its user before the spaces would wait for the create's
    spaces while the create waits for that user's row."""
    tree = seeded_tree()
    tree.fabrikam.hosting_spaces.get().quota_overrides.create(quota="mailbox_disk_mb",
                                                              unlimited=True)
    movers = []
    for i in range(6):
        create_user(tree, tree.fabrikam, f"mover{i}", tree.silver)()
        movers.append(Customer.objects.get(upn=f"mover{i}@fabrikam.example"))

    results = race([create_user(tree, tree.contoso, f"new{i}") for i in range(6)]
                   + [lambda user=user: services.change_plan(user, tree.gold)
                      for user in movers])

    assert results == ["ok"] * 12
    assert Customer.objects.filter(parent=tree.fabrikam, service_plan=tree.gold).count() == 6
    assert_tree_consistent()


# --- rules, without concurrency ------------------------------------------------------------

def test_a_limit_lowered_below_use_refuses_new_work_and_keeps_what_exists(client, demo,
                                                                          reseller):
    space = reseller.hosting_spaces.get()
    space.quota_overrides.create(quota="users", limit=1)
    before = list(Customer.objects.filter(parent=demo).users().order_by("pk")
                  .values_list("pk", "status", "service_plan"))
    assert len(before) == 3

    with pytest.raises(ValidationError) as exc:
        services.create_user(demo, display_name="One More", local_part="one.more",
                             domain="contoso.example", password=PASSWORD)
    (entry,) = exc.value.error_dict["local_part"]
    assert entry.code == "quota"
    assert entry.message == ("The reseller's quota for users is reached: 3 of 1 used, "
                             "1 more requested.")

    assert list(Customer.objects.filter(parent=demo).users().order_by("pk")
                .values_list("pk", "status", "service_plan")) == before
    (users,) = quotas.usage(space, only={"users"})
    assert (users.used, users.limit, users.percent) == (3, 1, 100)
    # What consumes nothing more still works: a rename, a downgrade, a disable.
    megan = Customer.objects.get(upn="megan@contoso.example")
    services.update_user(megan, display_name="Megan B.")
    services.change_plan(megan, ServicePlan.objects.get(name="Silver"))
    services.set_enabled(megan, False)
    megan.refresh_from_db()
    assert (megan.name, megan.service_plan.name, megan.status_id) == (
        "Megan B.", "Silver", c.DISABLED)
    # The dashboards read the usage without an error.
    client.force_login(get_user_model().objects.get(username="reseller"))
    assert client.get(reverse("hosting_spaces")).status_code == 200
    assert client.get(reverse("organization", args=[demo.pk])).status_code == 200


def test_nested_resellers_and_quotas_their_plans_do_not_list(demo, reseller):
    """A sub-reseller whose plan lists only organizations bounds nothing else below it;
    the top reseller's listed limits bound the whole tree; an explicit limit binds."""
    sub_plan = HostingPlan.objects.create(name="Sub-reseller",
                                          virtual_server=demo.hosting_spaces.get()
                                          .hosting_plan.virtual_server)
    HostingPlanQuota.objects.create(hosting_plan=sub_plan, quota="organizations", limit=10)
    sub = Customer.objects.create(parent=reseller, name="Tailspin Resale",
                                  customer_type_id=c.RESELLER_ORGANIZATION)
    sub_space = HostingSpace.objects.create(customer=sub, hosting_plan=sub_plan, name="sub")
    org = services.sign_up_organization(
        reseller=sub, name="Wingtip", primary_domain="wingtip.example",
        admin_username="wingtip-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name="Silver"))

    def create(local_part):
        return services.create_user(org, display_name=local_part, local_part=local_part,
                                    domain="wingtip.example", password=PASSWORD,
                                    service_plan=ServicePlan.objects.get(name="Silver"))

    create("first")  # the sub-reseller's plan lists no users, mailboxes, disk or domains
    top_space = reseller.hosting_spaces.get()
    by_quota = {u.quota: u for u in quotas.usage(top_space)}
    assert (by_quota["users"].used, by_quota["organizations"].used) == (4, 2)
    assert by_quota["mailbox_disk_mb"].used == 14336 + 2048
    assert by_quota["domains"].used == 2
    sub_usage = {u.quota: (u.used, u.limit) for u in quotas.usage(sub_space)}
    assert sub_usage["users"] == (1, None) and sub_usage["organizations"] == (1, 10)

    top_space.quota_overrides.create(quota="users", limit=4)
    with pytest.raises(ValidationError) as exc:
        create("second")
    assert exc.value.messages == ["The reseller Northwind Hosting's quota for users is "
                                  "reached: 4 of 4 used, 1 more requested."]
    top_space.quota_overrides.all().delete()
    sub_space.quota_overrides.create(quota="users", limit=1)
    with pytest.raises(ValidationError) as exc:
        create("second")
    assert exc.value.messages == ["The reseller's quota for users is reached: 1 of 1 used, "
                                  "1 more requested."]
    sub_space.quota_overrides.create(quota="domains", limit=0)  # an explicit 0 binds
    with pytest.raises(ValidationError) as exc:
        services.add_domain(org, "more.wingtip.example")
    assert "The reseller's quota for domains is reached: 1 of 0" in exc.value.messages[0]

    # The top reseller's organization quota counts the sub-reseller's sign-ups too.
    top_space.quota_overrides.create(quota="organizations", limit=2)
    with pytest.raises(ValidationError) as exc:
        services.sign_up_organization(
            reseller=sub, name="Adatum", primary_domain="adatum.example",
            admin_username="adatum-admin", admin_password=PASSWORD,
            hosting_plan=HostingPlan.objects.get(name="Business Basic"))
    assert "reseller Northwind Hosting's quota for organizations is reached: 2 of 2" in (
        exc.value.message_dict["name"][0])
