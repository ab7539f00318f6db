"""Organization names, domains and panel logins are unique the way the directory compares
them — by Unicode case folding, whatever the database's lower() does — and a duplicate is
refused with a message on the field, by the services, the admin and the database alike."""

import threading
import unicodedata

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction

from provisioning import accounts, quotas, services
from provisioning import constants as c
from provisioning.models import Customer, CustomerAsset, HostingSpace, Role
from servicplans.models import HostingPlan, QuotaName
from tests.support.assertions import refused
from tests.support.provisioning import PASSWORD, sign_up
from tests.support.views import login


def make_litware():
    litware = Customer.objects.create(name="Litware Hosting",
                                      customer_type_id=c.RESELLER_ORGANIZATION)
    HostingSpace.objects.create(customer=litware,
                                hosting_plan=HostingPlan.objects.get(name="Reseller Standard"),
                                name="Litware — Reseller Standard")
    return litware


@pytest.fixture
def litware(demo):
    """A second reseller: the same name must be refused across resellers too."""
    return make_litware()


def sign_up_as(reseller, **arguments):
    return services.sign_up_organization(
        reseller=reseller, admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Premium"), **arguments)


def count_organizations():
    return Customer.objects.organizations().count()


# --- Organization names -------------------------------------------------------------------

def test_an_organization_name_differing_only_by_case_is_refused_under_another_reseller(
        reseller, litware):
    sign_up(reseller, name="Ærøskøbing Øst")
    before = count_organizations()
    message = refused("name", sign_up, litware, name="ÆRØSKØBING ØST")
    assert "already exists" in message
    assert count_organizations() == before


def test_names_equal_under_unicode_case_folding_are_one_name(reseller, litware):
    sign_up(reseller, name="Straße Süd")
    assert "already exists" in refused("name", sign_up, litware, name="STRASSE SÜD")
    assert "already exists" in refused("name", sign_up, reseller, name="strasse süd")


def test_composed_and_decomposed_forms_are_one_name(reseller, litware):
    composed = unicodedata.normalize("NFC", "Café Zoë")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    sign_up(reseller, name=composed)
    assert "already exists" in refused("name", sign_up, litware, name=decomposed)


def test_full_width_letters_are_the_same_name(reseller):
    # The directory ignores width (NORM_IGNOREWIDTH): ＣＯＮＴＯＳＯ is Contoso's OU.
    assert "already exists" in refused("name", sign_up, reseller, name="ＣＯＮＴＯＳＯ")


def test_a_users_display_name_may_equal_an_organizations_name(demo):
    user = services.create_user(demo, display_name="CONTOSO", local_part="contoso",
                                domain="contoso.example", password=PASSWORD)
    assert user.name == "CONTOSO"


def test_renaming_keeps_the_key_in_step(demo):
    user = demo.children.get(upn="zoe@contoso.example")
    services.update_user(user, display_name="Zoë STRASSE")
    assert Customer.objects.get(pk=user.pk).name_key == "zoë strasse"


def test_the_database_refuses_a_colliding_organization_saved_directly(reseller, litware):
    sign_up(reseller, name="Ærøskøbing Øst")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(parent=litware, customer_type_id=c.BUSINESS_ORGANIZATION,
                                name="ÆRØSKØBING ØST")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(parent=litware, customer_type_id=c.BUSINESS_ORGANIZATION,
                                name="CONTOSO")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second, field", [
    ({"name": "STRASSE"}, "name"),
    ({"admin_username": "STRASSE-ADMIN"}, "admin_username"),
    ({"primary_domain": "STRASSE.example"}, "primary_domain"),
])
def test_a_race_ends_in_the_same_validation_error(monkeypatch, second, field):
    """Two sign-ups under two resellers pass every check before either inserts: the
    second waits on the unique key until the first commits, and is refused on the field."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    resellers = [Customer.objects.get(name="Northwind Hosting"), make_litware()]
    barrier, reserve = threading.Barrier(2, timeout=20), quotas.reserve

    def reserve_after_both_checked(customer, quota, *args, **kwargs):
        if quota == QuotaName.ORGANIZATIONS:
            barrier.wait()
        return reserve(customer, quota, *args, **kwargs)

    monkeypatch.setattr(quotas, "reserve", reserve_after_both_checked)
    attempts = [dict(name="Straße", admin_username="strasse-admin",
                     primary_domain="strasse.example"),
                {"name": "Race Two", "admin_username": "race-two",
                 "primary_domain": "race-two.example", **second}]
    results = {}

    def attempt(i):
        try:
            sign_up_as(resellers[i], **attempts[i])
            results[i] = "ok"
        except ValidationError as exc:
            results[i] = exc.message_dict
        except Exception as exc:  # noqa: BLE001  an IntegrityError must not get out
            results[i] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(results.values(), key=str)
    assert outcomes[0] == "ok", results
    assert list(outcomes[1]) == [field], results
    assert "already" in " ".join(outcomes[1][field])
    assert Customer.objects.organizations().count() == 2  # Contoso and the winner


def test_the_models_own_check_names_the_field_for_the_admin(demo, litware):
    # The admin's Customer and CustomerAsset forms run full_clean(), hence clean().
    organization = Customer(parent=litware, customer_type_id=c.BUSINESS_ORGANIZATION,
                            name="ＣＯＮＴＯＳＯ")
    with pytest.raises(ValidationError) as exc:
        organization.full_clean(exclude=["object_guid"])
    assert "already exists" in " ".join(exc.value.message_dict["name"])
    domain = CustomerAsset(customer=litware, asset_type_id=c.SECONDARY_DOMAIN,
                           name="Contoso.Example.")
    with pytest.raises(ValidationError) as exc:
        domain.full_clean()
    assert "already in use" in " ".join(exc.value.message_dict["name"])
    existing = demo.assets.get()
    existing.full_clean()  # its own name is no collision with itself


# --- Panel logins -------------------------------------------------------------------------

def test_a_login_differing_only_by_case_is_refused_at_sign_up(reseller):
    assert "already taken" in refused("admin_username", services.sign_up_organization,
                                      reseller=reseller, name="Fabrikam",
                                      primary_domain="fabrikam.example",
                                      admin_username="CONTOSO-Admin", admin_password=PASSWORD,
                                      hosting_plan=HostingPlan.objects.get(
                                          name="Business Premium"))


def test_a_login_differing_by_unicode_case_folding_is_refused_for_a_peer(demo):
    # The services take ASCII logins only (provisioning.names.LOGIN), but a login made
    # before that rule, or by the provider in the admin, may be "straße": a new login is
    # still compared with it by Unicode case folding.
    get_user_model().objects.create_user(username="straße", password=PASSWORD)
    actor = get_user_model().objects.get(username="contoso-admin")
    for username in ("STRASSE", "Strasse"):
        assert "already taken" in refused("username", accounts.create_peer, demo,
                                          username=username, password=PASSWORD,
                                          role=Role.PEER_HELPDESK, actor=actor)
    assert "cannot contain 'ß'" in refused("username", accounts.create_peer, demo,
                                           username=unicodedata.normalize("NFD", "STRAßE"),
                                           password=PASSWORD, role=Role.PEER_HELPDESK,
                                           actor=actor)


def test_a_race_on_a_login_ends_in_the_same_validation_error(demo, monkeypatch):
    from provisioning.models import LoginName

    monkeypatch.setattr(LoginName, "is_taken", staticmethod(lambda *args, **kwargs: False))
    actor = get_user_model().objects.get(username="contoso-admin")
    assert "already taken" in refused("username", accounts.create_peer, demo,
                                      username="Contoso-Helpdesk", password=PASSWORD,
                                      role=Role.PEER_HELPDESK, actor=actor)


def test_a_renamed_login_frees_its_old_name(demo):
    User = get_user_model()
    helpdesk = User.objects.get(username="contoso-helpdesk")
    helpdesk.username = "contoso-support"
    helpdesk.save()
    actor = User.objects.get(username="contoso-admin")
    peer = accounts.create_peer(demo, username="Contoso-Helpdesk", password=PASSWORD,
                                role=Role.PEER_HELPDESK, actor=actor)
    assert peer.user.username == "Contoso-Helpdesk"
    assert "already taken" in refused("username", accounts.create_peer, demo,
                                      username="CONTOSO-SUPPORT", password=PASSWORD,
                                      role=Role.PEER_HELPDESK, actor=actor)


def test_the_database_refuses_a_colliding_login(demo):
    from provisioning.models import LoginName
    from provisioning.names import name_key

    helpdesk = get_user_model().objects.get(username="contoso-helpdesk")
    with pytest.raises(IntegrityError), transaction.atomic():
        LoginName.objects.filter(user=helpdesk).update(key=name_key("Contoso-Admin"))


def test_saving_a_colliding_user_directly_is_refused(demo):
    User = get_user_model()
    with pytest.raises(ValidationError) as exc, transaction.atomic():
        User.objects.create_user(username="CONTOSO-ADMIN", password=PASSWORD)
    assert "already taken" in " ".join(exc.value.message_dict["username"])
    assert not User.objects.filter(username="CONTOSO-ADMIN").exists()


ADMIN_ADD = "/admin/auth/user/add/"


def test_the_admin_refuses_a_colliding_new_login(client, demo):
    User = get_user_model()
    User.objects.create_user(username="straße", password=PASSWORD)
    login(client, "provider")
    response = client.post(ADMIN_ADD, {"username": "STRASSE", "password1": PASSWORD,
                                       "password2": PASSWORD, "usable_password": "true"})
    assert response.status_code == 200
    assert "already taken" in " ".join(response.context["adminform"].form.errors["username"])
    assert not User.objects.filter(username="STRASSE").exists()


def test_the_admin_refuses_renaming_a_login_onto_another(client, demo):
    User = get_user_model()
    helpdesk = User.objects.get(username="contoso-helpdesk")
    login(client, "provider")
    url = f"/admin/auth/user/{helpdesk.pk}/change/"
    data = {"username": "Contoso-ADMIN", "email": helpdesk.email, "first_name": "",
            "last_name": "", "is_active": "on", "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": ""}
    response = client.post(url, data)
    assert response.status_code == 200
    assert "already taken" in " ".join(response.context["adminform"].form.errors["username"])
    # Its own name in another case is no collision with itself.
    data["username"] = "Contoso-Helpdesk"
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(pk=helpdesk.pk).username == "Contoso-Helpdesk"


# --- Domains ------------------------------------------------------------------------------

def test_a_domain_differing_only_by_case_is_refused(reseller, demo):
    assert "already in use" in refused("primary_domain", sign_up, reseller,
                                       domain="CONTOSO.Example")
    assert "already in use" in refused("name", services.add_domain, demo, "Contoso.EXAMPLE.")


def test_the_database_refuses_a_colliding_domain_saved_directly(demo, litware):
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerAsset.objects.create(customer=litware, asset_type_id=c.SECONDARY_DOMAIN,
                                     name="CONTOSO.EXAMPLE")
