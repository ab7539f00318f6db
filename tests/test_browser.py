"""The panel in a real browser (Debian's chromium driven by Playwright): a reseller signs an
organization up, its administrator creates a user and sees it provisioned, a helpdesk peer
resets a password but cannot create users, and a CSV with one bad line provisions nothing
until it is fixed. The main pages are photographed on the way: into a temporary folder, or
into SCREENSHOTS_DIR when it is set (`make screenshots` sets docs/screenshots), so a test
run leaves the work tree as it was."""

import os
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from provisioning.models import Customer, Operation

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still
# plain synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# live_server flushes the database after each test: marked transactional, pytest-django runs
# these after the tests that rely on the migrations' reference data. Sequences start again
# at 1, so the ids on the screenshots are the same from one run to the next.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True,
                                                         reset_sequences=True)]

PASSWORD = "Demo-Panel-2026!"


@pytest.fixture(scope="session")
def browser_type_launch_args():
    return {"executable_path": "/usr/bin/chromium",
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 1360, "height": 860}}


@pytest.fixture
def panel(live_server, eager_dryrun):
    """The demo data, provisioned in-process by the dry-run backend, behind a live server."""
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    return live_server.url


def sign_in(page, url, login):
    page.goto(url + "/")
    page.fill("input[name=username]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory):
    chosen = os.environ.get("SCREENSHOTS_DIR")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shot(screenshots_dir):
    def take(page, name):
        page.screenshot(path=str(screenshots_dir / f"{name}.png"), full_page=True)

    return take


def test_a_reseller_signs_up_an_organization(page, panel, shot):
    page.goto(panel + "/")
    shot(page, "login")
    sign_in(page, panel, "reseller")
    page.wait_for_selector("h1:has-text('Hosted organizations')")
    shot(page, "reseller-organizations")
    page.click("text=Sign up an organization")
    page.fill("input[name=name]", "Fabrikam")
    page.fill("input[name=primary_domain]", "fabrikam.example")
    page.fill("input[name=admin_username]", "fabrikam-admin")
    page.fill("input[name=admin_email]", "admin@fabrikam.example")
    page.fill("input[name=admin_password]", "Tall-Ships-Sail-2026")
    page.select_option("select[name=hosting_plan]", label="Business Premium")
    page.check("label:has-text('Gold') input")
    shot(page, "sign-up")
    page.click("button:has-text('Sign up')")
    page.wait_for_selector("h1:has-text('Fabrikam')")
    assert page.is_visible("text=Fabrikam is signed up")
    org = Customer.objects.organizations().get(name="Fabrikam")
    assert org.parent.name == "Northwind Hosting"
    assert set(Operation.objects.filter(customer=org).values_list("state", flat=True)) == {
        "succeeded"}
    page.click("nav >> text=Hosting spaces")
    shot(page, "hosting-spaces")


def test_an_administrator_creates_a_user_and_sees_it_provisioned(page, panel, shot):
    sign_in(page, panel, "contoso-admin")
    page.wait_for_selector("h1:has-text('Contoso')")
    shot(page, "organization-dashboard")
    page.click("nav >> text=Users")
    shot(page, "users")
    page.click("text=New user")
    page.fill("input[name=display_name]", "Adele Vance")
    page.fill("input[name=given_name]", "Adele")
    page.fill("input[name=surname]", "Vance")
    page.fill("input[name=local_part]", "adele")
    page.select_option("select[name=service_plan]", label="Gold")
    page.fill("input[name=password]", "Adele-Vance-2026!")
    shot(page, "user-create")
    page.click("button:has-text('Create user')")
    page.wait_for_selector("h1:has-text('Adele Vance')")
    assert page.is_visible("text=adele@contoso.example is created")
    assert page.locator("section:has-text('Operations') .badge-ok").count() == 1
    assert not page.is_visible("text=not provisioned yet")
    shot(page, "user-detail")
    for link, name in (("Domains", "domains"), ("Panel accounts", "peers"),
                       ("Events", "events"), ("Operations", "operations"),
                       ("Change log", "changelog")):
        page.click(f".sidebar >> text={link}")
        page.wait_for_selector(f"h1:has-text('{link}')")
        shot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(panel + "/")
    shot(page, "mobile-dashboard")


def test_helpdesk_resets_a_password_but_cannot_create_users(page, panel):
    sign_in(page, panel, "contoso-helpdesk")
    page.click("nav >> text=Users")
    assert page.locator("text=New user").count() == 0
    page.click("text=Megan Bowen")
    page.click("text=Reset password")
    page.fill("input[name=password]", "Megan-New-Pass-2026")
    page.fill("input[name=confirm]", "Megan-New-Pass-2026")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=The new password is being set")
    megan = Customer.objects.get(upn="megan@contoso.example")
    reset = Operation.objects.get(customer=megan, action="reset_password")
    assert (reset.state, reset.requested_by.username) == ("succeeded", "contoso-helpdesk")
    response = page.goto(panel + f"/organizations/{megan.parent_id}/users/new/")
    assert response.status == 403
    assert page.is_visible("h1:has-text('You cannot open this page')")
    assert page.is_visible(".sidebar >> text=Users")


def test_a_csv_with_one_bad_line_provisions_nothing_until_fixed(page, panel, shot, tmp_path):
    header = "display_name,given_name,surname,local_part,domain,service_plan,password\n"
    good = ("Lee Gu,Lee,Gu,lee,contoso.example,Silver,Lee-Gu-Password-1\n"
            "Nestor Wilke,Nestor,Wilke,nestor,contoso.example,Gold,Nestor-Password-2\n")
    bad = "Pradeep Gupta,Pradeep,Gupta,pradeep,elsewhere.example,Gold,Pradeep-Password-3\n"
    fixed = bad.replace("elsewhere.example", "contoso.example")
    before = Customer.objects.count()
    sign_in(page, panel, "contoso-admin")
    page.click("nav >> text=Users")
    page.click("text=Import CSV")
    shot(page, "csv-import")
    (tmp_path / "bad.csv").write_text(header + good + bad)
    page.set_input_files("input[name=csv_file]", str(tmp_path / "bad.csv"))
    page.click("button:has-text('Check and import')")
    page.wait_for_selector("text=nothing was imported")
    row = page.locator("table.error-table tbody tr")
    assert row.count() == 1
    assert "Line 4" in row.inner_text() and "domain" in row.inner_text()
    shot(page, "csv-import-errors")
    assert Customer.objects.count() == before

    (tmp_path / "fixed.csv").write_text(header + good + fixed)
    page.set_input_files("input[name=csv_file]", str(tmp_path / "fixed.csv"))
    page.click("button:has-text('Check and import')")
    page.wait_for_selector("#progress-state:has-text('Done')")
    assert page.inner_text("#progress-text") == "3 of 3 finished"
    assert page.inner_text("#count-succeeded") == "3"
    shot(page, "csv-import-progress")
    assert Customer.objects.count() == before + 3


def test_the_panel_in_german(browser, panel, shot):
    """A browser that asks for German gets the whole panel in German, with German dates."""
    context = browser.new_context(locale="de-DE", viewport={"width": 1360, "height": 860})
    page = context.new_page()
    try:
        page.goto(panel + "/")
        assert page.is_visible("h1:has-text('Anmelden')")
        page.fill("input[name=username]", "contoso-admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Anmelden')")
        page.wait_for_selector("h1:has-text('Contoso')")
        assert page.get_attribute("html", "lang") == "de"
        assert page.is_visible("text=Letzte Ereignisse")
        navigation = page.inner_text(".sidebar")
        for word in ("Übersicht", "Benutzer", "Domains", "Panel-Konten", "Ereignisse",
                     "Vorgänge", "Änderungsprotokoll", "Einstellungen", "Abmelden"):
            assert word in navigation, word
        for word in ("Dashboard", "Users", "Events", "Operations", "Change log",
                     "Panel accounts", "Preferences", "Sign out"):
            assert word not in navigation, word
        shot(page, "german-dashboard")
        page.click(".sidebar >> text=Benutzer")
        page.wait_for_selector("h1:has-text('Benutzer')")
        assert page.is_visible("th:has-text('Anzeigename')")
        page.click("text=Neuer Benutzer")
        page.wait_for_selector("h1:has-text('Neuer Benutzer')")
        assert page.is_visible("label:has-text('Anfangspasswort')")
        assert page.is_visible("button:has-text('Benutzer anlegen')")
        page.click(".sidebar >> text=Vorgänge")
        page.wait_for_selector("h1:has-text('Vorgänge')")
        assert page.is_visible("th:has-text('Versuche')")
        assert page.locator("td:has-text('Erfolgreich')").count() > 0
        # German dates: day.month.year.
        assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", page.inner_text("table"))
    finally:
        context.close()


def test_api_tokens_and_the_api_docs_under_the_content_security_policy(page, panel, shot):
    """A token is made on its page and shown once; the API's docs (Swagger UI from the
    installed package) run under the panel's Content-Security-Policy: no violation, no
    script error."""
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    sign_in(page, panel, "reseller")
    page.click("a:has-text('API tokens')")
    page.fill("input[name=name]", "Billing system")
    page.click("button:has-text('Create token')")
    token = page.locator("code.api-token").inner_text()
    assert token.startswith("ho_")
    shot(page, "api-tokens")
    page.goto(panel + "/api/docs/")
    page.wait_for_selector(".opblock", timeout=20000)
    assert page.locator(".opblock").count() >= 30
    shot(page, "api-docs")
    page.reload()
    assert token not in page.content()
    assert problems == []
