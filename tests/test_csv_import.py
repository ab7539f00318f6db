"""Bulk import of users from CSV: every line is checked before anything is provisioned,
errors name the line and the field, and a good file provisions every user with a progress
page that polls the operations' states."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from provisioning.models import Customer, Event, Operation

HEADER = "display_name,given_name,surname,local_part,domain,service_plan,password\n"
GOOD = (HEADER
        + "Adele Vance,Adele,Vance,adele,contoso.example,Gold,Strong-Password-101\n"
        + "Lee Gu,Lee,Gu,lee,contoso.example,Silver,Strong-Password-102\n"
        + "Nestor Wilke,Nestor,Wilke,nestor,contoso.example,,Strong-Password-103\n")


@pytest.fixture
def admin_client(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-admin"))
    return client


def upload(client, org, text):
    return client.post(reverse("user_import", args=[org.pk]), {
        "csv_file": SimpleUploadedFile("users.csv", text.encode(), "text/csv")})


def counts():
    return Customer.objects.count(), Event.objects.count(), Operation.objects.count()


def test_a_good_file_creates_every_user_and_reports_progress(admin_client, demo):
    response = upload(admin_client, demo, GOOD)
    assert response.status_code == 302
    upns = {"adele@contoso.example", "lee@contoso.example", "nestor@contoso.example"}
    assert set(Customer.objects.filter(upn__in=upns).values_list("upn", flat=True)) == upns
    progress = admin_client.get(response.url)
    assert b"Importing 3 users" in progress.content
    status = json.loads(admin_client.get(response.url + "status.json").content)
    assert status["total"] == 3 and status["states"]["queued"] == 3 and not status["done"]


def test_the_import_finishes_when_the_operations_run(admin_client, demo, eager_dryrun,
                                                     django_capture_on_commit_callbacks):
    from provisioning import journal

    with django_capture_on_commit_callbacks(execute=True):
        for operation in Operation.objects.filter(scope=demo):
            journal.execute(operation.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, demo, GOOD)
    status = json.loads(admin_client.get(response.url + "status.json").content)
    assert status == {**status, "total": 3, "finished": 3, "done": True, "percent": 100}
    assert status["states"]["succeeded"] == 3


@pytest.mark.parametrize("bad_line,field,message", [
    ("Bad Domain,,,bad,fabrikam.example,Gold,Strong-Password-104", "domain", "valid choice"),
    ("Weak,,,weak,contoso.example,Gold,short", "password", "too short"),
    ("Unknown Plan,,,plan,contoso.example,Platinum,Strong-Password-104", "service_plan",
     "valid choice"),
    ("Twin,,,adele,contoso.example,Gold,Strong-Password-104", "local_part", "already in use"),
    (",,,nameless,contoso.example,Gold,Strong-Password-104", "display_name", "required"),
])
def test_one_bad_line_is_named_and_nothing_is_created(admin_client, demo, bad_line, field,
                                                      message):
    before = counts()
    response = upload(admin_client, demo, GOOD + bad_line + "\n")
    assert response.status_code == 200
    errors = response.context["form"].line_errors
    assert [(e.line, e.field) for e in errors] == [(5, field)], errors
    assert message in errors[0].message
    assert b"nothing was imported" in response.content
    assert counts() == before


def test_every_bad_line_is_listed_at_once(admin_client, demo):
    text = (HEADER + "A,,,a,nowhere.example,,Strong-Password-101\n"
            + "B,,,b,contoso.example,,short\n")
    errors = upload(admin_client, demo, text).context["form"].line_errors
    assert [(e.line, e.field) for e in errors] == [(2, "domain"), (3, "password")]


def test_the_quota_judges_the_whole_file(admin_client, demo):
    rows = "".join(f"User {n},,,user{n},contoso.example,,Strong-Password-{n:03d}\n"
                   for n in range(24))  # 3 demo users + 24 > the 25 of Business Basic
    before = counts()
    errors = upload(admin_client, demo, HEADER + rows).context["form"].line_errors
    assert [e.line for e in errors] == [24, 25] and "quota" in errors[0].message
    assert counts() == before


def test_a_file_without_the_columns_is_refused(admin_client, demo):
    response = upload(admin_client, demo, "name,email\nA,a@contoso.example\n")
    assert "missing: display_name, domain, local_part, password" in str(
        response.context["form"].errors["csv_file"])


def test_the_progress_of_another_session_is_not_found(admin_client, demo, client):
    response = upload(admin_client, demo, GOOD)
    other = client.__class__()
    other.force_login(get_user_model().objects.get(username="reseller"))
    assert other.get(response.url + "status.json").status_code == 404


def test_helpdesk_cannot_import(client, demo):
    client.force_login(get_user_model().objects.get(username="contoso-helpdesk"))
    assert upload(client, demo, GOOD).status_code == 403


def test_a_field_longer_than_the_csv_reader_takes_is_a_form_error(admin_client, demo):
    # Python's csv module stops at 131,072 characters a field; no name or password is that
    # long, so the file is refused as a whole with a clear message, not a server error.
    before = counts()
    text = HEADER + "Long,,,long,contoso.example,," + "x" * 131_073 + "\n"
    response = upload(admin_client, demo, text)
    assert response.status_code == 200
    message = " ".join(response.context["form"].errors["csv_file"])
    assert "line 2" in message and "longer than" in message, message
    assert counts() == before
