"""The rules of the data model hold in the model and service layer, whatever the caller."""

import pytest
from django.core.exceptions import ValidationError

from provisioning import constants as c
from provisioning import services
from provisioning.models import Customer, CustomerAsset, Event
from servicplans.models import ServicePlan


def test_a_business_user_can_only_sit_under_a_business_organization(demo, reseller):
    stray = Customer(parent=reseller, customer_type_id=c.BUSINESS_USER, name="Stray")
    with pytest.raises(ValidationError) as exc:
        stray.full_clean()
    assert "parent" in exc.value.message_dict
    Customer(parent=demo, customer_type_id=c.BUSINESS_USER, name="Fine").full_clean()


def test_an_organization_cannot_sit_at_the_top_or_under_another_organization(demo):
    for parent in (None, demo):
        org = Customer(parent=parent, customer_type_id=c.BUSINESS_ORGANIZATION, name="X")
        with pytest.raises(ValidationError) as exc:
            org.full_clean()
        assert "parent" in exc.value.message_dict


def test_a_users_plan_must_be_one_of_the_organizations_available_plans(demo):
    consumer = ServicePlan.objects.get(name="Consumer")
    user = Customer(parent=demo, customer_type_id=c.BUSINESS_USER, name="U",
                    service_plan=consumer)
    with pytest.raises(ValidationError) as exc:
        user.full_clean()
    assert "available service plans" in exc.value.message_dict["service_plan"][0]
    with pytest.raises(ValidationError) as exc:
        services.create_user(demo, display_name="U", local_part="u", domain="contoso.example",
                             password="A-Long-Password-42", service_plan=consumer)
    assert "service_plan" in exc.value.message_dict
    assert not Customer.objects.filter(upn="u@contoso.example").exists()


@pytest.mark.parametrize("domain", ["not a domain", "-bad.example", "nodot", "a..b.example",
                                    "x" * 64 + ".example", "exa_mple.com", ""])
def test_a_domain_must_be_a_valid_dns_name(demo, domain):
    asset = CustomerAsset(customer=demo, asset_type_id=c.SECONDARY_DOMAIN, name=domain)
    with pytest.raises(ValidationError) as exc:
        asset.full_clean()
    assert "name" in exc.value.message_dict


def test_a_domain_belongs_to_one_customer_only(demo, reseller):
    asset = CustomerAsset(customer=reseller, asset_type_id=c.SECONDARY_DOMAIN,
                          name="CONTOSO.example")
    with pytest.raises(ValidationError):
        asset.full_clean()


def test_soft_delete_marks_the_row_and_records_the_event(demo):
    user = Customer.objects.get(upn="megan@contoso.example")
    services.delete_customer(user)
    user.refresh_from_db()
    assert user.status_id == c.DELETED
    assert Event.objects.filter(customer=user, event_type=c.EVENT_DELETED).count() == 1
    # Deleting twice records nothing more.
    services.delete_customer(user)
    assert Event.objects.filter(customer=user, event_type=c.EVENT_DELETED).count() == 1


def test_model_and_queryset_delete_never_remove_rows(demo):
    before = Customer.objects.count()
    Customer.objects.get(upn="alex@contoso.example").delete()
    Customer.objects.filter(upn="zoe@contoso.example").delete()
    assert Customer.objects.count() == before
    assert set(Customer.objects.filter(upn__in=["alex@contoso.example", "zoe@contoso.example"])
               .values_list("status", flat=True)) == {c.DELETED}


def test_mailbox_disk_space_is_a_quota_counted_from_the_plans_size_feature(demo):
    from provisioning import quotas
    from servicplans.models import FeatureType

    space = demo.hosting_spaces.get()
    # Gold 10240 + Silver 2048 + Silver 2048, whatever the feature type is called.
    FeatureType.objects.filter(native_attribute="size").update(name="Mailbox quota")
    assert [u.used for u in quotas.usage(space, only={"mailbox_disk_mb"})] == [14336]
    space.quota_overrides.create(quota="mailbox_disk_mb", limit=14336 + 2047)
    silver, gold = (ServicePlan.objects.get(name=n) for n in ("Silver", "Gold"))
    with pytest.raises(ValidationError) as exc:
        services.create_user(demo, display_name="Big", local_part="big",
                             domain="contoso.example", password="A-Long-Password-42",
                             service_plan=silver)
    assert "mailbox disk space (mb) is reached: 14336 of 16383" in (
        exc.value.message_dict["service_plan"][0])
    assert not Customer.objects.filter(upn="big@contoso.example").exists()
    alex = Customer.objects.get(upn="alex@contoso.example")
    with pytest.raises(ValidationError):
        services.change_plan(alex, gold)  # 8192 MB more than Silver
    alex.refresh_from_db()
    assert alex.service_plan == silver


def test_deleting_an_organization_queues_its_teardown(demo):
    """What the teardown removes is in tests/test_organization_teardown.py."""
    from provisioning.models import Operation

    services.delete_customer(demo)
    demo.refresh_from_db()
    assert demo.status_id == c.DELETED
    assert list(Operation.objects.filter(customer=demo).exclude(
        action="provision_organization").values_list("action", flat=True)) == [
        "delete_organization"]


def test_a_user_of_a_suspended_organization_cannot_be_enabled(demo):
    alex = Customer.objects.get(upn="alex@contoso.example")
    services.set_enabled(alex, False)
    services.set_enabled(demo, False)
    with pytest.raises(ValidationError, match="is suspended"):
        services.set_enabled(alex, True)
    alex.refresh_from_db()
    assert alex.status_id == c.DISABLED
    services.set_enabled(demo, True)
    services.set_enabled(alex, True)
    alex.refresh_from_db()
    assert alex.status_id == c.ENABLED
