"""A reseller signs an organization up: admin account, hosting space, primary domain —
all or nothing, within the reseller's quota."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, connections

from provisioning import constants as c
from provisioning import services
from provisioning.models import Account, Customer, CustomerAsset, Event, HostingSpace, Role
from servicplans.models import HostingPlan, ServicePlan

PASSWORD = "Sign-Up-Password-77"


def everything():
    User = get_user_model()
    return {model.__name__: model.objects.count()
            for model in (Customer, User, Account, HostingSpace, CustomerAsset, Event)}


def sign_up(reseller, **overrides):
    arguments = dict(reseller=reseller, name="Fabrikam", primary_domain="fabrikam.example",
                     admin_username="fabrikam-admin", admin_password=PASSWORD,
                     hosting_plan=HostingPlan.objects.get(name="Business Premium"),
                     service_plans=ServicePlan.objects.filter(name__in=["Gold", "Silver"]))
    arguments.update(overrides)
    return services.sign_up_organization(**arguments)


def test_sign_up_creates_the_account_the_space_and_the_primary_domain(reseller):
    org = sign_up(reseller, primary_domain="Fabrikam.Example.")
    assert org.parent == reseller
    assert org.customer_type_id == c.BUSINESS_ORGANIZATION
    assert org.status_id == c.ENABLED
    account = Account.objects.get(customer=org)
    assert account.role == Role.PRIMARY_ADMIN
    assert account.user.username == "fabrikam-admin"
    assert account.user.check_password(PASSWORD)
    space = HostingSpace.objects.get(customer=org)
    assert space.hosting_plan.name == "Business Premium"
    assert list(org.assets.values_list("name", "asset_type")) == [
        ("fabrikam.example", c.PRIMARY_DOMAIN)]
    assert set(org.available_service_plans.values_list("name", flat=True)) == {"Gold", "Silver"}
    assert list(Event.objects.filter(customer=org).order_by("pk")
                .values_list("event_type", flat=True)) == [c.CREATED, c.PLAN_SIGNUP,
                                                           c.ASSET_ADDED]


@pytest.mark.parametrize("overrides, field", [
    ({"primary_domain": "contoso.example"}, "primary_domain"),
    ({"primary_domain": "not a domain"}, "primary_domain"),
    ({"name": "   "}, "name"),
    ({"name": "Bad\nName"}, "name"),
    ({"name": "contoso"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"admin_username": "contoso-admin"}, "admin_username"),
    ({"admin_password": "short"}, "admin_password"),
])
def test_bad_input_names_the_field_and_creates_nothing(reseller, overrides, field):
    before = everything()
    with pytest.raises(ValidationError) as exc:
        sign_up(reseller, **overrides)
    assert field in exc.value.message_dict
    assert everything() == before


def test_the_resellers_organization_quota_is_enforced(reseller):
    space = reseller.hosting_spaces.get()
    space.quota_overrides.create(quota="organizations", limit=1)  # Contoso uses it
    before = everything()
    with pytest.raises(ValidationError) as exc:
        sign_up(reseller)
    assert "quota for organizations is reached: 1 of 1" in exc.value.message_dict["name"][0]
    assert everything() == before


def test_a_failure_in_the_last_step_leaves_nothing_behind(reseller):
    # A real database failure in the very last write (the AssetAdded event), not a mock.
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION fail_asset_added() RETURNS trigger AS $$
            BEGIN
                IF NEW.event_type_id = 'AssetAdded' THEN RAISE EXCEPTION 'disk full'; END IF;
                RETURN NEW;
            END; $$ LANGUAGE plpgsql;
            CREATE TRIGGER fail_asset_added BEFORE INSERT ON provisioning_event
                FOR EACH ROW EXECUTE FUNCTION fail_asset_added();
        """)
    before = everything()
    with pytest.raises(Exception, match="disk full"):
        sign_up(reseller)
    assert everything() == before
    assert not get_user_model().objects.filter(username="fabrikam-admin").exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_cannot_overrun_the_quota(django_db_blocker):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    reseller = Customer.objects.get(name="Northwind Hosting")
    reseller.hosting_spaces.get().quota_overrides.create(quota="organizations", limit=2)
    results, barrier = [], threading.Barrier(4)

    def attempt(i):
        barrier.wait()
        try:
            sign_up(reseller, name=f"Race {i}", primary_domain=f"race{i}.example",
                    admin_username=f"race{i}")
            results.append("ok")
        except ValidationError:
            results.append("quota")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok", "quota", "quota", "quota"]
    assert Customer.objects.filter(parent=reseller).organizations().count() == 2
