"""The API's mail calls, as the browser's pages (tests/test_contacts.py,
tests/test_mail_flow.py): an organization's mail contacts (create within the quota, refuse
hostile names with the rule's words, delete) and a user's e-mail addresses and
forwarding — each a journaled change answering 202 with its operation."""

import pytest

from provisioning import services
from provisioning.models import (
    ContactStatus,
    HostingSpaceQuota,
    MailAddress,
    MailContact,
    MailForwarding,
    Operation,
)
from tests.support.api import api_client
from tests.support.views import PRIMARY, READ_ONLY


def megan(demo):
    return demo.children.get(upn="megan@contoso.example")


def alex(demo):
    return demo.children.get(upn="alex@contoso.example")


def operation_of(response):
    assert response.status_code == 202, response.json()
    operation = Operation.objects.get(pk=response.json()["id"])
    assert response["Location"].endswith(f"/api/v1/operations/{operation.pk}/")
    return operation


# --- Mail contacts ---------------------------------------------------------------------------


def new_contact(demo, **overrides):
    return {"organization": demo.pk, "name": "Pat Brown", "email": "pat@fabrikam.example",
            **overrides}


def test_a_contact_is_created_with_its_operation(demo):
    client = api_client(PRIMARY)
    response = client.post("/api/v1/contacts/", new_contact(demo), format="json",
                           HTTP_IDEMPOTENCY_KEY="contact-pat-1")
    operation = operation_of(response)
    contact = MailContact.objects.get(organization=demo)
    assert (contact.name, contact.email, contact.status) == (
        "Pat Brown", "pat@fabrikam.example", ContactStatus.PENDING)
    assert operation.action == "provision_contact"
    assert operation.params["contact"] == contact.pk
    # A retry with the same key acts once.
    again = client.post("/api/v1/contacts/", new_contact(demo), format="json",
                        HTTP_IDEMPOTENCY_KEY="contact-pat-1")
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert MailContact.objects.filter(organization=demo).count() == 1
    # Listed and shown.
    listed = client.get("/api/v1/contacts/", {"organization": demo.pk}).json()["results"]
    assert [(c["id"], c["name"], c["email"], c["status"]) for c in listed] == [
        (contact.pk, "Pat Brown", "pat@fabrikam.example", "pending")]
    shown = client.get(f"/api/v1/contacts/{contact.pk}/").json()
    assert shown["organization"] == demo.pk and shown["provisioned"] is False
    assert client.get("/api/v1/contacts/", {"q": "nobody"}).json()["results"] == []


def test_a_second_contact_of_one_address_is_400(demo):
    client = api_client(PRIMARY)
    operation_of(client.post("/api/v1/contacts/", new_contact(demo), format="json"))
    response = client.post("/api/v1/contacts/", new_contact(demo, name="Patricia",
                                                            email="PAT@fabrikam.example"),
                           format="json")
    assert response.status_code == 400
    assert response.json()["email"] == [
        "The organization already has a contact for PAT@fabrikam.example."]


def test_the_contact_quota_is_409_with_its_figures(demo):
    HostingSpaceQuota.objects.create(hosting_space=services.hosting_space_of(demo),
                                     quota="mail_contacts", limit=1)
    client = api_client(PRIMARY)
    operation_of(client.post("/api/v1/contacts/", new_contact(demo), format="json"))
    response = client.post("/api/v1/contacts/", new_contact(
        demo, name="Lee Chen", email="lee@fabrikam.example"), format="json")
    assert response.status_code == 409
    body = response.json()
    assert {k: body[k] for k in ("code", "field", "quota", "used", "limit", "requested")} == {
        "code": "quota", "field": "name", "quota": "mail_contacts", "used": 1, "limit": 1,
        "requested": 1}
    assert body["detail"] == ("The organization's quota for mail contacts is reached: 1 of 1 "
                              "used, 1 more requested.")
    assert MailContact.objects.filter(organization=demo).count() == 1


HOSTILE = [
    ("name", 'Pat "The Boss"'),
    ("name", "$(Remove-MailContact -Identity *)"),
    ("name", "Pat `whoami`"),
    ("name", "Pat\nBrown"),
    ("name", "Pat \u202eBrown"),
    ("name", "P" * 65),
    ("name", ""),
    ("name", "  "),
    ("email", '"pat"@fabrikam.example'),
    ("email", "pat$(x)@fabrikam.example"),
    ("email", "pat\r\n@fabrikam.example"),
    ("email", "pat@fabrikam"),
    ("email", "pat@fabrikam.example\x00"),
]


@pytest.mark.parametrize("field, value", HOSTILE)
def test_hostile_contact_names_are_400_with_the_rules_message(demo, field, value):
    """The same message as the service's (and so the browser's) for the same input."""
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.create_contact(demo, **{"name": "Pat Brown", "email": "pat@fabrikam.example",
                                         field: value})
    response = api_client(PRIMARY).post("/api/v1/contacts/", new_contact(demo, **{field: value}),
                                        format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body[field] == exc.value.message_dict[field]
    assert not MailContact.objects.exists()
    assert not Operation.objects.filter(action="provision_contact").exists()


def test_deleting_a_contact_is_202_and_frees_it(demo):
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    client = api_client(PRIMARY)
    response = client.delete(f"/api/v1/contacts/{contact.pk}/")
    assert operation_of(response).action == "delete_contact"
    assert MailContact.objects.get(pk=contact.pk).status == ContactStatus.DELETED
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert client.get("/api/v1/contacts/").json()["results"] == []


def test_a_read_only_peer_lists_contacts_but_cannot_create_them(demo, contoso_peers):
    services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    client = api_client(READ_ONLY)
    assert len(client.get("/api/v1/contacts/").json()["results"]) == 1
    response = client.post("/api/v1/contacts/", new_contact(demo, email="x@x.example",
                                                            name="X"), format="json")
    assert response.status_code == 403


def test_a_suspended_organizations_contacts_are_409(demo):
    contact = services.create_contact(demo, name="Pat Brown", email="pat@fabrikam.example")
    services.set_enabled(demo, False)
    client = api_client(PRIMARY)
    response = client.post("/api/v1/contacts/", new_contact(demo, name="Lee",
                                                            email="lee@x.example"),
                           format="json")
    assert (response.status_code, response.json()["code"]) == (409, "suspended")
    response = client.delete(f"/api/v1/contacts/{contact.pk}/")
    assert (response.status_code, response.json()["code"]) == (409, "suspended")


# --- A user's e-mail addresses ---------------------------------------------------------------


def test_addresses_are_set_and_read_back(demo):
    client = api_client(PRIMARY)
    user = megan(demo)
    url = f"/api/v1/users/{user.pk}/addresses/"
    assert client.get(url).json() == {"primary": "megan@contoso.example", "addresses": []}
    response = client.post(url, {"addresses": ["megan.bowen@contoso.example",
                                               "sales@contoso.example"],
                                 "primary": "megan.bowen@contoso.example"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="megan-addresses-1")
    operation = operation_of(response)
    assert (operation.action, operation.customer_id) == ("set_email_addresses", user.pk)
    assert operation.params == {"primary": "megan.bowen@contoso.example",
                                "addresses": ["megan.bowen@contoso.example",
                                              "sales@contoso.example"]}
    assert client.get(url).json() == {
        "primary": "megan.bowen@contoso.example",
        "addresses": ["megan.bowen@contoso.example", "sales@contoso.example"]}
    # The same again changes nothing: 200 with the addresses, no operation.
    same = client.post(url, {"addresses": ["sales@contoso.example",
                                           "megan.bowen@contoso.example"]}, format="json")
    assert same.status_code == 200
    assert same.json()["primary"] == "megan.bowen@contoso.example"
    assert Operation.objects.filter(action="set_email_addresses").count() == 1
    # An empty list removes them; the logon name is primary again.
    operation_of(client.post(url, {"addresses": [], "primary": "megan@contoso.example"},
                             format="json"))
    assert client.get(url).json() == {"primary": "megan@contoso.example", "addresses": []}
    assert not MailAddress.objects.filter(customer=user).exists()


def test_addresses_refused_by_the_rules_are_400_by_field(demo):
    client = api_client(PRIMARY)
    url = f"/api/v1/users/{megan(demo).pk}/addresses/"
    cases = [
        ({"addresses": ["megan@fabrikam.example"]}, "addresses",
         "is not on one of the organization's domains"),
        ({"addresses": ["alex@contoso.example"]}, "addresses", "alex@contoso.example"),
        ({"addresses": ["x$(whoami)@contoso.example"]}, "addresses", ""),
        ({"addresses": ["a@contoso.example"], "primary": "b@contoso.example"}, "primary",
         "The primary address must be"),
        ({"addresses": "a@contoso.example"}, "addresses", ""),  # not a list
    ]
    for body, field, words in cases:
        response = client.post(url, body, format="json")
        assert response.status_code == 400, body
        assert words in response.json()[field][0], response.json()
    assert not MailAddress.objects.exists()
    assert not Operation.objects.filter(action="set_email_addresses").exists()


def test_a_read_only_peer_reads_addresses_but_cannot_set_them(demo, contoso_peers):
    client = api_client(READ_ONLY)
    url = f"/api/v1/users/{megan(demo).pk}/addresses/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"addresses": ["m@contoso.example"]}, format="json")
    assert response.status_code == 403


# --- A user's forwarding ---------------------------------------------------------------------


def test_forwarding_is_set_changed_and_cleared(demo):
    client = api_client(PRIMARY)
    user, other = megan(demo), alex(demo)
    url = f"/api/v1/users/{user.pk}/forwarding/"
    assert client.get(url).json() == {"forward_to": None, "recipient": None,
                                      "keep_copy": False}
    # To another user of the organization: its mailbox.
    operation = operation_of(client.post(url, {"forward_to": "alex@contoso.example",
                                               "keep_copy": True}, format="json",
                                         HTTP_IDEMPOTENCY_KEY="megan-fwd-1"))
    assert (operation.action, operation.params) == (
        "set_forwarding", {"recipient": other.pk, "address": "", "keep_copy": True})
    assert client.get(url).json() == {"forward_to": "alex@contoso.example",
                                      "recipient": other.pk, "keep_copy": True}
    # To an external address.
    operation_of(client.post(url, {"forward_to": "megan@gmail.example"}, format="json"))
    assert client.get(url).json() == {"forward_to": "megan@gmail.example",
                                      "recipient": None, "keep_copy": False}
    # The same again: 200, nothing journaled.
    same = client.post(url, {"forward_to": "megan@gmail.example"}, format="json")
    assert same.status_code == 200 and same.json()["forward_to"] == "megan@gmail.example"
    assert Operation.objects.filter(action="set_forwarding").count() == 2
    # Cleared, with an empty address or null.
    operation_of(client.post(url, {"forward_to": ""}, format="json"))
    assert not MailForwarding.objects.filter(customer=user).exists()
    assert client.get(url).json()["forward_to"] is None
    assert client.post(url, {"forward_to": None}, format="json").status_code == 200


def test_forwarding_to_another_organization_is_400(demo, other_tenant):
    client = api_client(PRIMARY)
    user = megan(demo)
    url = f"/api/v1/users/{user.pk}/forwarding/"
    for address in ("pat@fabrikam.example", "someone@fabrikam.example"):
        response = client.post(url, {"forward_to": address}, format="json")
        assert response.status_code == 400
        assert response.json()["forward_to"] == [
            f"{address} belongs to another organization: mail can only be forwarded to "
            "this organization's users or to external addresses."]
    for body, words in [({"forward_to": "megan@contoso.example"}, "the mailbox itself"),
                        ({"forward_to": "nobody@contoso.example"}, "No user of this"),
                        ({"forward_to": "x`y`@z.example"}, "")]:
        response = client.post(url, body, format="json")
        assert response.status_code == 400 and words in response.json()["forward_to"][0]
    assert not MailForwarding.objects.exists()
    assert not Operation.objects.filter(action="set_forwarding").exists()


def test_a_user_without_a_mailbox_has_no_forwarding_to_set(demo):
    user = alex(demo)
    services.change_plan(user, None)
    response = api_client(PRIMARY).post(f"/api/v1/users/{user.pk}/forwarding/",
                                        {"forward_to": "a@gmail.example"}, format="json")
    assert response.status_code == 400
    assert "has no mailbox" in response.json()["detail"]
