"""Every name the panel accepts follows one rule per kind (provisioning.names), applied by the
service functions, mirrored by the forms and stated in their help texts: surrounding
whitespace stripped, NFC stored, invisible and control characters refused, and logins and
logon names kept to a conservative ASCII set. Whatever a caller sends, the outcome is a
ValidationError naming the field, or the value stored as the rule says — and what reaches
the directory parses back to the intended name under the intended parent."""

import operator
import re
import string
import unicodedata
from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ldap3.utils.dn import parse_dn

from panel.forms.organizations import DomainForm, SignUpForm
from panel.forms.peers import PeerCreateForm, PeerEditForm
from panel.forms.users import UserCreateForm, UserEditForm
from provisioning import accounts, backends, journal, names, services
from provisioning.actions import prime_dry_run
from provisioning.models import Account, Customer, Operation, Role
from provisioning.reconciliation import split_dn
from servers.models import Service, ServiceKind
from servicplans.models import HostingPlan
from tests.support.assertions import refused

PASSWORD = "Name-Rules-Pass-2026!"
User = get_user_model()
CODES = {"required", "max_length", "forbidden_character", "invalid_character",
         "invalid_start", "mixed_script", "invalid"}


def sign_up(reseller, **overrides):
    arguments = dict(reseller=reseller, name="Fabrikam", primary_domain="fabrikam.example",
                     admin_username="fabrikam-admin", admin_password=PASSWORD,
                     hosting_plan=HostingPlan.objects.get(name="Business Premium"))
    arguments.update(overrides)
    return services.sign_up_organization(**arguments)


def new_peer(organization, **overrides):
    arguments = dict(username="contoso-ops", password=PASSWORD, role=Role.PEER_HELPDESK,
                     actor=User.objects.get(username="contoso-admin"))
    arguments.update(overrides)
    return accounts.create_peer(organization, **arguments)


def new_user(organization, **overrides):
    arguments = dict(display_name="Adele Vance", local_part="adele", domain="contoso.example",
                     password=PASSWORD)
    arguments.update(overrides)
    return services.create_user(organization, **arguments)


def counts():
    return Customer.objects.count(), User.objects.count(), Operation.objects.count()


# --- Finding 6: forms and services agree on names ---------------------------------------

def test_the_services_strip_surrounding_whitespace_like_the_forms(reseller, demo):
    org = sign_up(reseller, name="  Fabrikam \r\n", primary_domain=" Fabrikam.Example ",
                  admin_username="\r\n fabrikam-admin\t")
    assert org.name == "Fabrikam"
    assert Account.objects.get(customer=org).user.username == "fabrikam-admin"
    assert org.hosting_spaces.get().name.startswith("Fabrikam — ")

    user = new_user(demo, display_name="\n Adele Vance  ", given_name=" Adele ",
                    surname="\tVance ", local_part=" adele ")
    assert (user.name, user.upn) == ("Adele Vance", "adele@contoso.example")
    provision = Operation.objects.get(customer=user, action="provision_user")
    assert (provision.params["given_name"], provision.params["surname"]) == ("Adele", "Vance")

    user = services.update_user(user, display_name="  Adele V. ", given_name=" A. ",
                                surname=" V ")
    assert Customer.objects.get(pk=user.pk).name == "Adele V."
    rename = Operation.objects.get(customer=user, action="rename_user")
    assert rename.params == {"display_name": "Adele V.", "given_name": "A.", "surname": "V"}

    peer = new_peer(demo, username=" contoso-ops ", first_name=" Ann ", last_name=" Lee\n")
    assert (peer.user.username, peer.user.first_name, peer.user.last_name) == (
        "contoso-ops", "Ann", "Lee")
    accounts.update_peer(peer, role=Role.PEER_READ_ONLY, first_name="  Anne ",
                         last_name=" Li ", actor=User.objects.get(username="contoso-admin"))
    peer.user.refresh_from_db()
    assert (peer.user.first_name, peer.user.last_name) == ("Anne", "Li")


def test_the_service_stores_what_the_form_shows(reseller, demo):
    """Form and service apply one rule: the form's cleaned value is the stored value."""
    admin = User.objects.get(username="contoso-admin")
    form = SignUpForm(data={"reseller": reseller.pk, "name": " Fabrikam ",
                            "primary_domain": " Fabrikam.Example. ",
                            "admin_username": " fabrikam-admin ", "admin_password": PASSWORD,
                            "hosting_plan": HostingPlan.objects.get(name="Business Basic").pk},
                      user=User.objects.get(username="reseller"))
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["name"], form.cleaned_data["primary_domain"],
            form.cleaned_data["admin_username"]) == ("Fabrikam", "fabrikam.example",
                                                     "fabrikam-admin")
    form = PeerCreateForm(data={"username": " contoso-ops ", "first_name": " Ann ",
                                "role": Role.PEER_HELPDESK, "password": PASSWORD}, actor=admin)
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["username"], form.cleaned_data["first_name"]) == (
        "contoso-ops", "Ann")


@pytest.mark.parametrize("form_class, fields", [
    (SignUpForm, ["name", "primary_domain", "admin_username"]),
    (UserCreateForm, ["display_name", "given_name", "surname", "local_part"]),
    (UserEditForm, ["display_name", "given_name", "surname"]),
    (PeerCreateForm, ["username", "first_name", "last_name"]),
    (PeerEditForm, ["first_name", "last_name"]),
    (DomainForm, ["name"]),
])
def test_every_name_field_states_its_rule(form_class, fields):
    for field in fields:
        help_text = str(form_class.base_fields[field].help_text)
        assert "removed" in help_text and "characters" in help_text, (field, help_text)


# --- Finding 7: panel logins accept only logins --------------------------------------------

BAD_LOGINS = ["<script>alert(1)</script>", "admin\u202egnp.exe", "CN=admin,DC=hosting,DC=test",
              "contoso\u200badmin", "ad\x00min", "\u0441ontoso-ops", "admin\nroot",
              "fabrikam admin", "x" * 151]


@pytest.mark.parametrize("login", BAD_LOGINS)
def test_a_login_with_markup_bidi_controls_or_a_dn_is_refused(reseller, demo, login):
    before = counts()
    message = refused("admin_username", sign_up, reseller, admin_username=login)
    assert message == refused("username", new_peer, demo, username=login)
    assert counts() == before
    form = PeerCreateForm(data={"username": login, "role": Role.PEER_HELPDESK,
                                "password": PASSWORD},
                          actor=User.objects.get(username="contoso-admin"))
    assert not form.is_valid()
    assert form.errors["username"] == [message]


def test_a_nul_in_the_logon_name_is_refused_by_the_service(demo):
    before = counts()
    assert "U+0000" in refused("local_part", new_user, demo, local_part="nul\x00l")
    assert counts() == before


@pytest.mark.parametrize("field, value", [
    ("display_name", "Adele\u202eecnaV"), ("display_name", "Adele\u200dVance"),
    ("given_name", "Ad\x00ele"), ("surname", "Va\nnce"), ("local_part", "adele\u200b"),
    ("local_part", "\u0430dele"), ("local_part", "adele$"),
])
def test_create_user_refuses_invisible_and_foreign_characters(demo, field, value):
    before = counts()
    refused(field, new_user, demo, **{field: value})
    assert counts() == before


# --- The rules themselves -----------------------------------------------------------------

RULE_EXAMPLES = [
    # (rule, value, stored value or the ValidationError's code)
    (names.ORGANIZATION_NAME, "  Contoso, Ltd. \r\n", "Contoso, Ltd."),
    (names.ORGANIZATION_NAME, "Ærøskøbing Øst", "Ærøskøbing Øst"),
    (names.ORGANIZATION_NAME, unicodedata.normalize("NFD", "Café Zoë"), "Café Zoë"),
    (names.ORGANIZATION_NAME, "東京 Contoso", "東京 Contoso"),
    (names.ORGANIZATION_NAME, "AT&T (Europe) + Partners", "AT&T (Europe) + Partners"),
    (names.ORGANIZATION_NAME, "Mærsk A/S, #2", "Mærsk A/S, #2"),
    (names.ORGANIZATION_NAME, "O\u2019Brien", "invalid_character"),
    (names.ORGANIZATION_NAME, "C\u043entoso", "mixed_script"),       # Cyrillic о
    (names.ORGANIZATION_NAME, "#Contoso", "invalid_start"),
    (names.ORGANIZATION_NAME, "Contoso\\Sales", "invalid_character"),
    (names.ORGANIZATION_NAME, "OU=Contoso;x", "invalid_character"),
    (names.ORGANIZATION_NAME, "Contoso\u202e", "forbidden_character"),
    (names.ORGANIZATION_NAME, "x" * 53, "max_length"),
    (names.ORGANIZATION_NAME, " \t ", "required"),
    (names.LOGIN, " contoso-admin ", "contoso-admin"),
    (names.LOGIN, "Admin.Two+x@contoso.example", "Admin.Two+x@contoso.example"),
    (names.LOGIN, "straße", "invalid_character"),
    (names.LOGIN, "ｃontoso", "invalid_character"),                   # full-width c
    (names.LOGIN, ".admin", "invalid_start"),
    (names.DISPLAY_NAME, "<script>alert(1)</script>", "<script>alert(1)</script>"),
    (names.DISPLAY_NAME, "#1 \"Boss\", <CEO>; a=b \\ c", "#1 \"Boss\", <CEO>; a=b \\ c"),
    (names.DISPLAY_NAME, "Zoë\u200d", "forbidden_character"),
    (names.DISPLAY_NAME, "Zoë\u2028Smith", "forbidden_character"),
    (names.DISPLAY_NAME, "\ue000", "forbidden_character"),
    (names.DISPLAY_NAME, "\u0378", "forbidden_character"),
    (names.DISPLAY_NAME, "\ud800", "forbidden_character"),
    (names.DISPLAY_NAME, "😀" * 33, "max_length"),                       # 66 UTF-16 units
    (names.PERSONAL_NAME, "  ", ""),
    (names.UPN_LOCAL_PART, "o'brien-smith+news", "o'brien-smith+news"),
    (names.UPN_LOCAL_PART, "megan..bowen", "invalid"),
    (names.UPN_LOCAL_PART, "megan$", "invalid_character"),
    (names.DOMAIN, " Sales.Contoso.EXAMPLE. ", "sales.contoso.example"),
    (names.DOMAIN, "xn--bcher-kva.example", "xn--bcher-kva.example"),
    (names.DOMAIN, "bücher.example", "invalid_character"),
    (names.DOMAIN, "contoso.example..", "invalid"),
    (names.DOMAIN, "localhost", "invalid"),
    (names.EMAIL, " ops@contoso.example ", "ops@contoso.example"),
    (names.EMAIL, "ops\x00@contoso.example", "forbidden_character"),
    (names.MAILBOX_ADDRESS, " Megan.B@Contoso.EXAMPLE. ", "Megan.B@contoso.example"),
    (names.MAILBOX_ADDRESS, "megan$(x)@contoso.example", "invalid_character"),
    (names.MAILBOX_ADDRESS, "megan\u202e@contoso.example", "forbidden_character"),
    (names.MAILBOX_ADDRESS, "a@b@contoso.example", "invalid"),
    (names.CONTACT_NAME, " O'Brien, Pat (Fabrikam) ", "O'Brien, Pat (Fabrikam)"),
    (names.CONTACT_NAME, "Zoë Ærøskøbing", "Zoë Ærøskøbing"),
    (names.CONTACT_NAME, 'Say "hi"', "invalid_character"),
    (names.CONTACT_NAME, "$(Remove-MailContact x)", "invalid_start"),
    (names.CONTACT_NAME, "Pat $(Remove-MailContact x)", "invalid_character"),
    (names.CONTACT_NAME, "Pat \u2018Quoted\u2019", "invalid_character"),
    (names.CONTACT_NAME, "Pat\nBrown", "forbidden_character"),
    (names.CONTACT_NAME, "Pat \u202eBrown", "forbidden_character"),
    (names.CONTACT_NAME, "P" * 65, "max_length"),
    (names.EXTERNAL_EMAIL, " Pat.Brown@Fabrikam.COM ", "Pat.Brown@Fabrikam.COM"),
    (names.EXTERNAL_EMAIL, '"pat brown"@fabrikam.com', "invalid_character"),
    (names.EXTERNAL_EMAIL, "$(whoami)@fabrikam.com", "invalid_character"),
    (names.EXTERNAL_EMAIL, "pat@fabrikam.com\n", "pat@fabrikam.com"),
    (names.EXTERNAL_EMAIL, "pat\n@fabrikam.com", "forbidden_character"),
    (names.EXTERNAL_EMAIL, "pat@fabrikam", "invalid"),
    # Named, as in a mailbox's address: ü is refused before the @ and after it.
    (names.EXTERNAL_EMAIL, "pat@bücher.example", "invalid_character"),
    (names.EXTERNAL_EMAIL, "pat@fabrikam.com.", "invalid"),
    (names.EXTERNAL_EMAIL, "pat..brown@fabrikam.com", "invalid"),
    (names.EXTERNAL_EMAIL, "", "required"),
    (names.EXTERNAL_EMAIL, "p" * 250 + "@x.com", "max_length"),
]


@pytest.mark.parametrize("rule, value, outcome", RULE_EXAMPLES)
def test_each_rule_cleans_or_refuses_with_a_code(rule, value, outcome):
    assert names.RULES[rule.kind] is rule
    if outcome in CODES:
        with pytest.raises(ValidationError) as exc:
            rule.clean(value)
        assert exc.value.code == outcome, exc.value.messages
        assert rule.label in exc.value.messages[0] or outcome == "invalid"
    else:
        assert rule.clean(value) == outcome == names.clean(rule.kind, value)


def test_a_rule_describes_itself_for_an_api():
    assert names.RULES["login"].describe() == {
        "kind": "login", "label": "login", "max_length": 150, "required": True,
        "help_text": names.LOGIN.help_text}
    assert set(names.RULES) == {"organization_name", "login", "display_name", "personal_name",
                                "upn_local_part", "domain", "email", "token_name",
                                "mailbox_address", "contact_name", "external_email"}


# --- Properties: whatever a caller sends ---------------------------------------------------

METACHARACTERS = ",+\"\\<>;=#*()\x00$`'’‘{}|&@"
INVISIBLE = ("\u202e\u202d\u202a\u202b\u202c\u2066\u2067\u2068\u2069\u200e\u200f"
             "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e")
CONTROLS = "\x00\x01\t\n\r\x0b\x0c\x1b\x7f\x85\x9f"
SPACES = " \u00a0\u2003\u3000\u2028\u2029"
CONFUSABLES = ("\u0430\u0435\u043e\u0440\u0441\u0456\u0455\u0501"  # Cyrillic а е о р с і ѕ ԁ
               "\u03bf\u03b1"                                      # Greek ο α
               "ＡＣＯＳａｃｏｓ０１＠．"                            # full-width
               "\u2102\U0001d402\u212a\u017f\u00df\u0131")          # ℂ 𝐂 K(elvin) ſ ß ı
OTHER = "é\u0301\u0308ØæÆ東京あカ한😀\ue000\u0378\U000e0041\ud800\udfff"
SPECIALS = METACHARACTERS + INVISIBLE + CONTROLS + SPACES + CONFUSABLES + OTHER
WORDS = ["Contoso", "Fabrikam", "Zoë", "Ærøskøbing", "東京", "Москва", "megan.bowen",
         "o'brien", "contoso-admin", "a+b", "x@y", "Ltd.", "CN=admin,DC=hosting,DC=test",
         "<script>alert(1)</script>", "$(Get-Process)", "'; DROP TABLE x; --", "*)(cn=*"]

character = st.one_of(st.sampled_from(SPECIALS), st.sampled_from(string.ascii_letters + " .-_"),
                      st.characters())
hostile_text = st.one_of(
    st.text(alphabet=character, max_size=70),
    st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from(SPECIALS), st.just(" ")),
             max_size=6).map("".join),
    st.builds(operator.mul, st.sampled_from(["a", "é", "e\u0301", "😀", " ", "\u200b"]),
              st.integers(20, 400)),
    st.just("x" * 200_000),
)
label = st.one_of(st.sampled_from(["contoso", "Sales", "xn--bcher-kva", "a-b", "-bad", "bad-",
                                   "bücher", "", "EXAMPLE", "123", "x" * 64]),
                  st.text(alphabet=character, max_size=8))
hostile_domain = st.one_of(
    st.builds(lambda labels, suffix, pad: f"{pad}{'.'.join(labels)}{suffix}{pad}",
              st.lists(label, min_size=1, max_size=4), st.sampled_from(["", ".", ".."]),
              st.sampled_from(["", " ", "\t", "\u200b"])),
    hostile_text)

padding = st.sampled_from(["", " ", "  ", "\t", "\r\n", "\u3000", " \n ", "\u00a0"])


def padded(strategy):
    return st.builds(lambda pad, value, end: f"{pad}{value}{end}", padding, strategy, padding)


def ascii_name(extra, max_size=30):
    return st.builds(operator.add, st.sampled_from(string.ascii_letters + string.digits),
                     st.text(alphabet=string.ascii_letters + string.digits + extra,
                             max_size=max_size))


# Names near each kind's edge, so that many examples are accepted and reach the directory.
PLAUSIBLE = {
    names.ORGANIZATION_NAME: st.builds(
        operator.add, st.sampled_from(["Contoso", "Zoë", "Ærø", "東京", "Москва", "Ωmega", "9"]),
        st.text(alphabet=st.one_of(st.sampled_from(" &',.-()!+#@_/"),
                                   st.characters(categories=["L", "M", "Nd"])), max_size=45)),
    names.LOGIN: ascii_name("._-@+"),
    names.UPN_LOCAL_PART: ascii_name("._-+'"),
    names.DOMAIN: st.builds(
        lambda labels, tld, dot: ".".join([*labels, tld]) + dot,
        st.lists(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True),
                 min_size=1, max_size=3),
        st.sampled_from(["example", "COM", "xn--p1ai", "co"]), st.sampled_from(["", "."])),
    names.DISPLAY_NAME: st.text(alphabet=st.one_of(st.sampled_from(METACHARACTERS),
                                                   st.characters(exclude_categories=[
                                                       "Cc", "Cf", "Cs", "Co", "Cn",
                                                       "Zl", "Zp"])), max_size=64),
}
PLAUSIBLE[names.PERSONAL_NAME] = PLAUSIBLE[names.DISPLAY_NAME]
PLAUSIBLE[names.TOKEN_NAME] = PLAUSIBLE[names.DISPLAY_NAME]
PLAUSIBLE[names.EMAIL] = st.builds(lambda local, domain: f"{local}@{domain}",
                                   PLAUSIBLE[names.UPN_LOCAL_PART], PLAUSIBLE[names.DOMAIN])
PLAUSIBLE[names.MAILBOX_ADDRESS] = PLAUSIBLE[names.EMAIL]
PLAUSIBLE[names.CONTACT_NAME] = PLAUSIBLE[names.ORGANIZATION_NAME]
PLAUSIBLE[names.EXTERNAL_EMAIL] = PLAUSIBLE[names.EMAIL]


def any_name(rule):
    """Hostile text, or a name near the edge of what `rule` accepts, padded or not."""
    hostile = hostile_domain if rule is names.DOMAIN else hostile_text
    return st.one_of(hostile, padded(PLAUSIBLE[rule]))


REFUSED = set(names.REFUSED_CATEGORIES)

PROPERTY = settings(max_examples=50, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])


def as_stored(value, domain=False):
    """What the rule says is stored for an accepted value: stripped and NFC (a domain also
    lower case, without the root's dot) — computed here independently of the rules."""
    value = unicodedata.normalize("NFC", value.strip())
    if domain:
        value = value.lower()
        value = value[:-1] if value.endswith(".") else value
    return value


def assert_clean(value, rule):
    """What every accepted value satisfies, checked independently of the rule's code."""
    event("accepted")
    assert not any(unicodedata.category(ch) in REFUSED for ch in value), ascii(value)
    assert len(value.encode("utf-16-le")) // 2 <= rule.max_length
    assert value == value.strip() and unicodedata.is_normalized("NFC", value)
    if rule in (names.LOGIN, names.UPN_LOCAL_PART, names.DOMAIN, names.MAILBOX_ADDRESS):
        assert value.isascii() and value.isprintable() and " " not in value
    if rule in (names.ORGANIZATION_NAME, names.CONTACT_NAME):
        assert not set(value) & set("\\\"<>;=*$`‘’") and value[0].isalnum()
    if rule is names.EXTERNAL_EMAIL:
        assert value.isascii() and value.count("@") == 1 and not set(value) & set("\"$`()")


def assert_refused(exc, field):
    """A clear refusal: on the field, with a known code (or saying what is taken), and a
    message with nothing invisible in it."""
    assert field in exc.message_dict, exc
    event(f"refused: {exc.error_dict[field][0].code or 'taken'}")
    for error in exc.error_dict[field]:
        (message,) = error.messages
        assert error.code in CODES or "already" in message or "Choose" in message, message
        assert not any(unicodedata.category(ch) in REFUSED for ch in message), ascii(message)


class _Rollback(Exception):
    pass


@contextmanager
def one_example(prime=None):
    """Each example in a savepoint that is rolled back, against a fresh dry-run directory
    (the dry run keeps its directory in memory, which no rollback undoes). `prime`: a
    customer whose organization the directory holds before the example starts — rebuilt
    from the database while it still has the names the directory had."""
    with backends._lock:
        backends._clients.clear()
    if prime is not None:
        prime_dry_run(backends.directory_for(prime), prime)
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def run_operations():
    """Run what the service enqueued through the dry-run backend, as the eager worker does
    once the transaction commits (it never does in a test's transaction)."""
    for pk in Operation.objects.filter(state="queued").order_by("pk").values_list("pk",
                                                                                 flat=True):
        journal.execute(pk)


def ldap_writes(customer, action):
    operation = Operation.objects.get(customer=customer, action=action)
    assert operation.state == "succeeded", operation.last_error
    return [entry for entry in operation.backend_log if entry["backend"] == "ldap"]


# RFC 4514's grammar of a DN of single-valued RDNs: a value is (leadchar / pair)
# [*(stringchar / pair) (trailchar / pair)], where a pair is an escaped special or hex pair.
_PAIR = r'\\(?:[\\ "#+,;<=>]|[0-9A-Fa-f]{2})'
_VALUE = (rf'(?:[^\x00 "#+,;<>\\]|{_PAIR})'
          rf'(?:(?:[^\x00"+,;<>\\]|{_PAIR})*(?:[^\x00 "+,;<>\\]|{_PAIR}))?')
_RDN = rf"[A-Za-z][A-Za-z0-9-]*={_VALUE}"
RFC4514_DN = re.compile(rf"{_RDN}(?:,{_RDN})*")


def rdns(dn):
    """[(attribute, unescaped value)] of a DN that is valid by RFC 4514's grammar and that
    ldap3's parser splits into the same RDNs. (ldap3's own validation, parse_dn(escape=
    False), also wants a '#' inside a value escaped, which RFC 4514 and Active Directory
    do not: so its parser is asked to escape before it validates.)"""
    assert RFC4514_DN.fullmatch(dn), ascii(dn)
    parsed = parse_dn(dn, escape=True)
    split = split_dn(dn)
    assert [(a.lower(), sep) for a, _, sep in parsed] == [
        (a, "," if i < len(split) - 1 else "") for i, (a, _) in enumerate(split)], dn
    return split


@pytest.fixture
def directory_layout(demo, eager_dryrun):
    """Contoso provisioned in the dry run, and where its objects go in the directory."""
    with backends._lock:
        backends._clients.clear()
    run_operations()
    service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
    root = [("ou", service.root_ou.lower())] + [
        (a, v.lower()) for a, v in split_dn(service.base_dn)]
    assert root[0] == ("ou", "microsoft exchange hosted organizations")
    return root


def under(dn, parent):
    """The RDN of `dn` whose parent is `parent` (case-insensitively, as the directory
    compares), or fail."""
    parts = rdns(dn)
    assert [(a, v.lower()) for a, v in parts[1:]] == parent, (dn, parent)
    return parts[0]


# sign_up_organization

@pytest.mark.parametrize("field, rule", [("name", names.ORGANIZATION_NAME),
                                         ("admin_username", names.LOGIN),
                                         ("primary_domain", names.DOMAIN)])
@PROPERTY
@given(data=st.data())
def test_sign_up_takes_any_name_and_provisions_it_where_it_belongs(reseller, directory_layout,
                                                                  field, rule, data):
    value = data.draw(any_name(rule), label=field)
    with one_example():
        try:
            org = sign_up(reseller, **{field: value})
        except ValidationError as exc:
            assert_refused(exc, field)
            return
        stored = {"name": org.name, "primary_domain": org.assets.get().name,
                  "admin_username": Account.objects.get(customer=org).user.username}[field]
        assert stored == as_stored(value, domain=rule is names.DOMAIN)
        assert_clean(stored, rule)
        run_operations()
        writes = ldap_writes(org, "provision_organization")
        org_ou = ("ou", org.name)
        root_ou = under(writes[0]["dn"], directory_layout[1:])
        assert (root_ou[0], root_ou[1].lower()) == directory_layout[0]
        assert under(writes[1]["dn"], directory_layout) == org_ou
        org_dn = [(a, v.lower()) for a, v in [org_ou, *directory_layout]]
        group = next(w for w in writes if w["op"] == "add" and "group" in
                     w["attributes"]["objectClass"])
        assert under(group["dn"], org_dn) == ("cn", org.name)
        suffixes = [w for w in writes if "uPNSuffixes" in w.get("changes", {})]
        assert [w["changes"]["uPNSuffixes"] for w in suffixes] == [
            [["add", [org.assets.get().name]]]]
        for write in writes:
            rdns(write["dn"])


# create_user, update_user

USER_FIELDS = [("display_name", names.DISPLAY_NAME), ("given_name", names.PERSONAL_NAME),
               ("surname", names.PERSONAL_NAME), ("local_part", names.UPN_LOCAL_PART)]


@pytest.mark.parametrize("field, rule", USER_FIELDS)
@PROPERTY
@given(data=st.data())
def test_create_user_takes_any_name_and_provisions_it_in_its_organization(
        demo, directory_layout, field, rule, data):
    value = data.draw(any_name(rule), label=field)
    arguments = dict(display_name="Adele Vance", given_name="Adele", surname="Vance",
                     local_part="adele", domain="contoso.example", password=PASSWORD)
    arguments[field] = value
    with one_example():
        try:
            user = services.create_user(demo, **arguments)
        except ValidationError as exc:
            assert_refused(exc, field)
            return
        run_operations()
        user.refresh_from_db()
        expected = {k: as_stored(v) for k, v in arguments.items()}
        assert (user.name, user.upn) == (expected["display_name"],
                                          f"{expected['local_part']}@contoso.example")
        assert_clean(expected[field], rule)
        writes = ldap_writes(user, "provision_user")
        add = next(w for w in writes if w["op"] == "add")
        org_dn = [("ou", "contoso"), *directory_layout]
        cn = under(add["dn"], org_dn)
        assert cn in {("cn", user.name), ("cn", f"{user.name} ({expected['local_part']})")}
        attributes = add["attributes"]
        assert attributes["userPrincipalName"] == user.upn
        assert attributes["displayName"] == user.name
        for name, attribute in (("given_name", "givenName"), ("surname", "sn")):
            assert attributes.get(attribute, "") == expected[name]
        member = next(w for w in writes if "member" in w.get("changes", {}))
        assert under(member["dn"], org_dn) == ("cn", "Contoso")
        assert member["changes"]["member"] == [["add", [add["dn"]]]]
        for write in writes:
            rdns(write["dn"])


@pytest.fixture
def provisioned_user(demo, directory_layout):
    user = new_user(demo)
    run_operations()
    user.refresh_from_db()
    assert user.object_guid is not None
    return user


@pytest.mark.parametrize("field, rule", USER_FIELDS[:3])
@PROPERTY
@given(data=st.data())
def test_update_user_takes_any_name_and_renames_in_place(provisioned_user, directory_layout,
                                                        field, rule, data):
    value = data.draw(any_name(rule), label=field)
    arguments = dict(display_name="Adele Vance", given_name="Adele", surname="Vance")
    arguments[field] = value
    with one_example(prime=provisioned_user):
        try:
            services.update_user(provisioned_user, **arguments)
        except ValidationError as exc:
            assert_refused(exc, field)
            return
        run_operations()
        user = Customer.objects.get(pk=provisioned_user.pk)
        expected = {k: as_stored(v) for k, v in arguments.items()}
        assert user.name == expected["display_name"]
        assert_clean(expected[field], rule)
        writes = ldap_writes(user, "rename_user")
        org_dn = [("ou", "contoso"), *directory_layout]
        for write in writes:
            rdns(write["dn"])
        moves = [w for w in writes if w["op"] == "modify_dn"]
        if user.name != "Adele Vance":
            assert [rdns(w["relative_dn"]) for w in moves] == [[("cn", user.name)]]
            assert under(moves[0]["dn"], org_dn) == ("cn", "Adele Vance")
        else:
            assert moves == []
        changes = {k: v for w in writes if w["op"] == "modify"
                   for k, v in w["changes"].items()}
        original = {"display_name": "Adele Vance", "given_name": "Adele", "surname": "Vance"}
        for name, attribute in (("display_name", "displayName"), ("given_name", "givenName"),
                                ("surname", "sn")):
            if expected[name] and expected[name] != original[name]:
                # A new name is written; it is never silently left out. (Clearing one
                # the rebuilt dry-run directory never held needs no write.)
                assert attribute in changes, (name, expected[name])
            if attribute in changes:
                assert changes[attribute] == [["replace", [expected[name]] if expected[name]
                                               else []]]


# add_domain

@PROPERTY
@given(value=any_name(names.DOMAIN))
def test_add_domain_takes_any_name_and_adds_it_to_its_organization(demo, directory_layout,
                                                                   value):
    with one_example():
        try:
            asset = services.add_domain(demo, value)
        except ValidationError as exc:
            assert_refused(exc, "name")
            return
        assert asset.name == as_stored(value, domain=True)
        assert_clean(asset.name, names.DOMAIN)
        run_operations()
        writes = ldap_writes(demo, "add_domain")
        assert [(under(w["dn"], directory_layout), w["changes"]) for w in writes] == [
            (("ou", "Contoso"), {"uPNSuffixes": [["add", [asset.name]]]})]


# create_peer, update_peer

PEER_FIELDS = [("username", names.LOGIN), ("first_name", names.PERSONAL_NAME),
               ("last_name", names.PERSONAL_NAME), ("email", names.EMAIL)]


@pytest.mark.parametrize("field, rule", PEER_FIELDS)
@PROPERTY
@given(data=st.data())
def test_create_and_update_peer_take_any_name(demo, field, rule, data):
    value = data.draw(any_name(rule), label=field)
    admin = User.objects.get(username="contoso-admin")
    with one_example():
        try:
            peer = new_peer(demo, **{field: value})
        except ValidationError as exc:
            assert_refused(exc, field)
            if field == "username":
                return
            peer = new_peer(demo)
            with pytest.raises(ValidationError) as again:
                accounts.update_peer(peer, role=Role.PEER_READ_ONLY, actor=admin,
                                     **{field: value})
            assert_refused(again.value, field)
            return
        stored = getattr(User.objects.get(pk=peer.user.pk), field)
        assert stored == as_stored(value)
        assert_clean(stored, rule)
        if field != "username":
            accounts.update_peer(peer, role=Role.PEER_READ_ONLY, actor=admin,
                                 **{field: value})
            assert getattr(User.objects.get(pk=peer.user.pk), field) == stored


# The rules on their own: idempotent, and what they keep is clean

@settings(PROPERTY, max_examples=300)
@given(data=st.data(), kind=st.sampled_from(sorted(names.RULES)))
def test_a_cleaned_name_is_clean_and_cleans_to_itself(data, kind):
    rule = names.RULES[kind]
    value = data.draw(any_name(rule))
    try:
        cleaned = rule.clean(value)
    except ValidationError as exc:
        assert exc.code in CODES
        assert not any(unicodedata.category(ch) in REFUSED for ch in exc.messages[0])
        return
    if rule is names.MAILBOX_ADDRESS:
        local, _, domain = as_stored(value).rpartition("@")
        assert cleaned == f"{local}@{as_stored(domain, domain=True)}"
    else:
        assert cleaned == as_stored(value, domain=rule is names.DOMAIN)
    if cleaned:
        assert_clean(cleaned, rule)
    assert rule.clean(cleaned) == cleaned


def test_the_admin_gives_new_and_renamed_logins_the_same_rule(client, demo):
    from tests.support.views import login

    login(client, "provider")
    # Django's own username validator takes any letter: a Cyrillic с passes for a c.
    response = client.post("/admin/auth/user/add/", {
        "username": "\u0441ontoso-admin2", "password1": PASSWORD, "password2": PASSWORD,
        "usable_password": "true"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["username"] == [
        names.LOGIN.refuse_character("\u0441").messages[0]]
    assert not User.objects.filter(username="\u0441ontoso-admin2").exists()
    # A login made before the rule can still be edited as long as it keeps its name.
    legacy = User.objects.create_user(username="straße", password=PASSWORD)
    data = {"username": "straße", "email": "", "first_name": "", "last_name": "",
            "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "last_login_0": "", "last_login_1": ""}
    response = client.post(f"/admin/auth/user/{legacy.pk}/change/", data)
    assert response.status_code == 302
    response = client.post(f"/admin/auth/user/{legacy.pk}/change/",
                           {**data, "username": "straße\u202e"})
    assert response.status_code == 200
    assert "U+202E" in " ".join(response.context["adminform"].form.errors["username"])


# The property tests return early on a refusal: if the rules began refusing every name, they
# would check nothing. These awkward but valid names must go all the way to the directory.
AWKWARD_ORGANIZATIONS = ["Mærsk A/S, #2", "AT&T (Europe) + Partners", "O'Brien & Søn",
                         "Ærøskøbing Øst", "株式会社 Contoso"]


@pytest.mark.parametrize("name", AWKWARD_ORGANIZATIONS)
def test_awkward_but_valid_names_reach_the_directory_escaped(reseller, directory_layout, name):
    with one_example():
        org = sign_up(reseller, name=name)
        assert org.name == name
        user = new_user(org, display_name=f"{name}, Jr.", domain="fabrikam.example")
        run_operations()
        (ou,) = [w for w in ldap_writes(org, "provision_organization")
                 if w["op"] == "add" and "organizationalUnit" in w["attributes"]["objectClass"]
                 and [(a, v.lower()) for a, v in rdns(w["dn"])[1:]] == directory_layout]
        assert under(ou["dn"], directory_layout) == ("ou", name)
        (add,) = [w for w in ldap_writes(user, "provision_user") if w["op"] == "add"]
        assert under(add["dn"], [("ou", name.lower()), *directory_layout]) == (
            "cn", f"{name}, Jr.")
