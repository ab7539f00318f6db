"""Mail contacts (issue #12) through the real client and pywinrm against the strict
WS-Management endpoint: what Exchange then holds, as the endpoint's snapshot shows it.

No database is needed."""

from __future__ import annotations

import pytest

from provisioning.exchange import ExchangeClient, PermanentExchangeError
from tests.test_exchange_client import settings_for

OU = "OU=Contoso,OU=Hosted,DC=hosting,DC=test"
OTHER_OU = "OU=Fabrikam,OU=Hosted,DC=hosting,DC=test"


@pytest.fixture
def client(endpoint):
    return ExchangeClient(settings_for(endpoint))


def dn(name, ou=OU):
    return f"CN={name},{ou}"


def tenant_lists(client, org):
    client.ensure_address_list(f"{org} - All Users", org)
    client.ensure_global_address_list(f"{org} - GAL", org)


def make(client, name, address, ou=OU, tenant="Contoso"):
    contact, created = client.ensure_mail_contact(
        name, address, organizational_unit=ou, identity=dn(name, ou), tenant=tenant)
    if created:
        client.tag_mail_contact(contact["Guid"], tenant)
    return contact, created


def contacts(endpoint):
    return endpoint.snapshot()["exchange"]["mail_contacts"]


def test_a_contact_is_made_in_the_ou_tagged_and_listed(endpoint, client):
    tenant_lists(client, "Contoso")
    tenant_lists(client, "Fabrikam")
    contact, created = make(client, "Pat O'Brien, Sales", "Pat@Fabrikam.example")
    assert created
    (held,) = contacts(endpoint)
    assert held["Guid"] == contact["Guid"]
    assert held["DistinguishedName"] == "CN=Pat O'Brien\\, Sales," + OU
    assert held["ExternalEmailAddress"] == "SMTP:Pat@Fabrikam.example"
    assert held["CustomAttribute1"] == "Contoso"
    members = endpoint.snapshot()["exchange"]["address_list_members"]
    assert members["Contoso - All Users"] == ["Pat O'Brien, Sales"]
    assert members["Contoso - GAL"] == ["Pat O'Brien, Sales"]
    assert members["Fabrikam - All Users"] == []
    calls = [c["cmdlet"] for c in endpoint.snapshot()["calls"] if "MailContact" in c["cmdlet"]]
    assert calls == ["Get-MailContact", "New-MailContact", "Set-MailContact"]
    new = next(c for c in endpoint.snapshot()["calls"] if c["cmdlet"] == "New-MailContact")
    assert new["params"] == {"Name": "Pat O'Brien, Sales",
                             "ExternalEmailAddress": "Pat@Fabrikam.example",
                             "OrganizationalUnit": OU}
    assert endpoint.violations == []


def test_running_again_adopts_the_organizations_own_contact(endpoint, client):
    first, _ = make(client, "Pat", "pat@fabrikam.example")
    again, created = make(client, "Pat", "PAT@fabrikam.example")
    assert not created and again["Guid"] == first["Guid"]
    assert len(contacts(endpoint)) == 1


def test_an_untagged_contact_left_by_a_cut_off_attempt_is_adopted_and_tagged(endpoint, client):
    client.run("New-MailContact", {"Name": "Pat", "ExternalEmailAddress": "pat@fabrikam.example",
                                   "OrganizationalUnit": OU})
    contact, created = client.ensure_mail_contact(
        "Pat", "pat@fabrikam.example", organizational_unit=OU, identity=dn("Pat"),
        tenant="Contoso")
    assert not created
    client.tag_mail_contact(contact["Guid"], "Contoso")
    assert contacts(endpoint)[0]["CustomAttribute1"] == "Contoso"


@pytest.mark.parametrize("address, tag", [("other@fabrikam.example", "Contoso"),
                                          ("pat@fabrikam.example", "Fabrikam")])
def test_a_contact_that_is_not_the_organizations_is_refused_and_kept(endpoint, client,
                                                                     address, tag):
    make(client, "Pat", address, tenant=tag)
    before = contacts(endpoint)
    with pytest.raises(PermanentExchangeError) as exc:
        make(client, "Pat", "pat@fabrikam.example")
    assert exc.value.kind == "conflict"
    with pytest.raises(PermanentExchangeError):
        client.remove_mail_contact(dn("Pat"), "pat@fabrikam.example", "Contoso")
    assert contacts(endpoint) == before


def test_exchange_refuses_an_address_another_recipient_has(endpoint, client):
    make(client, "Pat", "pat@fabrikam.example", ou=OTHER_OU, tenant="Fabrikam")
    with pytest.raises(PermanentExchangeError) as exc:
        make(client, "Pat Brown", "pat@fabrikam.example")
    assert exc.value.kind == "already_exists"
    assert "proxy address" in exc.value.exchange_message
    assert [c["CustomAttribute1"] for c in contacts(endpoint)] == ["Fabrikam"]


def test_one_name_in_two_organizations_ous_is_two_contacts(endpoint, client):
    make(client, "Pat", "pat@fabrikam.example")
    make(client, "Pat", "pat@tailspin.example", ou=OTHER_OU, tenant="Fabrikam")
    assert len(contacts(endpoint)) == 2
    # By DN, each organization reaches its own.
    assert client.get_mail_contact(dn("Pat", OTHER_OU))["CustomAttribute1"] == "Fabrikam"


def test_removing_removes_and_gone_is_success(endpoint, client):
    contact, _ = make(client, "Pat", "pat@fabrikam.example")
    assert client.remove_mail_contact(contact["Guid"], "pat@fabrikam.example", "Contoso")
    assert contacts(endpoint) == []
    assert not client.remove_mail_contact(contact["Guid"], "pat@fabrikam.example", "Contoso")
    remove = [c for c in endpoint.snapshot()["calls"] if c["cmdlet"] == "Remove-MailContact"]
    assert remove == [{"cmdlet": "Remove-MailContact",
                       "params": {"Identity": contact["Guid"], "Confirm": False}}]


def test_hostile_names_reach_exchange_as_data(endpoint, client):
    name = "x'; Remove-MailContact * -Confirm:$false; $(whoami) \"q\""
    make(client, name, "pat@fabrikam.example")
    assert contacts(endpoint)[0]["Name"] == name
    assert endpoint.violations == []


def test_the_endpoint_binds_the_contact_cmdlets_as_exchange_does(client):
    with pytest.raises(PermanentExchangeError) as exc:
        client.run("New-MailContact", {"Name": "Pat", "CustomAttribute1": "Contoso",
                                       "ExternalEmailAddress": "pat@fabrikam.example"})
    assert exc.value.kind == "invalid_parameter"
    with pytest.raises(PermanentExchangeError) as exc:
        client.run("New-MailContact", {"Name": "Pat"})
    assert "ExternalEmailAddress" in exc.value.exchange_message
    with pytest.raises(PermanentExchangeError) as exc:
        client.run("Remove-MailContact", {"Identity": "nobody", "Confirm": False})
    assert exc.value.kind == "not_found"
