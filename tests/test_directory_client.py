"""The directory client against a real Samba AD DC (no Django database needed).

Run alone with::

    python -m pytest tests/test_directory_client.py -p no:django -p tests.support.samba_fixtures
"""

from __future__ import annotations

import ssl
import traceback
import uuid
from dataclasses import replace

import ldap3
import pytest

from provisioning.directory import (
    DirectoryClient,
    DirectorySettings,
    DryRunDirectoryClient,
    NoSuchObjectError,
    PermanentDirectoryError,
    TransientDirectoryError,
    fold_sam_account_name,
)

PASSWORD = "Corr3ct-Horse-Battery"
AWKWARD_NAMES = [
    'Smith, Jones + Partners "Ltd" \\ <a> ; b = c #1',
    "# starts with a hash",
    "Star * (parens)",
    "  leading and trailing spaces  ",
    "Zoë Ærøskøbing",
    "名前 ünïcödé",
]


def unique(prefix: str = "Org") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def user_kwargs(tag: str, **overrides: str) -> dict[str, str]:
    values = {
        "sam_account_name": f"u{tag}",
        "upn": f"user.{tag}@{tag}.example",
        "display_name": f"User {tag}",
        "given_name": "User",
        "surname": tag,
        "password": PASSWORD,
    }
    values.update(overrides)
    return values


@pytest.fixture
def client(directory_settings: DirectorySettings):
    with DirectoryClient(directory_settings) as client:
        yield client


@pytest.fixture
def org(client: DirectoryClient) -> str:
    name = unique()
    client.ensure_org_ou(name)
    client.ensure_org_group(name)
    return name


def objects_named(client: DirectoryClient, dn: str) -> list[dict]:
    return [entry for entry in client.list_under_root() if entry["dn"].lower() == dn.lower()]


def ldaps_bind(settings: DirectorySettings, user: str, password: str) -> bool:
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
    server = ldap3.Server(settings.host, settings.port, use_ssl=True, tls=tls,
                          get_info=ldap3.NONE)
    connection = ldap3.Connection(server, user, password)
    try:
        return connection.bind()
    finally:
        connection.unbind()


@pytest.mark.samba
def test_root_and_org_ou_are_idempotent(client: DirectoryClient):
    root = client.ensure_root_ou()
    assert client.ensure_root_ou() == root
    assert str(uuid.UUID(root)) == root  # canonical lowercase form

    name = unique()
    first = client.ensure_org_ou(name)
    assert client.ensure_org_ou(name) == first
    assert len(objects_named(client, client.org_dn(name))) == 1
    entry = client.get_by_guid(first)
    assert entry["kind"] == "ou"
    assert entry["ou"] == name


@pytest.mark.samba
def test_upn_suffix_add_and_remove_are_idempotent(client: DirectoryClient, org: str):
    guid = client.ensure_org_ou(org)
    client.add_upn_suffix(org, "contoso.example")
    client.add_upn_suffix(org, "Contoso.Example")
    client.add_upn_suffix(org, "fabrikam.example")
    assert sorted(client.get_by_guid(guid)["uPNSuffixes"]) == [
        "contoso.example", "fabrikam.example",
    ]
    client.remove_upn_suffix(org, "contoso.example")
    client.remove_upn_suffix(org, "contoso.example")
    assert client.get_by_guid(guid)["uPNSuffixes"] == ["fabrikam.example"]


@pytest.mark.samba
def test_org_group_is_a_universal_security_group(client: DirectoryClient):
    name = unique("Group Org")
    client.ensure_org_ou(name)
    guid = client.ensure_org_group(name)
    assert client.ensure_org_group(name) == guid
    group = client.get_by_guid(guid)
    assert group["kind"] == "group"
    assert group["cn"] == name
    assert group["groupType"] == -2147483640
    assert group["sAMAccountName"] == fold_sam_account_name(name)
    assert len(objects_named(client, client.org_group_dn(name))) == 1


@pytest.mark.samba
def test_group_name_taken_by_a_user_is_refused(client: DirectoryClient):
    name = unique()
    client.ensure_org_ou(name)
    tag = uuid.uuid4().hex[:8]
    with pytest.raises(PermanentDirectoryError, match="organization's own name"):
        client.ensure_user(name, **user_kwargs(tag, cn=name.upper()))
    # Someone else created it with their own tools.
    client._add(client.org_group_dn(name), ["top", "person", "organizationalPerson", "user"],
                {"sAMAccountName": f"u{tag}", "userAccountControl": "514"})
    with pytest.raises(PermanentDirectoryError, match="already used by another object"):
        client.ensure_org_group(name)


@pytest.mark.samba
def test_group_needs_its_organization(client: DirectoryClient):
    with pytest.raises(NoSuchObjectError, match="has not been set up"):
        client.ensure_org_group(unique("Missing"))


@pytest.mark.samba
def test_user_is_created_enabled_in_group_and_can_bind(
    client: DirectoryClient, org: str, directory_settings: DirectorySettings
):
    tag = uuid.uuid4().hex[:8]
    guid = client.ensure_user(org, **user_kwargs(tag))
    user = client.get_by_guid(guid)
    assert user["objectGUID"] == guid
    assert user["kind"] == "user"
    assert user["userAccountControl"] == 512
    assert user["userPrincipalName"] == f"user.{tag}@{tag}.example"
    assert user["sAMAccountName"] == f"u{tag}"
    assert user["displayName"] == f"User {tag}"
    assert user["cn"] == f"User {tag}"
    assert user["memberOf"] == [client.org_group_dn(org)]
    assert client.find_by_upn(f"user.{tag}@{tag}.example")["objectGUID"] == guid
    assert client.find_by_sam(f"u{tag}")["objectGUID"] == guid

    assert ldaps_bind(directory_settings, f"user.{tag}@{tag}.example", PASSWORD)
    assert not ldaps_bind(directory_settings, f"user.{tag}@{tag}.example", "Wr0ng-Password")

    client.set_password(guid, "An0ther-Good-One")
    assert ldaps_bind(directory_settings, user["dn"], "An0ther-Good-One")


@pytest.mark.samba
def test_ensure_user_again_finds_the_same_object(client: DirectoryClient, org: str):
    """A create whose reply was lost: the retry must find the object, not add another."""
    tag = uuid.uuid4().hex[:8]
    first = client.ensure_user(org, **user_kwargs(tag))
    # The retry may come with a freshly generated sAMAccountName: the UPN decides.
    again = client.ensure_user(org, **user_kwargs(tag, sam_account_name=f"u{tag}2"))
    assert again == first
    users = [e for e in client.list_under_root()
             if e["userPrincipalName"] == f"user.{tag}@{tag}.example"]
    assert len(users) == 1
    assert users[0]["sAMAccountName"] == f"u{tag}"


@pytest.mark.samba
def test_half_made_user_is_completed(client: DirectoryClient, org: str,
                                     directory_settings: DirectorySettings):
    """The add went through but the password/enable step did not: a retry finishes it."""
    tag = uuid.uuid4().hex[:8]
    dn = f"CN=Half {tag},{client.org_dn(org)}"
    client._add(dn, ["top", "person", "organizationalPerson", "user"], {
        "sAMAccountName": f"u{tag}", "userPrincipalName": f"user.{tag}@{tag}.example",
        "userAccountControl": "514",
    })
    guid = client.ensure_user(org, **user_kwargs(tag, cn=f"Half {tag}"))
    user = client.get_by_guid(guid)
    assert user["userAccountControl"] == 512
    assert user["memberOf"] == [client.org_group_dn(org)]
    assert user["displayName"] == f"User {tag}"
    assert ldaps_bind(directory_settings, f"user.{tag}@{tag}.example", PASSWORD)


@pytest.mark.samba
def test_duplicate_logon_names_are_refused_clearly(client: DirectoryClient, org: str):
    tag = uuid.uuid4().hex[:8]
    client.ensure_user(org, **user_kwargs(tag))
    other_org = unique()
    client.ensure_org_ou(other_org)
    client.ensure_org_group(other_org)

    with pytest.raises(PermanentDirectoryError) as taken_sam:
        client.ensure_user(other_org, **user_kwargs(tag, upn=f"x.{tag}@{tag}.example"))
    assert taken_sam.value.user_message == f"The logon name 'u{tag}' is already in use."

    with pytest.raises(PermanentDirectoryError) as taken_upn:
        client.ensure_user(other_org, **user_kwargs(tag, sam_account_name=f"x{tag}"))
    assert taken_upn.value.user_message == (
        f"The user name 'user.{tag}@{tag}.example' is already in use."
    )
    # Case does not make a name different in AD.
    with pytest.raises(PermanentDirectoryError, match="already in use"):
        client.ensure_user(other_org, **user_kwargs(
            tag, sam_account_name=f"U{tag.upper()}", upn=f"y.{tag}@{tag}.example"))

    # The same CN in the same OU with another UPN is a different person.
    with pytest.raises(PermanentDirectoryError, match="already exists in organization"):
        client.ensure_user(org, **user_kwargs(
            tag, sam_account_name=f"z{tag}", upn=f"z.{tag}@{tag}.example"))


@pytest.mark.samba
def test_make_sam_account_name(client: DirectoryClient, org: str):
    assert fold_sam_account_name('Zoë "Ærø" [x]/y:z;|=,+*?<>@q.') == "ZoeAEroxyzq"
    assert fold_sam_account_name("...") == "user"
    assert len(fold_sam_account_name("a" * 40)) == 20

    tag = uuid.uuid4().hex[:6]
    base = f"Ærøskøbing{tag}xxxxxxxx"  # folds to more than 20 characters
    first = client.make_sam_account_name(base)
    assert first == f"AEroskobing{tag}xxx"
    client.ensure_user(org, **user_kwargs(tag, sam_account_name=first))
    second = client.make_sam_account_name(base)
    assert second == f"AEroskobing{tag}xx2"
    assert len(second) == 20


@pytest.mark.samba
@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_awkward_names_are_stored_exactly(client: DirectoryClient, name: str):
    org_name = f"{name} {uuid.uuid4().hex[:6]}" if not name.endswith(" ") else (
        f"{uuid.uuid4().hex[:6]} {name}")
    ou_guid = client.ensure_org_ou(org_name)
    assert client.ensure_org_ou(org_name) == ou_guid
    assert client.get_by_guid(ou_guid)["ou"] == org_name
    group_guid = client.ensure_org_group(org_name)
    assert client.get_by_guid(group_guid)["cn"] == org_name

    tag = uuid.uuid4().hex[:8]
    guid = client.ensure_user(org_name, **user_kwargs(
        tag, display_name=name, given_name=name, surname=name, cn=name))
    user = client.get_by_guid(guid)
    assert user["cn"] == name
    assert user["displayName"] == name
    assert user["givenName"] == name
    # Compare DNs as the server writes them: its escaping differs from escape_rdn's.
    assert user["memberOf"] == [client.get_by_guid(group_guid)["dn"]]
    assert client.ensure_user(org_name, **user_kwargs(
        tag, display_name=name, given_name=name, surname=name, cn=name)) == guid
    # A filter value with * ( ) \ must match only itself.
    assert client.find_by_upn("*") is None


@pytest.mark.samba
def test_rename_and_move_outside_keep_the_guid(client: DirectoryClient, org: str,
                                               directory_settings: DirectorySettings):
    tag = uuid.uuid4().hex[:8]
    guid = client.ensure_user(org, **user_kwargs(tag))
    renamed = client.rename(guid, cn="Renamed, Person", upn=f"new.{tag}@{tag}.example",
                            display_name="Renamed Person", given_name="", surname="Person")
    assert renamed["cn"] == "Renamed, Person"
    assert renamed["userPrincipalName"] == f"new.{tag}@{tag}.example"
    assert renamed["givenName"] is None
    assert renamed["sn"] == "Person"

    # Someone moves the user elsewhere with their own tools.
    client.move(guid, f"CN=Users,{directory_settings.base_dn}")
    moved = client.get_by_guid(guid)
    assert moved["dn"].endswith(f",CN=Users,{directory_settings.base_dn}")
    assert moved["cn"] == "Renamed, Person"
    assert ldaps_bind(directory_settings, f"new.{tag}@{tag}.example", PASSWORD)
    client.rename(guid, display_name="Still Found")
    assert client.get_by_guid(guid)["displayName"] == "Still Found"


@pytest.mark.samba
def test_rename_to_a_taken_upn_is_refused(client: DirectoryClient, org: str):
    a, b = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    client.ensure_user(org, **user_kwargs(a))
    guid_b = client.ensure_user(org, **user_kwargs(b))
    with pytest.raises(PermanentDirectoryError, match="already in use"):
        client.rename(guid_b, upn=f"user.{a}@{a}.example")


@pytest.mark.samba
def test_set_enabled_flips_only_the_disable_bit(client: DirectoryClient, org: str):
    tag = uuid.uuid4().hex[:8]
    guid = client.ensure_user(org, **user_kwargs(tag))
    dont_expire = 0x10000
    client._write_uac(f"<GUID={guid}>", 512 | dont_expire)

    client.set_enabled(guid, False)
    assert client.get_by_guid(guid)["userAccountControl"] == 512 | dont_expire | 2
    client.set_enabled(guid, False)
    assert client.get_by_guid(guid)["userAccountControl"] == 512 | dont_expire | 2
    client.set_enabled(guid, True)
    assert client.get_by_guid(guid)["userAccountControl"] == 512 | dont_expire


@pytest.mark.samba
def test_weak_password_is_refused_without_leaking_it(client: DirectoryClient, org: str):
    tag = uuid.uuid4().hex[:8]
    weak = "abc"
    with pytest.raises(PermanentDirectoryError) as refused:
        client.ensure_user(org, **user_kwargs(tag, password=weak))
    assert "password policy" in refused.value.user_message
    text = "".join(traceback.format_exception(refused.value))
    assert f'"{weak}"' not in text and weak.encode("utf-16-le").decode("latin-1") not in text
    # The account exists but stays disabled; a retry with a good password completes it.
    user = client.find_by_upn(f"user.{tag}@{tag}.example")
    assert user["userAccountControl"] & 2
    guid = client.ensure_user(org, **user_kwargs(tag))
    assert client.get_by_guid(guid)["userAccountControl"] == 512


@pytest.mark.samba
def test_properties_attributes_are_written_and_read_back(client: DirectoryClient, org: str):
    guid = client.ensure_user(org, **user_kwargs(uuid.uuid4().hex[:8]))
    client.set_attributes(guid, {"msExchOmaAdminWirelessEnable": 7,
                                 "msExchMailboxFolderSet": 255})
    extra = ["msExchOmaAdminWirelessEnable", "msExchMailboxFolderSet"]
    user = client.get_by_guid(guid, extra)
    assert user["msExchOmaAdminWirelessEnable"] == 7
    assert user["msExchMailboxFolderSet"] == 255
    client.set_attributes(guid, {"msExchOmaAdminWirelessEnable": None})
    assert client.get_by_guid(guid, extra)["msExchOmaAdminWirelessEnable"] is None

    with pytest.raises(PermanentDirectoryError, match="does not know attribute 'msExchNope'"):
        client.set_attributes(guid, {"msExchNope": 1})
    with pytest.raises(PermanentDirectoryError, match="may not write"):
        client.set_attributes(guid, {"unicodePwd": "x"})


@pytest.mark.samba
def test_delete_is_idempotent(client: DirectoryClient, org: str):
    guid = client.ensure_user(org, **user_kwargs(uuid.uuid4().hex[:8]))
    client.delete(guid)
    client.delete(guid)
    assert client.get_by_guid(guid) is None
    assert client.get_by_guid(str(uuid.uuid4())) is None

    org_guid = client.ensure_org_ou(org)
    with pytest.raises(PermanentDirectoryError, match="contains other objects"):
        client.delete(org_guid)
    client.delete(org_guid, recursive=True)
    assert client.get_by_guid(org_guid) is None
    with pytest.raises(PermanentDirectoryError, match="not valid"):
        client.get_by_guid("x>,DC=evil")


@pytest.mark.samba
def test_list_under_root_sees_everything_below_it(client: DirectoryClient, org: str):
    guid = client.ensure_user(org, **user_kwargs(uuid.uuid4().hex[:8]))
    entries = {entry["objectGUID"]: entry for entry in client.list_under_root()}
    assert entries[guid]["kind"] == "user"
    assert entries[client.ensure_org_ou(org)]["kind"] == "ou"
    assert entries[client.ensure_org_group(org)]["kind"] == "group"
    assert client.ensure_root_ou() not in entries


@pytest.mark.samba
def test_outage_is_transient_and_the_client_recovers(samba_dc, client: DirectoryClient,
                                                     org: str):
    tag = uuid.uuid4().hex[:8]
    guid = client.ensure_user(org, **user_kwargs(tag))
    samba_dc.stop()
    try:
        with pytest.raises(TransientDirectoryError) as down:
            client.ensure_user(org, **user_kwargs(f"{tag}b"))
        assert "try again" in down.value.user_message
        with pytest.raises(TransientDirectoryError):
            client.get_by_guid(guid)
    finally:
        samba_dc.start()
    # The same client reconnects, and the directory kept its data.
    assert client.get_by_guid(guid)["objectGUID"] == guid
    other = client.ensure_user(org, **user_kwargs(f"{tag}b"))
    assert client.get_by_guid(other)["userAccountControl"] == 512


@pytest.mark.samba
def test_stale_connection_after_restart_is_replaced(samba_dc, client: DirectoryClient,
                                                    org: str):
    client.ensure_root_ou()  # opens the connection
    samba_dc.restart()
    # No error: the dead connection is noticed and the call sent again.
    assert client.ensure_org_ou(org)


@pytest.mark.samba
def test_unreachable_port_is_transient(directory_settings: DirectorySettings):
    settings = replace(directory_settings, port=1, connect_timeout=1)
    with pytest.raises(TransientDirectoryError), DirectoryClient(settings) as client:
        client.ensure_root_ou()


@pytest.mark.samba
def test_wrong_credentials_are_permanent(directory_settings: DirectorySettings):
    settings = replace(directory_settings, bind_password="Not-The-Passw0rd")
    with pytest.raises(PermanentDirectoryError, match="could not sign in") as failed, \
            DirectoryClient(settings) as client:
        client.ensure_root_ou()
    assert "Not-The-Passw0rd" not in "".join(traceback.format_exception(failed.value))
    assert "Not-The-Passw0rd" not in repr(settings)


@pytest.mark.samba
def test_certificate_is_really_verified(directory_settings: DirectorySettings):
    # Without our CA the system store cannot verify Samba's certificate.
    settings = replace(directory_settings, ca_file=None)
    with pytest.raises(PermanentDirectoryError, match="certificate"), \
            DirectoryClient(settings) as client:
        client.ensure_root_ou()
    # Samba listens on ::1 too, but its certificate does not name that address.
    settings = replace(directory_settings, host="::1")
    with pytest.raises(PermanentDirectoryError, match="certificate"), \
            DirectoryClient(settings) as client:
        client.ensure_root_ou()


@pytest.mark.samba
def test_start_tls_works_and_plain_ldap_is_refused(directory_settings: DirectorySettings):
    start_tls = replace(directory_settings, port=389, use_ssl=False, start_tls=True)
    with DirectoryClient(start_tls) as client:
        assert client.ensure_root_ou()
    plain = replace(directory_settings, port=389, use_ssl=False, start_tls=False)
    with pytest.raises(PermanentDirectoryError, match="encrypted connection"), \
            DirectoryClient(plain) as client:
        client.ensure_root_ou()
    with pytest.raises(PermanentDirectoryError, match="only sent"), \
            DirectoryClient(plain) as client:
        client.set_password(str(uuid.uuid4()), PASSWORD)


@pytest.mark.samba
def test_lookups_by_dn_and_within_org(client: DirectoryClient):
    org = unique("Odd; = Org")
    guid = client.ensure_org_ou(org)
    client.ensure_org_group(org)
    assert client.get_by_dn(client.org_dn(org))["objectGUID"] == guid
    assert client.get_by_dn(client.org_dn(unique())) is None
    tag = uuid.uuid4().hex[:8]
    user = client.ensure_user(org, **user_kwargs(tag))
    upn = f"user.{tag}@{tag}.example"
    assert client.find_in_org(org, upn)["objectGUID"] == user
    assert client.find_in_org(unique(), upn) is None
    # Why DN strings must not be compared: the server escapes differently.
    assert client.org_dn(org).lower() not in client.get_by_guid(user)["dn"].lower()


def test_dry_run_journals_without_network():
    settings = DirectorySettings(host="192.0.2.1", port=1, base_dn="DC=example,DC=test",
                                 bind_dn="CN=x", bind_password="Secret-Bind-1")
    client = DryRunDirectoryClient(settings)
    org = "Contoso, Ltd"
    ou = client.ensure_org_ou(org)
    assert client.ensure_org_ou(org) == ou
    client.add_upn_suffix(org, "contoso.example")
    group = client.ensure_org_group(org)
    guid = client.ensure_user(org, **user_kwargs("dry", display_name="Zoë + Co"))
    assert client.ensure_user(org, **user_kwargs("dry", display_name="Zoë + Co")) == guid
    client.set_enabled(guid, False)
    client.set_attributes(guid, {"msExchOmaAdminWirelessEnable": 1})
    client.rename(guid, cn="Zoë, Renamed")
    client.delete(guid)

    ops = [(entry["op"], entry["dn"]) for entry in client.journal]
    root = "OU=Microsoft Exchange Hosted Organizations,DC=example,DC=test"
    org_dn = f"OU=Contoso\\, Ltd,{root}"
    assert ops[:4] == [
        ("add", root), ("add", org_dn), ("modify", org_dn), ("add", f"CN=Contoso\\, Ltd,{org_dn}"),
    ]
    user_add = client.journal[4]
    assert user_add["dn"] == f"CN=Zoë \\+ Co,{org_dn}"
    assert user_add["attributes"]["userAccountControl"] == "514"
    assert "unicodePwd" not in user_add["attributes"]
    password_op = client.journal[5]
    assert password_op["changes"]["unicodePwd"] == [("replace", ["********"])]
    assert PASSWORD not in repr(client.journal)
    # The second ensure_user re-sends only the (tolerated) group membership.
    assert [op for op, _dn in ops[6:]] == [
        "modify", "modify", "modify", "modify", "modify_dn", "delete",
    ]
    assert client.journal[6] == {"op": "modify", "dn": f"CN=Contoso\\, Ltd,{org_dn}",
                                 "changes": {"member": [("add", [user_add["dn"]])]}}
    # Like AD, every new object gets a fresh random GUID: one deleted and made again under
    # the same name is another object.
    assert uuid.UUID(guid).version == 4
    assert client.ensure_org_group(org) == group
    assert client.ensure_user(org, **user_kwargs("dry", display_name="Zoë + Co")) != guid


def test_the_dry_run_finds_a_name_without_reading_every_entry(monkeypatch):
    """Issue #10: an organization of 100,000 users made every dry-run create read all of
    them. Names are found through an index; what it finds is checked as before."""
    from provisioning import directory

    settings = DirectorySettings(host="192.0.2.1", port=1, base_dn="DC=example,DC=test",
                                 bind_dn="CN=x", bind_password="Secret-Bind-1")
    client = DryRunDirectoryClient(settings)
    org = "Big Org"
    client.ensure_org_ou(org)
    client.ensure_org_group(org)
    org_dn = client.org_dn(org)
    for n in range(5000):
        client.restore(f"CN=User {n},{org_dn}", ["top", "person", "organizationalPerson", "user"],
                       {"userPrincipalName": f"u{n}@big.example", "sAMAccountName": f"u{n}"},
                       str(uuid.uuid4()))
    checked = []
    real = directory._matches
    monkeypatch.setattr(directory, "_matches",
                        lambda f, entry: checked.append(entry) or real(f, entry))
    guid = client.ensure_user(org, **user_kwargs("new.one"))
    assert guid and len(checked) < 20, len(checked)
    # Still exact after the entries change: a renamed user, a changed logon name.
    client.rename(guid, cn="Renamed One")
    upn = "user.new.one@new.one.example"
    assert [e["objectGUID"] for e in client._find(f"(userPrincipalName={upn})")] == [guid]
    client._modify(f"<GUID={guid}>",
                   {"userPrincipalName": [("replace", ["other.one@contoso.example"])]})
    assert client._find(f"(userPrincipalName={upn})") == []
    assert [e["objectGUID"] for e in client._find(
        "(|(userPrincipalName=other.one@contoso.example)(sAMAccountName=nobody))")] == [guid]
