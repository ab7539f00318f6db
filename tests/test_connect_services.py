"""`manage.py connect_services` points the demo's services at real servers from the
environment — the README's development setup included: a WinRM test endpoint over plain
HTTP with Basic authentication, allowed only when EXCHANGE_ALLOW_INSECURE says so."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from servers.models import Service, ServiceKind, WinRMTransport

# The README's "Developing against a real directory and a WinRM endpoint".
README_EXCHANGE = {
    "EXCHANGE_URL": "http://127.0.0.1:5985/wsman",
    "EXCHANGE_USER": "HOSTING\\panel",
    "EXCHANGE_PASSWORD": "Exchange-Pass-1",
    "EXCHANGE_ALLOW_INSECURE": "true",
}
NAMES = ("DIRECTORY_URL", "DIRECTORY_CA_FILE", "DIRECTORY_BASE_DN", "DIRECTORY_BIND_DN",
         "DIRECTORY_BIND_PASSWORD", "EXCHANGE_URL", "EXCHANGE_USER", "EXCHANGE_PASSWORD",
         "EXCHANGE_TRANSPORT", "EXCHANGE_ALLOW_INSECURE")


@pytest.fixture
def environment(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)

    def set_environment(values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_environment


def exchange():
    return Service.objects.get(kind=ServiceKind.EXCHANGE)


def test_the_readme_development_setup_is_accepted(demo, environment):
    environment(README_EXCHANGE)
    out = io.StringIO()
    call_command("connect_services", stdout=out)
    service = exchange()
    assert service.winrm_endpoint == "http://127.0.0.1:5985/wsman"
    assert service.winrm_transport == WinRMTransport.BASIC
    assert service.winrm_allow_insecure is True
    assert service.exchange_username == "HOSTING\\panel"
    assert service.exchange_password == "Exchange-Pass-1"
    assert "http://127.0.0.1:5985/wsman" in out.getvalue()


def test_basic_over_http_without_allow_insecure_is_refused_by_name(demo, environment):
    before = exchange()
    environment({**README_EXCHANGE, "EXCHANGE_ALLOW_INSECURE": ""})
    with pytest.raises(CommandError) as exc:
        call_command("connect_services", stdout=io.StringIO())
    message = str(exc.value)
    assert "EXCHANGE_ALLOW_INSECURE" in message
    assert "HTTPS" in message
    after = exchange()
    assert (after.winrm_endpoint, after.winrm_allow_insecure) == (
        before.winrm_endpoint, before.winrm_allow_insecure)


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", " yes "])
def test_allow_insecure_reads_the_usual_spellings(demo, environment, value):
    environment({**README_EXCHANGE, "EXCHANGE_ALLOW_INSECURE": value})
    call_command("connect_services", stdout=io.StringIO())
    assert exchange().winrm_allow_insecure is True


def test_the_model_names_the_setting_that_would_allow_basic_over_http(demo):
    service = exchange()
    service.winrm_endpoint = "http://exch01.hosting.test:5985/wsman"
    service.winrm_transport = WinRMTransport.BASIC
    service.winrm_allow_insecure = False
    with pytest.raises(ValidationError) as exc:
        service.full_clean()
    assert "allow unencrypted WinRM" in " ".join(exc.value.message_dict["winrm_transport"])
    service.winrm_allow_insecure = True
    service.full_clean()
    # HTTPS needs no exception.
    service.winrm_endpoint = "https://exch01.hosting.test:5986/wsman"
    service.winrm_allow_insecure = False
    service.full_clean()
