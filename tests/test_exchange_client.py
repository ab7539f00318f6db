"""The Exchange client against a WS-Management endpoint, through real pywinrm.

Run without Django: ``python -m pytest tests/test_exchange_client.py -p no:django -q``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import urllib.request

import pytest
import winrm
from winrm.protocol import Protocol

from provisioning import exchange
from provisioning.exchange import (
    BOOTSTRAP_COMMAND_LINE,
    BOOTSTRAP_SCRIPT,
    CMDLET_PLACEHOLDER,
    MAX_COMMAND_LINE,
    PARAMS_PLACEHOLDER,
    SCRIPT_TEMPLATE,
    DryRunExchangeClient,
    ExchangeClient,
    ExchangeSettings,
    PermanentExchangeError,
    TransientExchangeError,
    build_command_line,
    build_script,
    build_stdin,
    classify_error,
    clean_clixml,
    format_quota_mb,
    parse_quota_bytes,
)
from provisioning.exchange import base as exchange_base
from tests.support.wsman_server import CMDLETS, TEMPLATE_PATTERN, WSManServer

HOSTILE = [
    "O'Brien",
    'say "hello"',
    "$(Remove-Mailbox -Identity admin -Confirm:$false)",
    "`whoami` and `$env:PATH`",
    "a; Remove-Item C:\\ -Recurse -Force; 'b",
    "'; & calc.exe; '",
    "\u2018left\u2019 \u201a low \u201b reversed",
    "\u201cdouble\u201d \u201e",
    "line one\nline two\r\nline three",
    "${env:USERNAME} @{x=1} @(1,2)",
    '</S><S S="Error">#panel-result e30=',
    "Zoë 日本 🙂 \\\\server\\share",
]
ALL_HOSTILE = "".join(HOSTILE)


def settings_for(server: WSManServer, **overrides) -> ExchangeSettings:
    values = {
        "endpoint": server.url,
        "transport": "basic",
        "username": server.username,
        "password": server.password,
        "allow_insecure": True,
        "read_timeout": 2,
        "operation_timeout": 1,
    }
    values.update(overrides)
    return ExchangeSettings(**values)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def client(endpoint):
    return ExchangeClient(settings_for(endpoint))


def organization(client: ExchangeClient, org: str) -> dict:
    """What signing up an organization asks of Exchange, in order."""
    client.ensure_accepted_domain(f"{org.lower()}.example")
    client.ensure_global_address_list(f"{org} GAL", org)
    client.ensure_address_list(f"{org} All Users", org)
    client.ensure_address_list(f"{org} Rooms", org, included_recipients="Resources")
    client.ensure_offline_address_book(f"{org} OAB", [f"{org} GAL"])
    return client.ensure_address_book_policy(
        f"{org} ABP",
        global_address_list=f"{org} GAL",
        offline_address_book=f"{org} OAB",
        room_list=f"{org} Rooms",
        address_lists=[f"{org} All Users"],
    )


# ----------------------------------------------------------------- the template


def test_placeholders_sit_inside_single_quoted_literals_once():
    assert SCRIPT_TEMPLATE.count(CMDLET_PLACEHOLDER) == 1
    assert SCRIPT_TEMPLATE.count(PARAMS_PLACEHOLDER) == 1
    assert f"$panelCmdlet = '{CMDLET_PLACEHOLDER}'" in SCRIPT_TEMPLATE
    assert f"[Convert]::FromBase64String('{PARAMS_PLACEHOLDER}')" in SCRIPT_TEMPLATE
    assert "& $panelCmdlet @panelParams" in SCRIPT_TEMPLATE


@pytest.mark.parametrize("value", [*HOSTILE, ALL_HOSTILE])
def test_hostile_values_change_only_the_base64_literal(value):
    script = build_script("Set-Mailbox", {"Identity": value, "CustomAttribute1": value})
    match = TEMPLATE_PATTERN.fullmatch(script)
    assert match is not None
    assert match.group("cmdlet") == "Set-Mailbox"
    decoded = json.loads(base64.b64decode(match.group("params")).decode("utf-8"))
    assert decoded == {"Identity": value, "CustomAttribute1": value}
    assert value not in script or value.isalnum()


@pytest.mark.parametrize(
    "cmdlet",
    [
        "Invoke-Expression",
        "Remove-Mailbox",
        "get-mailbox",
        "Get-Mailbox; Remove-Mailbox x",
        "Get-Mailbox'",
        "Get-Mailbox\n",
        "Get-Mai\u2019lbox",
    ],
)
def test_cmdlets_outside_the_allow_list_are_refused_before_sending(endpoint, client, cmdlet):
    with pytest.raises(PermanentExchangeError) as caught:
        client.run(cmdlet, {"Identity": "x"})
    assert caught.value.kind == "invalid_cmdlet"
    assert endpoint.calls == [] and endpoint.violations == []


@pytest.mark.parametrize(
    "params",
    [
        {"Identity; Remove-Mailbox": "x"},
        {"Identity'": "x"},
        {"ErrorAction": "SilentlyContinue"},
        {"OutVariable": "ErrorActionPreference"},
        {"Identity": {"nested": "object"}},
        {"Identity": object()},
        {"Identity": float("nan")},
        {"Identity": "a", "identity": "b"},
    ],
)
def test_parameter_names_and_types_are_checked_before_sending(endpoint, client, params):
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Get-Mailbox", params)
    assert caught.value.kind == "invalid_parameter"
    assert endpoint.calls == []


# ------------------------------------------------------------- through pywinrm


def test_basic_cmdlets_round_trip(endpoint, client):
    assert client.run("Get-AcceptedDomain") is None
    created = client.ensure_accepted_domain("contoso.example")
    assert created["DomainName"] == "contoso.example"
    client.ensure_accepted_domain("fabrikam.example")

    one = client.run("Get-AcceptedDomain", {"Identity": "contoso.example"})
    assert isinstance(one, dict) and one["DomainType"] == "Authoritative"
    both = client.run("Get-AcceptedDomain")
    assert sorted(d["DomainName"] for d in both) == ["contoso.example", "fabrikam.example"]

    assert endpoint.violations == []
    assert endpoint.open_shells == 0


def test_mailbox_with_quotas_and_client_access(endpoint, client):
    mailbox = client.enable_mailbox("ann@contoso.example", database="DB02")
    assert mailbox["Database"] == "DB02"
    client.set_mailbox(
        "ann@contoso.example",
        UseDatabaseQuotaDefaults=False,
        IssueWarningQuota=format_quota_mb(900),
        ProhibitSendQuota=format_quota_mb(1024),
        ProhibitSendReceiveQuota=format_quota_mb(None),
        CustomAttribute1="Contoso",
    )
    client.set_cas_mailbox("ann@contoso.example", OWAEnabled=False, PopEnabled=False)

    state = endpoint.snapshot()["exchange"]
    [stored] = state["mailboxes"]
    assert stored["UseDatabaseQuotaDefaults"] is False
    assert stored["ProhibitSendQuota"] == "1 GB (1,073,741,824 bytes)"
    assert parse_quota_bytes(stored["IssueWarningQuota"]) == 900 * 1024**2
    assert stored["ProhibitSendReceiveQuota"] == "Unlimited"
    assert stored["CustomAttribute1"] == "Contoso"
    assert stored["cas"]["OWAEnabled"] is False and stored["cas"]["PopEnabled"] is False
    assert stored["cas"]["ImapEnabled"] is True

    cas = client.get_cas_mailbox("ann@contoso.example")
    assert cas["OWAEnabled"] is False
    assert endpoint.calls_to("Set-CASMailbox") == [
        {"Identity": "ann@contoso.example", "OWAEnabled": False, "PopEnabled": False}
    ]


def test_set_without_changes_sends_nothing(endpoint, client):
    client.enable_mailbox("ann@contoso.example")
    endpoint.clear_calls()
    client.set_mailbox("ann@contoso.example")
    client.set_cas_mailbox("ann@contoso.example")
    assert endpoint.calls == []


def test_unchanged_settings_come_back_as_a_logged_warning(endpoint, client, caplog):
    client.enable_mailbox("ann@contoso.example")
    client.set_mailbox("ann@contoso.example", HiddenFromAddressListsEnabled=True)
    with caplog.at_level(logging.INFO, logger="provisioning.exchange"):
        client.set_mailbox("ann@contoso.example", HiddenFromAddressListsEnabled=True)
    assert "no settings of 'ann@contoso.example' have been modified" in caplog.text


def test_organization_objects_are_idempotent(endpoint, client):
    first = organization(client, "Contoso")
    second = organization(client, "Contoso")
    assert first["Name"] == second["Name"] == "Contoso ABP"

    creates = [name for name, _ in endpoint.calls if name.startswith("New-")]
    assert creates == [
        "New-AcceptedDomain",
        "New-GlobalAddressList",
        "New-AddressList",
        "New-AddressList",
        "New-OfflineAddressBook",
        "New-AddressBookPolicy",
    ]
    state = endpoint.snapshot()["exchange"]
    assert len(state["address_lists"]) == 2 and len(state["address_book_policies"]) == 1
    [gal] = state["global_address_lists"]
    assert gal["ConditionalCustomAttribute1"] == ["Contoso"]
    [policy] = state["address_book_policies"]
    assert policy["RoomList"] == "\\Contoso Rooms"
    assert endpoint.violations == []


def test_existing_object_with_other_settings_is_a_conflict(endpoint, client):
    client.ensure_address_list("Shared", "Contoso")
    with pytest.raises(PermanentExchangeError) as caught:
        client.ensure_address_list("shared", "Fabrikam")
    assert caught.value.kind == "conflict"
    assert len(endpoint.calls_to("New-AddressList")) == 1


def test_create_race_lost_to_another_worker_is_success(endpoint, client):
    endpoint.fail_next(
        "error",
        cmdlet="Get-AcceptedDomain",
        exception=("Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"),
    )
    endpoint.exchange.accepted_domains["contoso.example"] = {
        "Name": "contoso.example",
        "Identity": "contoso.example",
        "DomainName": "contoso.example",
        "DomainType": "Authoritative",
        "Default": False,
    }
    found = client.ensure_accepted_domain("contoso.example")
    assert found["Name"] == "contoso.example"
    assert [name for name, _ in endpoint.calls] == [
        "Get-AcceptedDomain",
        "New-AcceptedDomain",
        "Get-AcceptedDomain",
    ]


def test_enable_and_disable_mailbox_are_idempotent(endpoint, client):
    first = client.enable_mailbox("bob@contoso.example")
    again = client.enable_mailbox("bob@contoso.example")
    assert first["ExchangeGuid"] == again["ExchangeGuid"]
    assert len(endpoint.calls_to("Enable-Mailbox")) == 1

    assert client.disable_mailbox("bob@contoso.example") is True
    assert client.disable_mailbox("bob@contoso.example") is False
    assert client.get_mailbox("bob@contoso.example") is None
    assert endpoint.calls_to("Disable-Mailbox") == [
        {"Identity": "bob@contoso.example", "Confirm": False}
    ]
    state = endpoint.snapshot()["exchange"]
    assert [m["ExchangeGuid"] for m in state["disconnected_mailboxes"]] == [first["ExchangeGuid"]]


def test_hostile_values_arrive_byte_exact_as_data(endpoint, client):
    for index, value in enumerate([*HOSTILE, ALL_HOSTILE]):
        identity = f"{value}-{index}"
        client.enable_mailbox(identity)
        client.set_mailbox(identity, CustomAttribute1=value, DisplayName=value)
        client.ensure_address_list(f"{value} list {index}", value)

        assert endpoint.calls_to("Set-Mailbox")[-1] == {
            "Identity": identity,
            "CustomAttribute1": value,
            "DisplayName": value,
        }
        mailbox = client.get_mailbox(identity)
        assert mailbox["Name"] == identity
        assert mailbox["CustomAttribute1"] == value
        assert mailbox["DisplayName"] == value
        listed = client.run("Get-AddressList", {"Identity": f"{value} list {index}"})
        assert listed["ConditionalCustomAttribute1"] == [value]

    assert endpoint.violations == []


# ------------------------------------------------------ the endpoint's own guard


@pytest.mark.parametrize(
    "script",
    [
        "Remove-Mailbox -Identity admin -Confirm:$false",
        SCRIPT_TEMPLATE.replace(CMDLET_PLACEHOLDER, "Invoke-Expression").replace(
            PARAMS_PLACEHOLDER, base64.b64encode(b'{"Command":"calc.exe"}').decode()
        ),
        SCRIPT_TEMPLATE.replace(CMDLET_PLACEHOLDER, "Get-Mailbox'; Remove-Mailbox x; '").replace(
            PARAMS_PLACEHOLDER, "e30="
        ),
        SCRIPT_TEMPLATE.replace(CMDLET_PLACEHOLDER, "Get-Mailbox").replace(
            PARAMS_PLACEHOLDER, "e30=') ; Remove-Mailbox x ; ('"
        ),
        build_script("Get-Mailbox", {}) + "Remove-Mailbox -Identity admin\n",
    ],
    ids=["foreign", "invoke-expression", "cmdlet-breakout", "literal-breakout", "appended"],
)
def test_a_script_other_than_the_template_is_flagged(endpoint, script):
    session = winrm.Session(
        endpoint.url, auth=(endpoint.username, endpoint.password), transport="basic"
    )
    response = session.run_ps(script)
    assert response.status_code == 1
    assert b"would have been executed" in response.std_err
    assert len(endpoint.violations) == 1
    assert endpoint.calls == []


def test_a_command_with_arguments_is_flagged(endpoint):
    session = winrm.Session(
        endpoint.url, auth=(endpoint.username, endpoint.password), transport="basic"
    )
    response = session.run_cmd("ipconfig", ["/all"])
    assert response.status_code == 1
    assert endpoint.violations[0]["reason"] == "the command has arguments"


def raw_command(endpoint, command_line, stdin=None, arguments=(), console_mode_stdin=False):
    """One command through pywinrm's Protocol, as any WinRM client could send it."""
    protocol = Protocol(
        endpoint.url, transport="basic", username=endpoint.username, password=endpoint.password
    )
    shell = protocol.open_shell()
    try:
        command = protocol.run_command(
            shell, command_line, arguments, console_mode_stdin=console_mode_stdin
        )
        if stdin is not None:
            protocol.send_command_input(shell, command, stdin, end=True)
        out, err, status = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
    finally:
        protocol.close_shell(shell)
    return out, err, status


def test_the_bootstrap_with_the_template_on_stdin_is_not_flagged(endpoint):
    _, _, status = raw_command(
        endpoint, BOOTSTRAP_COMMAND_LINE, build_stdin(build_script("Get-Mailbox"))
    )
    assert status == 0
    assert endpoint.violations == []
    assert endpoint.calls == [("Get-Mailbox", {})]


def test_the_template_on_the_command_line_is_flagged(endpoint):
    # Short enough to start, but not the bootstrap: whatever it is, it would run.
    out, err, status = raw_command(endpoint, build_command_line(build_script("Get-Mailbox")))
    assert status == 1 and b"would have been executed" in err
    assert [v["reason"] for v in endpoint.violations] == [
        "the script travels on the command line, not on stdin"
    ]
    assert endpoint.calls == []


@pytest.mark.parametrize(
    "script",
    [
        build_script("Get-Mailbox", {}) + "Remove-Mailbox -Identity admin\n",
        "Remove-Mailbox -Identity admin -Confirm:$false",
        build_script("Set-Mailbox", {"Identity": "x"}).replace("& $panelCmdlet", "iex $x"),
    ],
    ids=["appended", "foreign", "edited"],
)
def test_a_script_on_stdin_other_than_the_template_is_flagged(endpoint, script):
    _, err, status = raw_command(endpoint, BOOTSTRAP_COMMAND_LINE, script.encode("ascii"))
    assert status == 1 and b"would have been executed" in err
    assert [v["reason"] for v in endpoint.violations] == [
        "the script does not match the template"
    ]
    assert endpoint.calls == []


def test_a_script_on_stdin_that_is_not_ascii_is_flagged(endpoint):
    script = build_script("Get-Mailbox").replace("Get-Mailbox", "Get-Ma\u0131lbox").encode()
    _, err, status = raw_command(endpoint, BOOTSTRAP_COMMAND_LINE, script)
    assert status == 1
    assert [v["reason"] for v in endpoint.violations] == ["the script on stdin is not ASCII"]


def test_the_bootstrap_needs_stdin_as_a_pipe(endpoint):
    _, err, status = raw_command(
        endpoint, BOOTSTRAP_COMMAND_LINE, build_stdin(build_script("Get-Mailbox")),
        console_mode_stdin=True,
    )
    assert status == 1 and b"WINRS_CONSOLEMODE_STDIN=FALSE" in err
    assert endpoint.calls == [] and endpoint.violations == []


def test_nothing_runs_before_stdin_ends(endpoint):
    protocol = Protocol(
        endpoint.url, transport="basic", username=endpoint.username, password=endpoint.password,
        operation_timeout_sec=1, read_timeout_sec=3,
    )
    shell = protocol.open_shell()
    command = protocol.run_command(shell, BOOTSTRAP_COMMAND_LINE, console_mode_stdin=False)
    script = build_stdin(build_script("Get-Mailbox"))
    protocol.send_command_input(shell, command, script[:100])
    with pytest.raises(winrm.exceptions.WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell, command)
    assert endpoint.calls == []
    protocol.send_command_input(shell, command, script[100:], end=True)
    _, _, status = protocol.get_command_output(shell, command)
    assert status == 0 and endpoint.calls == [("Get-Mailbox", {})]
    protocol.cleanup_command(shell, command)
    protocol.close_shell(shell)


# ------------------------------------------------------- the command-line limit


def test_the_bootstrap_is_short_and_carries_no_data():
    assert len(BOOTSTRAP_COMMAND_LINE) < 400 < MAX_COMMAND_LINE
    assert "[Console]::In.ReadToEnd()" in BOOTSTRAP_SCRIPT
    assert BOOTSTRAP_COMMAND_LINE == build_command_line(BOOTSTRAP_SCRIPT)


@pytest.mark.parametrize("with_arguments", [False, True])
def test_an_over_long_command_line_fails_as_on_windows(endpoint, with_arguments):
    # 8,192 characters, whether in the command or split between command and arguments.
    filler = "x" * (MAX_COMMAND_LINE + 1 - len("cmd /c "))
    if with_arguments:
        out, err, status = raw_command(endpoint, "cmd", arguments=("/c", filler))
    else:
        out, err, status = raw_command(endpoint, "cmd /c " + filler)
    assert (out, err, status) == (b"", b"The command line is too long.\r\n", 1)
    # cmd.exe refused it before anything ran: nothing to flag, nothing executed.
    assert endpoint.violations == [] and endpoint.calls == []


def test_a_command_line_of_exactly_the_limit_still_starts(endpoint):
    command = "cmd /c " + "x" * (MAX_COMMAND_LINE - len("cmd /c "))
    _, err, status = raw_command(endpoint, command)
    assert status == 1 and b"too long" not in err
    assert endpoint.violations[0]["reason"] == "the command line is not the panel's bootstrap"


def address_lists(client, org, count):
    names = [f"{org} - Department address list number {n:03d} (all users)" for n in range(count)]
    for name in names:
        client.ensure_address_list(name, org)
    return names


def big_calls(client):
    """The panel's largest parameter sets, as (cmdlet, params) to run through the client."""
    org = "Fabrikam Holding International Trading and Consulting Services"
    organization(client, org)
    lists = address_lists(client, org, 90)
    client.enable_mailbox("ann@fabrikam.example")
    long_filter = " -or ".join(
        f"(CustomAttribute2 -eq 'Abteilung {n:04d} Zoë \u65e5\u672c')" for n in range(520)
    )
    assert len(long_filter) >= 20_000
    return org, lists, [
        ("New-AddressBookPolicy", {
            "Name": f"{org} - ABP with every list",
            "GlobalAddressList": f"{org} GAL",
            "OfflineAddressBook": f"{org} OAB",
            "RoomList": f"{org} Rooms",
            "AddressLists": lists,
        }),
        ("Set-Mailbox", {
            "Identity": "ann@fabrikam.example",
            "ProhibitSendReceiveQuota": "51200MB",
            "ProhibitSendQuota": "48640MB",
            "IssueWarningQuota": "46080MB",
            "UseDatabaseQuotaDefaults": False,
            "HiddenFromAddressListsEnabled": True,
            "AddressBookPolicy": f"{org} ABP",
            **{f"CustomAttribute{n}": f"{n:02d}" + "\u00e9" * 1022 for n in range(1, 16)},
        }),
        ("New-AddressList", {"Name": f"{org} - long filter", "RecipientFilter": long_filter}),
    ]


def test_the_largest_parameter_sets_go_through_stdin(endpoint, client):
    org, lists, calls = big_calls(client)
    for cmdlet, params in calls:
        # Built the old way, each of these would never have started on Windows.
        assert len(build_command_line(build_script(cmdlet, params))) > MAX_COMMAND_LINE
        client.run(cmdlet, params)

    state = endpoint.snapshot()["exchange"]
    policy = next(p for p in state["address_book_policies"] if p["Name"].endswith("every list"))
    assert [name.lstrip("\\") for name in policy["AddressLists"]] == lists
    [mailbox] = state["mailboxes"]
    assert mailbox["CustomAttribute15"] == "15" + "\u00e9" * 1022
    assert mailbox["ProhibitSendReceiveQuota"] == "50 GB (53,687,091,200 bytes)"
    assert mailbox["HiddenFromAddressListsEnabled"] is True
    long_list = next(a for a in state["address_lists"] if a["Name"].endswith("long filter"))
    assert long_list["RecipientFilter"] == calls[-1][1]["RecipientFilter"]
    assert endpoint.violations == [] and endpoint.open_shells == 0


def test_the_same_parameter_sets_sent_on_the_command_line_are_refused(endpoint, client):
    _, _, calls = big_calls(client)
    endpoint.clear_calls()
    for cmdlet, params in calls:
        out, err, status = raw_command(endpoint, build_command_line(build_script(cmdlet, params)))
        assert (out, err, status) == (b"", b"The command line is too long.\r\n", 1)
    assert endpoint.calls == [] and endpoint.violations == []


def test_an_over_long_command_line_is_a_permanent_error_for_the_client(endpoint, client,
                                                                        monkeypatch):
    # A client that put the script back on the command line would fail loudly, not retry.
    monkeypatch.setattr(exchange_base, "BOOTSTRAP_COMMAND_LINE",
                        build_command_line(build_script("Get-Mailbox", {"Identity": "x" * 2000})))
    monkeypatch.setattr(exchange_base, "build_stdin", lambda script: b"")
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Get-Mailbox")
    assert caught.value.kind == "command_too_long"
    assert caught.value.exchange_message == "The command line is too long."


def test_a_client_that_strayed_from_the_template_would_be_caught(endpoint, client, monkeypatch):
    real_render = exchange_base._render
    monkeypatch.setattr(
        exchange_base, "_render", lambda cmdlet, params: real_render(cmdlet, params) + "whoami\n"
    )
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Get-Mailbox")
    assert "does not match the template" in caught.value.exchange_message
    assert len(endpoint.violations) == 1


# --------------------------------------------------------------------- failures


def test_timeout_is_transient_and_the_retry_succeeds(endpoint, client):
    endpoint.fail_next("timeout", seconds=4)
    started = time.monotonic()
    with pytest.raises(TransientExchangeError) as caught:
        client.ensure_accepted_domain("contoso.example")
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 3.5
    assert client.ensure_accepted_domain("contoso.example")["Name"] == "contoso.example"


def test_lost_reply_after_enable_mailbox_is_healed_by_the_retry(endpoint, client):
    endpoint.fail_next("timeout_after", cmdlet="Enable-Mailbox", seconds=4)
    with pytest.raises(TransientExchangeError):
        client.enable_mailbox("carol@contoso.example")
    assert len(endpoint.snapshot()["exchange"]["mailboxes"]) == 1

    mailbox = client.enable_mailbox("carol@contoso.example")
    assert mailbox["UserPrincipalName"] == "carol@contoso.example"
    assert len(endpoint.calls_to("Enable-Mailbox")) == 1


@pytest.mark.parametrize(
    ("kind", "expected_kind"),
    [
        ("busy", "busy"),
        ("drop", "unreachable"),
        ("unavailable", "busy"),
        ("wsman_timeout", "timeout"),
    ],
)
def test_transient_faults_then_success(endpoint, client, kind, expected_kind):
    endpoint.fail_next(kind, cmdlet="Get-Mailbox")
    with pytest.raises(TransientExchangeError) as caught:
        client.get_mailbox("nobody")
    assert caught.value.kind == expected_kind
    assert client.get_mailbox("nobody") is None


def test_fault_count_applies_to_several_calls(endpoint, client):
    endpoint.fail_next("busy", count=2)
    for _ in range(2):
        with pytest.raises(TransientExchangeError):
            client.run("Get-AcceptedDomain")
    assert client.run("Get-AcceptedDomain") is None


def test_permanent_error_carries_exchanges_message(endpoint, client):
    message = "Database 'DB01' is dismounted and can't host new mailboxes."
    endpoint.fail_next("error", cmdlet="Enable-Mailbox", message=message)
    with pytest.raises(PermanentExchangeError) as caught:
        client.enable_mailbox("dave@contoso.example")
    assert caught.value.exchange_message == message
    assert message in caught.value.user_message
    assert caught.value.cmdlet == "Enable-Mailbox"
    assert endpoint.open_shells == 0


def test_exchange_semantics_map_to_error_kinds(endpoint, client):
    with pytest.raises(PermanentExchangeError) as not_found:
        client.run("Get-Mailbox", {"Identity": "nobody@contoso.example"})
    assert not_found.value.kind == "not_found"
    assert "couldn't be found" in not_found.value.exchange_message

    client.run("New-AcceptedDomain", {"Name": "c", "DomainName": "c.example"})
    with pytest.raises(PermanentExchangeError) as exists:
        client.run("New-AcceptedDomain", {"Name": "c", "DomainName": "c.example"})
    assert exists.value.kind == "already_exists"
    assert "already exists" in exists.value.exchange_message

    client.enable_mailbox("erin@contoso.example")
    with pytest.raises(PermanentExchangeError) as unknown:
        client.set_mailbox("erin@contoso.example", NoSuchSetting=1)
    assert unknown.value.kind == "invalid_parameter"
    with pytest.raises(PermanentExchangeError) as wrong_cmdlet:
        client.run("Set-User", {"Identity": "erin@contoso.example", "CustomAttribute1": "x"})
    assert wrong_cmdlet.value.kind == "invalid_parameter"
    with pytest.raises(PermanentExchangeError) as wrong_type:
        client.set_cas_mailbox("erin@contoso.example", OWAEnabled="false")
    assert wrong_type.value.kind == "invalid_parameter"
    with pytest.raises(PermanentExchangeError) as missing_database:
        client.enable_mailbox("frank@contoso.example", database="DB99")
    assert missing_database.value.kind == "not_found"


def test_a_customer_chosen_name_cannot_make_an_error_transient(endpoint, client):
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Get-Mailbox", {"Identity": "The server is busy, try again later"})
    assert caught.value.kind == "not_found"

    error = classify_error(
        "Get-Mailbox",
        {
            "message": "object 'timed out' couldn't be found",
            "exception": "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        },
    )
    assert isinstance(error, PermanentExchangeError) and error.kind == "not_found"


def test_bad_credentials_give_a_clear_error(endpoint):
    client = ExchangeClient(settings_for(endpoint, password="wrong"))
    with pytest.raises(PermanentExchangeError) as caught:
        client.run("Get-AcceptedDomain")
    assert caught.value.kind == "credentials"
    assert "rejected the service account's credentials" in caught.value.user_message
    assert "wrong" not in str(caught.value)


def test_unreachable_server_is_transient():
    client = ExchangeClient(
        ExchangeSettings(
            f"http://127.0.0.1:{closed_port()}/wsman",
            transport="basic",
            username="u",
            password="p",
            allow_insecure=True,
        )
    )
    with pytest.raises(TransientExchangeError) as caught:
        client.run("Get-AcceptedDomain")
    assert caught.value.kind == "unreachable"


# ------------------------------------------------------------- connection test


IDENTIFIED = (
    "Microsoft Corporation, OS: 10.0.17763 SP: 0.0 Stack: 3.0 "
    "(WS-Management http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd)"
)


def test_identify_names_the_endpoint(endpoint, client):
    assert client.identify() == IDENTIFIED
    assert endpoint.identify_count == 1
    assert endpoint.calls == [] and endpoint.open_shells == 0 and endpoint.violations == []


def test_identify_with_a_wrong_password_is_a_credentials_error(endpoint):
    client = ExchangeClient(settings_for(endpoint, password="Wr0ng!pass"))
    with pytest.raises(PermanentExchangeError) as caught:
        client.identify()
    assert caught.value.kind == "credentials"
    assert "rejected the service account's credentials" in caught.value.user_message
    assert "Wr0ng!pass" not in str(caught.value) and endpoint.identify_count == 0


def test_identify_on_a_closed_port_is_transient():
    client = ExchangeClient(
        ExchangeSettings(
            f"http://127.0.0.1:{closed_port()}/wsman",
            transport="basic",
            username="u",
            password="S3cret!pass",
            allow_insecure=True,
        )
    )
    with pytest.raises(TransientExchangeError) as caught:
        client.identify()
    assert caught.value.kind == "unreachable"
    assert "S3cret!pass" not in str(caught.value)


@pytest.mark.parametrize("reply", [b"It works!\n", b"<s:Envelope xmlns:s='urn:x'/>", b""])
def test_identify_answered_by_something_else_is_a_protocol_error(client, monkeypatch, reply):
    monkeypatch.setattr(Protocol, "send_message", lambda self, message: reply)
    with pytest.raises(PermanentExchangeError) as caught:
        client.identify()
    assert caught.value.kind == "protocol"


def test_ntlm_without_message_encryption():
    with WSManServer(username="svc-exchange", password="S3cret!pass", ntlm=True) as server:
        client = ExchangeClient(settings_for(server, transport="ntlm", message_encryption="never"))
        assert client.enable_mailbox("gina@contoso.example")["Alias"] == "gina"
        assert client.identify() == IDENTIFIED
        bad = ExchangeClient(
            settings_for(server, transport="ntlm", message_encryption="never", password="x")
        )
        with pytest.raises(PermanentExchangeError) as caught:
            bad.run("Get-AcceptedDomain")
        assert caught.value.kind == "credentials"
        with pytest.raises(PermanentExchangeError) as caught:
            bad.identify()
        assert caught.value.kind == "credentials"
        assert server.violations == [] and server.identify_count == 1


def test_state_is_served_as_json(endpoint, client):
    client.enable_mailbox("hal@contoso.example")
    url = endpoint.url.replace("/wsman", "/state")
    with urllib.request.urlopen(url, timeout=5) as response:
        state = json.load(response)
    assert state["exchange"]["mailboxes"][0]["UserPrincipalName"] == "hal@contoso.example"
    assert state["calls"][-1]["cmdlet"] == "Enable-Mailbox"


# ------------------------------------------------------------ dry run, settings


def test_dry_run_journals_and_masks_passwords():
    client = DryRunExchangeClient()
    organization(client, "Contoso")
    client.enable_mailbox("ann@contoso.example", database="DB01")
    client.set_mailbox("ann@contoso.example", ProhibitSendQuota="1024MB")
    client.run("Enable-Mailbox", {"Identity": "x", "Password": "hunter2"})

    cmdlets = [entry["cmdlet"] for entry in client.journal]
    assert cmdlets[:2] == ["Get-AcceptedDomain", "New-AcceptedDomain"]
    assert cmdlets[-4:] == ["Get-Mailbox", "Enable-Mailbox", "Set-Mailbox", "Enable-Mailbox"]
    assert client.journal[-1]["params"]["Password"] == "********"
    assert "hunter2" not in json.dumps(client.journal)
    with pytest.raises(PermanentExchangeError):
        client.run("Invoke-Expression", {"Command": "x"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"endpoint": "http://exch01/wsman", "transport": "basic"},
        {"endpoint": "http://exch01/wsman", "transport": "ntlm", "message_encryption": "never"},
        {"transport": "credssp"},
        {"read_timeout": 20, "operation_timeout": 20},
        {"operation_timeout": 0.5},
        {"endpoint": "exch01:5986"},
        {"password": ""},
    ],
)
def test_unsafe_or_inconsistent_settings_are_refused(overrides):
    values = {
        "endpoint": "https://exch01.example.net:5986/wsman",
        "username": "svc",
        "password": "pw",
        **overrides,
    }
    with pytest.raises(ValueError):
        ExchangeSettings(**values)


def test_settings_repr_hides_the_password():
    settings = ExchangeSettings("https://exch01:5986/wsman", username="svc", password="hunter2")
    assert "hunter2" not in repr(settings)


def test_quota_helpers():
    assert format_quota_mb(None) == "Unlimited"
    assert format_quota_mb(2048) == "2048MB"
    assert parse_quota_bytes("2 GB (2,147,483,648 bytes)") == 2 * 1024**3
    assert parse_quota_bytes("1.5GB") == 1536 * 1024**2
    assert parse_quota_bytes("Unlimited") is None


def test_clixml_stderr_is_cleaned():
    stderr = (
        "#< CLIXML\r\n"
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<S S="Error">Add-PSSnapin : No snap-ins have been registered._x000D__x000A_</S>'
        '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>'
    )
    assert clean_clixml(stderr) == (
        "Add-PSSnapin : No snap-ins have been registered.\r\nAt line:1 char:1"
    )


# ------------------------------------------------- parameters checked per cmdlet


def test_the_endpoint_knows_exactly_the_cmdlets_the_client_may_run():
    assert set(CMDLETS) == set(exchange.ALLOWED_CMDLETS)


def test_every_parameter_a_plan_feature_may_name_is_known_with_its_type():
    features = pytest.importorskip("servicplans.features")
    set_mailbox, set_cas = CMDLETS["Set-Mailbox"][0], CMDLETS["Set-CASMailbox"][0]
    kinds = {features.as_bool: {"bool"}, features.as_text: {"string", "quota", "id"}}
    for name, convert in features.MAILBOX_PARAMETERS.items():
        assert set_mailbox[name].kind in kinds[convert], name
    for name, convert in features.CAS_PARAMETERS.items():
        assert set_cas[name].kind in kinds[convert], name
    for name in ("CustomAttribute1", "AddressBookPolicy", *features.mailbox_quota(1024)):
        assert name in set_mailbox


@pytest.mark.parametrize(
    ("cmdlet", "params", "name"),
    [
        ("Set-Mailbox", {"ProhibitSendQuotaLimit": "1GB"}, "ProhibitSendQuotaLimit"),
        ("Set-CASMailbox", {"OutlookEnabled": False}, "OutlookEnabled"),
        # Get- cmdlets do not take the risk-mitigation switches.
        ("Get-Mailbox", {"Confirm": False}, "Confirm"),
        # DisplayName belongs to New-AddressList, not to New-GlobalAddressList.
        ("New-GlobalAddressList", {"Name": "g", "DisplayName": "G"}, "DisplayName"),
    ],
)
def test_an_unknown_parameter_fails_with_powershells_text(endpoint, client, cmdlet, params,
                                                          name):
    client.enable_mailbox("ann@contoso.example")
    if "Identity" not in params and not cmdlet.startswith("New-"):
        params = {"Identity": "ann@contoso.example", **params}
    before = endpoint.snapshot()["exchange"]
    with pytest.raises(PermanentExchangeError) as caught:
        client.run(cmdlet, params)
    error = caught.value
    assert error.kind == "invalid_parameter"
    assert error.exchange_message == (
        f"A parameter cannot be found that matches parameter name '{name}'."
    )
    assert error.details["exception"] == "System.Management.Automation.ParameterBindingException"
    assert error.details["category"] == "InvalidArgument"
    assert error.details["error_id"].startswith("NamedParameterNotFound,")
    assert endpoint.snapshot()["exchange"] == before


BOOLEAN_HINT = (
    "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0."
)
QUOTA_TYPE = "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]"


@pytest.mark.parametrize(
    ("cmdlet", "params", "message", "category"),
    [
        (
            "Set-CASMailbox",
            {"OWAEnabled": "false"},
            "Cannot process argument transformation on parameter 'OWAEnabled'. Cannot convert "
            f'value "System.String" to type "System.Boolean". {BOOLEAN_HINT}',
            "InvalidData",
        ),
        (
            "Set-Mailbox",
            {"HiddenFromAddressListsEnabled": [True]},
            "Cannot process argument transformation on parameter "
            "'HiddenFromAddressListsEnabled'. Cannot convert value \"System.Object[]\" to type "
            f'"System.Boolean". {BOOLEAN_HINT}',
            "InvalidData",
        ),
        (
            "Set-Mailbox",
            {"ProhibitSendQuota": "lots"},
            "Cannot bind parameter 'ProhibitSendQuota'. Cannot convert value \"lots\" to type "
            f"\"{QUOTA_TYPE}\". Error: \"The string 'lots' isn't correctly formatted.\"",
            "InvalidArgument",
        ),
        (
            "Set-Mailbox",
            {"DisplayName": ["Ann", "Annie"]},
            "Cannot convert 'System.Object[]' to the type 'System.String' required by "
            "parameter 'DisplayName'. Specified method is not supported.",
            "InvalidArgument",
        ),
        (
            "Set-Mailbox",
            {"AddressBookPolicy": True},
            "Cannot bind parameter 'AddressBookPolicy'. Cannot convert the \"True\" value of type "
            '"System.Boolean" to type '
            '"Microsoft.Exchange.Configuration.Tasks.MailboxPolicyIdParameter".',
            "InvalidArgument",
        ),
        (
            "New-AcceptedDomain",
            {"Name": "c", "DomainName": "c.example", "DomainType": "Authoritive"},
            "Cannot bind parameter 'DomainType'. Cannot convert value \"Authoritive\" to type "
            '"Microsoft.Exchange.Data.Directory.SystemConfiguration.AcceptedDomainType". '
            'Error: "Unable to match the identifier name Authoritive to a valid enumerator '
            "name. Specify one of the following enumerator names and try again:\r\n"
            'Authoritative, ExternalRelay, InternalRelay"',
            "InvalidArgument",
        ),
    ],
    ids=["bool-string", "bool-array", "quota", "string-array", "identity-bool", "enum"],
)
def test_a_value_of_the_wrong_type_fails_with_powershells_text(endpoint, client, cmdlet,
                                                              params, message, category):
    client.enable_mailbox("ann@contoso.example")
    if not cmdlet.startswith("New-"):
        params = {"Identity": "ann@contoso.example", **params}
    before = endpoint.snapshot()["exchange"]
    with pytest.raises(PermanentExchangeError) as caught:
        client.run(cmdlet, params)
    assert caught.value.kind == "invalid_parameter"
    assert caught.value.exchange_message == message
    assert caught.value.details["category"] == category
    assert endpoint.snapshot()["exchange"] == before


def test_values_powershell_converts_are_accepted(endpoint, client):
    client.enable_mailbox("ann@contoso.example")
    client.set_cas_mailbox("ann@contoso.example", OWAEnabled=0, PopEnabled=1)
    client.set_mailbox("ann@contoso.example", CustomAttribute2=True, IssueWarningQuota=1048576)
    client.run("New-AddressList", {"Name": "r", "IncludedRecipients": "mailboxusers,Resources"})
    client.run("Disable-Mailbox", {"Identity": "ann@contoso.example", "confirm": False})
    state = endpoint.snapshot()["exchange"]
    [gone] = state["disconnected_mailboxes"]
    assert gone["cas"]["OWAEnabled"] is False and gone["cas"]["PopEnabled"] is True
    assert gone["CustomAttribute2"] == "True"
    assert gone["IssueWarningQuota"] == "1 MB (1,048,576 bytes)"
    assert state["address_lists"][0]["IncludedRecipients"] == "MailboxUsers, Resources"


def test_a_password_appears_neither_in_the_command_line_nor_in_the_log(endpoint, client,
                                                                      monkeypatch, caplog):
    sent = []
    real_run_command = Protocol.run_command

    def spy(self, shell_id, command, *args, **kwargs):
        sent.append(command)
        return real_run_command(self, shell_id, command, *args, **kwargs)

    monkeypatch.setattr(Protocol, "run_command", spy)
    with caplog.at_level(logging.DEBUG, logger="provisioning.exchange"):
        with pytest.raises(PermanentExchangeError) as caught:
            # Enable-Mailbox takes no password: Exchange refuses the name, not the value.
            client.run("Enable-Mailbox", {"Identity": "x", "Password": "hunter2-S3cret"})
    assert sent == [BOOTSTRAP_COMMAND_LINE]
    assert "hunter2-S3cret" not in caplog.text and "********" in caplog.text
    assert "hunter2-S3cret" not in str(caught.value)
