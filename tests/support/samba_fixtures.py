"""pytest plugin: a Samba AD DC for the whole session.

Register with ``pytest_plugins = ["tests.support.samba_fixtures"]`` (or
``-p tests.support.samba_fixtures``) and mark tests that use it with
``@pytest.mark.samba``.

Provisioning takes about 10 s, so one DC serves the session; tests keep apart by
using organization names of their own. Set ``SAMBA_DC_DIR`` to keep the DC in a
folder that later runs reuse (start-up then takes about a second).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from provisioning.directory import DirectorySettings
from tests.support.samba import SambaDC


@pytest.fixture(scope="session")
def samba_dc() -> Iterator[SambaDC]:
    dc = SambaDC(os.environ.get("SAMBA_DC_DIR") or None)
    dc.start()
    try:
        yield dc
    finally:
        dc.destroy()


@pytest.fixture
def directory_settings(samba_dc: SambaDC) -> DirectorySettings:
    # A test that stopped the DC to simulate an outage must not leave it down
    # for the next one.
    if not samba_dc.is_running:
        samba_dc.start()
    return DirectorySettings(
        host=samba_dc.host,
        port=samba_dc.ldaps_port,
        use_ssl=True,
        verify_ca=True,
        ca_file=samba_dc.ca_file,
        base_dn=samba_dc.base_dn,
        bind_dn=samba_dc.admin_dn,
        bind_password=samba_dc.admin_password,
    )
