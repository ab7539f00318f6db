"""Helpers for the panel's view tests: logins per role, a second tenant to attack, the
panel's URL patterns read from the resolver (so a new page is covered without editing a
list), and `ViewTestCases`, the shared tests of an object's pages."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from provisioning import services, tokens
from provisioning.models import Account, Customer, HostingSpace, Operation, Role
from servicplans.models import HostingPlan, ServicePlan

PASSWORD = "Demo-Panel-2026!"
NEW_PASSWORD = "Fresh-Password-4711"

# The demo's logins, one per role; the three peers besides the helpdesk come from the
# `contoso_peers` fixture.
PROVIDER, RESELLER, PRIMARY = "provider", "reseller", "contoso-admin"
FULL, MANAGER = "contoso-peer-full-admin", "contoso-peer-user-manager"
HELPDESK, READ_ONLY = "contoso-helpdesk", "contoso-peer-read-only"
EVERYONE = frozenset({PROVIDER, RESELLER, PRIMARY, FULL, MANAGER, HELPDESK, READ_ONLY})
ABOVE = frozenset({PROVIDER, RESELLER})
ADMINS = ABOVE | {PRIMARY, FULL}
MANAGERS = ADMINS | {MANAGER}
HELPERS = MANAGERS | {HELPDESK}

# The URL kwargs of the panel and the object each one names.
ID_KWARGS = ("org_id", "user_id", "account_id", "operation_id", "batch", "token_id",
             "contact_id")


def make_login(username, **extra):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD,
                                                email=f"{username}@panel.example", **extra)
    return user


def make_peer(organization, username, role):
    user = make_login(username)
    Account.objects.create(user=user, customer=organization, role=role)
    return user


def make_other_tenant():
    """Litware Hosting (reseller) > Fabrikam (organization) > one user, a peer, a failed
    operation, a domain, an API token of its administrator and a mail contact."""
    provider = get_user_model().objects.get(username="provider")
    litware = Customer.objects.create(name="Litware Hosting",
                                      customer_type_id="ResellerOrganization")
    HostingSpace.objects.create(customer=litware,
                                hosting_plan=HostingPlan.objects.get(name="Reseller Standard"),
                                name="Litware — Reseller Standard")
    litware_admin = make_login("litware-reseller")
    Account.objects.create(user=litware_admin, customer=litware, role=Role.RESELLER_ADMIN)
    fabrikam = services.sign_up_organization(
        reseller=litware, name="Fabrikam", primary_domain="fabrikam.example",
        admin_username="fabrikam-admin", admin_password=PASSWORD,
        hosting_plan=HostingPlan.objects.get(name="Business Basic"),
        service_plans=ServicePlan.objects.filter(name="Gold"), actor=provider)
    user = services.create_user(fabrikam, display_name="Fabrikam User", local_part="pat",
                                domain="fabrikam.example", password=PASSWORD,
                                service_plan=ServicePlan.objects.get(name="Gold"))
    peer = make_peer(fabrikam, "fabrikam-helpdesk", Role.PEER_HELPDESK)
    operation = Operation.objects.filter(customer=user).first()
    Operation.objects.filter(pk=operation.pk).update(state="failed", last_error="boom")
    admin = Account.objects.get(customer=fabrikam, role=Role.PRIMARY_ADMIN)
    token, _ = tokens.create(admin.user, name="Fabrikam billing", actor=admin.user)
    contact = services.create_contact(fabrikam, name="Fabrikam Contact",
                                      email="contact@litware.example")
    return {"reseller": litware, "organization": fabrikam, "user": user, "contact": contact,
            "account": peer.account, "operation": operation, "token": token,
            "domain": fabrikam.assets.get(), "admin": admin}


def panel_patterns(resolver=None, prefix=""):
    """(name, route) of every named panel URL, the provider's /admin/ and the API (whose
    own walk is tests/test_api_isolation.py) left out."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith("admin/"):
            continue
        if isinstance(entry, URLResolver):
            if route.startswith(("admin/", "api/")):
                continue
            yield from panel_patterns(entry, route)
        elif isinstance(entry, URLPattern) and entry.name:
            yield entry.name, route


def route_kwargs(route):
    return re.findall(r"<(?:\w+:)?(\w+)>", route)


def foreign_kwargs(route, own, foreign):
    """kwargs for `route`: every id from `foreign`, so each one must fail on its own."""
    values = {"org_id": foreign["organization"].pk, "user_id": foreign["user"].pk,
              "account_id": foreign["account"].pk, "operation_id": foreign["operation"].pk,
              "batch": secrets.token_hex(16), "token_id": foreign["token"].pk,
              "contact_id": foreign["contact"].pk}
    return {name: values[name] for name in route_kwargs(route)}


def mixed_kwargs(route, own_org, foreign):
    """The caller's own organization with one foreign object id."""
    kwargs = foreign_kwargs(route, None, foreign)
    if "org_id" in kwargs:
        kwargs["org_id"] = own_org.pk
    return kwargs


def login(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


def form_errors(response):
    """A refused form's errors, for an assertion's message."""
    context = response.context or {}
    return context["form"].errors if "form" in context else response.status_code


class _ObjectPages:
    """The data a test class of an object's pages declares; the mixins below read it.

    URL names: `list_url` (and, where the page exists, `detail_url`, `create_url`,
    `edit_url`, `delete_url`); `object_kwarg` names the object's id in them.
    Logins allowed each action: `view_logins`, `create_logins`, `edit_logins`,
    `delete_logins`; every other demo login must be refused. `actor` does the changes.
    Data: `create_data` and `edit_data` are POSTed (a callable value is called first, for
    ids that exist only once the demo is seeded); `created` and `edited` are lookups the
    object must then match.
    Hooks: `live_objects(organization)` is what the panel still shows,
    `make_object(organization)` makes one to act on, `foreign_object(other_tenant)` picks
    another tenant's, and `text_of(obj)` is how a page names it."""

    list_url = detail_url = create_url = edit_url = delete_url = None
    object_kwarg = None
    actor = PRIMARY
    view_logins = EVERYONE
    create_logins = edit_logins = delete_logins = frozenset()
    create_data = edit_data = created = edited = {}

    def live_objects(self, organization):
        raise NotImplementedError

    def make_object(self, organization):
        raise NotImplementedError

    def foreign_object(self, other_tenant):
        raise NotImplementedError

    def text_of(self, obj):
        return str(obj)

    # -- derived -------------------------------------------------------------------------

    def url(self, name, organization, obj=None):
        kwargs = {"org_id": organization.pk}
        if obj is not None:
            kwargs[self.object_kwarg] = obj.pk
        return reverse(name, kwargs=kwargs)

    @staticmethod
    def resolved(data):
        return {key: value() if callable(value) else value for key, value in data.items()}

    def is_live(self, organization, obj):
        return self.live_objects(organization).filter(pk=obj.pk).exists()

    def matches(self, organization, lookup, obj=None):
        queryset = self.live_objects(organization).filter(**lookup)
        return queryset.filter(pk=obj.pk).exists() if obj is not None else queryset.exists()

    def assert_allowed_and_denied(self, client, url, allowed, method="get", data=None):
        for username in sorted(EVERYONE):
            login(client, username)
            response = getattr(client, method)(url, self.resolved(data or {}))
            expected = 200 if username in allowed else 403
            assert response.status_code == expected, (
                f"{username} {method.upper()} {url}: {response.status_code}, "
                f"expected {expected}")


class ListViewTestMixin(_ObjectPages):
    def test_list_shows_the_organizations_objects_only(self, client, demo, contoso_peers,
                                                       other_tenant):
        obj = self.make_object(demo)
        page = login(client, self.actor).get(self.url(self.list_url, demo))
        assert page.status_code == 200
        text = page.content.decode()
        assert self.text_of(obj) in text
        assert self.text_of(self.foreign_object(other_tenant)) not in text

    def test_list_allowed_and_denied(self, client, demo, contoso_peers):
        self.assert_allowed_and_denied(client, self.url(self.list_url, demo), self.view_logins)

    def test_list_of_a_foreign_organization_is_404(self, client, demo, contoso_peers,
                                                   other_tenant):
        login(client, self.actor)
        url = self.url(self.list_url, other_tenant["organization"])
        assert client.get(url).status_code == 404


class DetailViewTestMixin(_ObjectPages):
    def test_detail_shows_the_object(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        page = login(client, self.actor).get(self.url(self.detail_url, demo, obj))
        assert page.status_code == 200
        assert self.text_of(obj) in page.content.decode()

    def test_detail_allowed_and_denied(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        self.assert_allowed_and_denied(client, self.url(self.detail_url, demo, obj),
                                       self.view_logins)

    def test_detail_of_a_foreign_object_is_404(self, client, demo, contoso_peers,
                                               other_tenant):
        foreign = self.foreign_object(other_tenant)
        login(client, self.actor)
        for organization in (demo, other_tenant["organization"]):
            url = self.url(self.detail_url, organization, foreign)
            assert client.get(url).status_code == 404, url


class CreateViewTestMixin(_ObjectPages):
    def test_create(self, client, demo, contoso_peers):
        assert not self.matches(demo, self.created)
        response = login(client, self.actor).post(self.url(self.create_url, demo),
                                                  self.resolved(self.create_data))
        assert response.status_code == 302, form_errors(response)
        assert self.matches(demo, self.created)

    def test_create_allowed_and_denied(self, client, demo, contoso_peers):
        url = self.url(self.create_url, demo)
        # A form on the list page is as visible as the list; only its POST is guarded.
        if self.create_url != self.list_url:
            self.assert_allowed_and_denied(client, url, self.create_logins)
        for username in sorted(EVERYONE - self.create_logins):
            response = login(client, username).post(url, self.resolved(self.create_data))
            assert response.status_code == 403, f"{username} POST {url}"
        assert not self.matches(demo, self.created)

    def test_create_in_a_foreign_organization_is_404(self, client, demo, contoso_peers,
                                                     other_tenant):
        foreign = other_tenant["organization"]
        url = self.url(self.create_url, foreign)
        response = login(client, self.actor).post(url, self.resolved(self.create_data))
        assert response.status_code == 404
        assert not self.matches(foreign, self.created)
        assert not self.matches(demo, self.created)


class EditViewTestMixin(_ObjectPages):
    def test_edit(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        url = self.url(self.edit_url, demo, obj)
        login(client, self.actor)
        assert client.get(url).status_code == 200
        assert client.post(url, self.resolved(self.edit_data)).status_code == 302
        assert self.matches(demo, self.edited, obj)

    def test_edit_allowed_and_denied(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        url = self.url(self.edit_url, demo, obj)
        self.assert_allowed_and_denied(client, url, self.edit_logins)
        for username in sorted(EVERYONE - self.edit_logins):
            response = login(client, username).post(url, self.resolved(self.edit_data))
            assert response.status_code == 403, f"{username} POST {url}"
        assert not self.matches(demo, self.edited, obj)

    def test_edit_of_a_foreign_object_is_404(self, client, demo, contoso_peers,
                                             other_tenant):
        foreign = self.foreign_object(other_tenant)
        login(client, self.actor)
        for organization in (demo, other_tenant["organization"]):
            url = self.url(self.edit_url, organization, foreign)
            assert client.post(url, self.resolved(self.edit_data)).status_code == 404, url
        assert not self.matches(other_tenant["organization"], self.edited, foreign)


class DeleteViewTestMixin(_ObjectPages):
    def test_delete_asks_first_then_deletes(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        url = self.url(self.delete_url, demo, obj)
        login(client, self.actor)
        question = client.get(url)
        assert question.status_code == 200 and self.text_of(obj) in question.content.decode()
        assert self.is_live(demo, obj), "a GET must only ask"
        # Following the redirect shows (and so uses up) the message that names the object.
        response = client.post(url, follow=True)
        assert response.redirect_chain and response.status_code == 200
        assert not self.is_live(demo, obj)
        assert self.text_of(obj) not in client.get(self.url(self.list_url, demo)
                                                   ).content.decode()

    def test_delete_allowed_and_denied(self, client, demo, contoso_peers):
        obj = self.make_object(demo)
        url = self.url(self.delete_url, demo, obj)
        self.assert_allowed_and_denied(client, url, self.delete_logins)
        for username in sorted(EVERYONE - self.delete_logins):
            assert login(client, username).post(url).status_code == 403, f"{username} POST"
        assert self.is_live(demo, obj)

    def test_delete_of_a_foreign_object_is_404(self, client, demo, contoso_peers,
                                               other_tenant):
        foreign = self.foreign_object(other_tenant)
        login(client, self.actor)
        for organization in (demo, other_tenant["organization"]):
            url = self.url(self.delete_url, organization, foreign)
            assert client.post(url).status_code == 404, url
        assert self.is_live(other_tenant["organization"], foreign)


class ViewTestCases:
    """Bundles of the mixins, as in NetBox: a test class inherits one and declares its
    data (see `_ObjectPages`)."""

    ListViewTestMixin = ListViewTestMixin
    DetailViewTestMixin = DetailViewTestMixin
    CreateViewTestMixin = CreateViewTestMixin
    EditViewTestMixin = EditViewTestMixin
    DeleteViewTestMixin = DeleteViewTestMixin

    class PrimaryObjectViewTestCase(ListViewTestMixin, DetailViewTestMixin,
                                    CreateViewTestMixin, EditViewTestMixin,
                                    DeleteViewTestMixin):
        """Every page of an object: list, detail, create, edit and delete."""
