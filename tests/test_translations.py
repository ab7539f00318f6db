"""Translation-ready beyond the templates: every message the service layer refuses with is
marked for translation, comes out in the reader's language (German as the proof), alert
e-mails are written in their recipient's language, and the committed German catalog is
complete and compiled from its .po."""

import ast
import gettext
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from provisioning import alerts, changelog, quotas, services
from provisioning.models import Account, Operation, OperationState, Role
from provisioning.models.events import EVENT_TYPE_LABELS
from servicplans.models import QuotaName
from tests.support.api import api_client
from tests.support.views import PRIMARY

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale" / "de" / "LC_MESSAGES"

# --- Every user-facing message is marked ---------------------------------------------------

# Django-free clients (their messages are the directory's and Exchange's own, kept as data).
DJANGO_FREE = {"directory.py", "exchange.py"}
# The exceptions (and the helpers that make them) whose message a person reads: as a form
# error, an API 400/403/409 body or a flash message.
USER_MESSAGE_CALLS = {"ValidationError", "PermissionDenied", "error", "quota_error"}
TRANSLATE = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext",
             "pgettext_lazy"}


def service_modules():
    for folder in ("provisioning", "provisioning/models", "servicplans"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.name not in DJANGO_FREE:
                yield path


def _called(node):
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _bare_text(node):
    """Whether `node` is a message no translation can reach: a str constant, an f-string,
    or either with % or .format() applied to it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(node.value.strip())
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return _bare_text(node.left)
    if isinstance(node, ast.Call) and _called(node) == "format":
        return _bare_text(node.func.value)
    return False


def unmarked_messages(source, filename):
    """(line, text) of each user message in `source` given as bare text: the first argument
    of a USER_MESSAGE_CALLS call, a value of the dict one is given, and a value put into a
    service's `errors` dict."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        candidates = []
        if isinstance(node, ast.Call) and _called(node) in USER_MESSAGE_CALLS and node.args:
            first = node.args[0]
            candidates.append(first)
            if isinstance(first, ast.Dict):
                candidates.extend(first.values)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and getattr(
                        target.value, "id", None) == "errors":
                    candidates.append(node.value)
        found.extend((c.lineno, ast.unparse(c)) for c in candidates if _bare_text(c))
    return found


def test_no_service_message_is_an_unmarked_literal():
    offenders = []
    for path in service_modules():
        offenders += [f"{path.relative_to(ROOT)}:{line}: {text}"
                      for line, text in unmarked_messages(path.read_text(), str(path))]
    assert offenders == [], "\n".join(offenders)


@pytest.mark.parametrize("source", [
    'raise ValidationError("Choose a plan.")',
    'raise ValidationError(f"{name} is taken.")',
    'raise ValidationError({"name": "Choose a plan."})',
    'raise PermissionDenied("No.")',
    'raise self.error(f"The {label} is required.", "required")',
    'errors["name"] = "Choose a plan."',
    'raise ValidationError("{org} is suspended".format(org=org))',
])
def test_the_check_finds_an_unmarked_message(source):
    assert unmarked_messages(source, "example.py")


@pytest.mark.parametrize("source", [
    'raise ValidationError(_("Choose a plan."))',
    'raise ValidationError(_("%(name)s is taken.") % {"name": name})',
    'raise ValidationError({"name": _("Choose a plan.")})',
    'raise ValidationError(MESSAGE % {"org": org}, code="suspended")',
    'errors["name"] = exc.messages',
])
def test_the_check_lets_a_marked_message_pass(source):
    assert not unmarked_messages(source, "example.py")


# --- The service layer speaks the reader's language ---------------------------------------


def refusal(call, *args, **kwargs):
    with pytest.raises(ValidationError) as exc:
        call(*args, **kwargs)
    return exc.value.message_dict if hasattr(exc.value, "error_dict") else exc.value.messages


def test_a_services_refusal_comes_out_in_german(demo):
    domain = demo.assets.order_by("pk").first().name
    with translation.override("de"):
        assert refusal(services.add_domain, demo, domain) == {
            "name": [f"Die Domain {domain} wird bereits verwendet."]}
        errors = refusal(services.create_user, demo, display_name="", local_part="x.",
                         domain="fabrikam.example", password="")
        assert errors["display_name"] == ["Das Feld „Anzeigename“ ist erforderlich."]
        assert errors["local_part"] == [
            "Das Feld „Anmeldename“ darf nicht mit einem Punkt beginnen oder enden und keine "
            "zwei Punkte hintereinander enthalten."]
        assert errors["domain"] == ["Wählen Sie eine der Domains der Organisation."]
    # The same refusal in English, word for word as before.
    assert refusal(services.add_domain, demo, domain) == {
        "name": [f"The domain {domain} is already in use."]}


def test_a_quota_refusal_comes_out_in_german(demo):
    # An organization's own space does not offer organizations: a limit of 0.
    with translation.override("de"), transaction.atomic():
        messages = refusal(quotas.reserve, demo, QuotaName.ORGANIZATIONS)
    assert messages == ["Das Kontingent der Organisation für Organisationen ist erreicht: "
                        "0 von 0 belegt, 1 weitere angefordert."]
    with transaction.atomic():
        assert refusal(quotas.reserve, demo, QuotaName.ORGANIZATIONS) == [
            "The organization's quota for organizations is reached: 0 of 0 used, 1 more "
            "requested."]


def test_the_api_answers_in_the_requests_language(demo):
    response = api_client(PRIMARY).post("/api/v1/users/", {
        "organization": demo.pk, "display_name": "Nestor", "local_part": "nestor",
        "domain": "fabrikam.example", "password": "Welcome-2026-Nestor!"}, format="json",
        HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 400
    assert response.json()["domain"] == ["Wählen Sie eine der Domains der Organisation."]


def test_event_types_and_change_log_words_are_translated():
    with translation.override("de"):
        assert {str(label) for label in EVENT_TYPE_LABELS.values()} >= {
            "Planwechsel", "Domain hinzugefügt", "Angelegt"}
        assert str(changelog.NOUNS[Account][0]) == "Panel-Konto"
        assert str(changelog.TITLES[1] % {"noun": "Benutzer", "name": "x"}) == (
            "Benutzer x geändert")


def test_reference_values_in_the_change_log_are_shown_by_label(client, demo):
    """Status, asset and customer types are stored by their seed names (BusinessUser); the
    change log shows each by a label, translated."""
    from provisioning import constants as c
    from servicplans.models import ServicePlan
    from tests.support.views import login

    for key, stored in (("customer_type", c.CUSTOMER_TYPES), ("asset_type", c.ASSET_TYPES),
                        ("status", c.STATUS_TYPES)):
        assert set(changelog.VALUE_LABELS[key]) == set(stored), key
    admin = get_user_model().objects.get(username=PRIMARY)
    services.create_user(demo, display_name="Lara Log", local_part="lara",
                         domain="contoso.example", password="Strong-Password-104!",
                         service_plan=ServicePlan.objects.get(name="Gold"), actor=admin)
    login(client, PRIMARY)
    url = reverse("changelog", args=[demo.pk])
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    german = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Lara Log" in english and "Lara Log" in german
    for page in (english, german):
        assert c.BUSINESS_USER not in page and c.BUSINESS_ORGANIZATION not in page


def test_every_action_is_named_for_people_in_english_and_german(client, demo):
    from provisioning.actions import ACTIONS
    from provisioning.models.operations import ACTION_LABELS
    from tests.support.views import login

    assert set(ACTION_LABELS) == set(ACTIONS)
    with translation.override("de"):
        german = {key: str(label) for key, label in ACTION_LABELS.items()}
    english = {key: str(label) for key, label in ACTION_LABELS.items()}
    assert all(german[key] != english[key] for key in ACTIONS), german
    # The operations page shows the name, never the journal's key.
    login(client, PRIMARY)
    page = client.get(f"/organizations/{demo.pk}/operations/",
                      HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Benutzer bereitstellen" in page and "provision_user" not in page
    assert "provision user" not in page
    # The events page names event types by their label too, never the seed's key.
    page = client.get(reverse("organization_events", args=[demo.pk]),
                      HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Angelegt" in page and "<td>Created</td>" not in page


# --- Alert e-mails in the recipient's language ---------------------------------------------


def failed_operations(organization):
    now = timezone.now()
    Operation.objects.filter(scope=organization).update(
        state=OperationState.FAILED, finished=now, requested=now - timedelta(minutes=5),
        last_error="An account of that name exists in the directory.")
    return Operation.objects.filter(scope=organization).count()


def test_an_alert_to_a_german_account_is_in_german(demo, mailoutbox, settings):
    settings.PANEL_URL = ""
    admin = Account.objects.get(customer=demo, role=Role.PRIMARY_ADMIN)
    admin.language = "de"
    admin.save(update_fields=["language"])
    count = failed_operations(demo)
    assert count >= 2
    before = translation.get_language()
    assert alerts.send_operation_alerts() >= 2
    by_person = {message.to[0]: message for message in mailoutbox}
    german = by_person[admin.user.email]
    assert german.subject == (f"[Hosted Organizations] {count} Vorgänge brauchen "
                              "Aufmerksamkeit (Contoso)")
    assert german.body.startswith(f"{count} Vorgänge sind fehlgeschlagen und werden nicht "
                                  "erneut versucht, solange niemand sie wiederholt.")
    assert "Fehlgeschlagen " in german.body and "nach 0 Versuchen" in german.body
    # The error itself is the journal's, as recorded.
    assert "An account of that name exists in the directory." in german.body
    english = by_person["reseller@panel.example"]
    assert english.subject == (f"[Hosted Organizations] {count} operations need attention "
                               "(Contoso)")
    assert english.body.startswith(f"{count} operations failed and will not be tried again")
    # Sending changed nothing of the language the caller had.
    assert translation.get_language() == before


def test_the_daily_summary_follows_the_staff_accounts_language(demo, mailoutbox, settings):
    settings.PROVIDER_ALERT_EMAIL = ["noc@provider.example"]
    staff = get_user_model().objects.create_user("staff-de", "staff@provider.example",
                                                 is_staff=True)
    Account.objects.create(user=staff, role=Role.PROVIDER_STAFF, language="de")
    failed_operations(demo)
    assert alerts.send_provider_summary() >= 2
    by_person = {message.to[0]: message for message in mailoutbox}
    assert by_person["staff@provider.example"].subject.startswith(
        "[Hosted Organizations] Tageszusammenfassung: ")
    assert "Abgeschlossene Vorgänge: " in by_person["staff@provider.example"].body
    assert by_person["noc@provider.example"].subject.startswith(
        "[Hosted Organizations] Daily summary: ")


# --- The German catalog: complete, and the committed .mo is compiled from it ---------------


def po_entries(text):
    """[(flags, msgctxt, msgid, msgstrs)] of a --no-wrap .po file, the header left out."""
    entries = []
    for block in text.strip().split("\n\n")[1:]:
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        if not lines:
            continue
        flags = " ".join(line for line in lines if line.startswith("#,"))
        fields = {}
        for line in lines:
            if line.startswith("msg"):
                key, _, value = line.partition(" ")
                fields[key] = value[1:-1]
        entries.append((flags, fields.get("msgctxt"), fields["msgid"],
                        [v for k, v in fields.items() if k.startswith("msgstr")]))
    return entries


def test_the_german_catalog_has_no_fuzzy_or_untranslated_entry():
    entries = po_entries((LOCALE / "django.po").read_text())
    assert len(entries) > 500
    assert [e[2] for e in entries if "fuzzy" in e[0]] == []
    assert [e[2] for e in entries if not all(e[3])] == []


def test_the_committed_mo_is_compiled_from_the_po(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(LOCALE / "django.po")],
                   check=True, capture_output=True)
    with open(fresh, "rb") as compiled, open(LOCALE / "django.mo", "rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == \
            gettext.GNUTranslations(compiled)._catalog, \
            "django.mo is stale: compile it again with msgfmt (or compilemessages)"
