
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import translation

from provisioning.directory import DirectoryClient
from provisioning.models import Customer
from servers.models import Service, ServiceKind
from tests.support.provisioning import wait_for_operations
from tests.support.worker import CeleryWorker
from tests.support.wsman_server import WSManServer

pytest_plugins = ["tests.support.samba_fixtures"]


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the panel's default language: a request in German (the test
    client runs it in this thread) leaves German active, and the services' messages follow
    the active language."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def no_work_for_the_suites_worker(request):
    """Only a test that uses a worker sends it work. The session's worker, once started,
    keeps consuming the suite's queue: another test's committed operations would reach it,
    and it would run them against that test's rows while the test's teardown empties the
    tables (a deadlock on TRUNCATE, or rows left over for the next test). Their messages
    go to a queue nobody consumes instead."""
    if request.node.get_closest_marker("worker") or "celery_worker" in request.fixturenames:
        yield
        return
    import redis
    from celery import current_app

    previous = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = stray = f"{previous}-unconsumed"
    yield
    current_app.conf.task_default_queue = previous
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(stray)
    except redis.RedisError:
        pass  # a test that stopped the broker; nothing was left in it then


@pytest.fixture(autouse=True)
def reference_data(request):
    """A transactional test (live_server included) flushes every table, the migrations'
    reference data too; whichever test runs next gets it back."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if "transactional_db" in names or "live_server" in names or (
            marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker:
        request.getfixturevalue("db")
    else:
        return
    from provisioning.models import CustomerType
    from provisioning.reference_data import load_all

    if not CustomerType.objects.exists():
        load_all()


@pytest.fixture
def demo(db):
    """The demo data set: servers, plans, the Northwind reseller and the Contoso organization."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Customer.objects.organizations().get(name="Contoso")


@pytest.fixture
def reseller(demo):
    return demo.parent


@pytest.fixture(scope="session")
def worker_env(django_db_setup):
    return {
        "DJANGO_SETTINGS_MODULE": "panel.test_settings",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{k: connection.settings_dict[k] or "" for k in ("USER", "HOST", "PORT", "NAME")}),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "PROVISIONING_BACKEND": "live",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        # Short enough that a lost worker's task comes back within a test.
        "CELERY_VISIBILITY_TIMEOUT": "8",
        "CELERY_UNACKED_RESTORE_INTERVAL": "2",
        "CELERY_UNACKED_MUTEX_EXPIRE": "5",
        "OPERATION_LEASE_SECONDS": "8",
        "OPERATION_BACKOFF_BASE": "1.6",
        "OPERATION_MAX_ATTEMPTS": "12",
        "EXCHANGE_READ_TIMEOUT": "4",
        "EXCHANGE_OPERATION_TIMEOUT": "2",
    }


@pytest.fixture(scope="session")
def wsman_endpoint():
    """The WS-Management endpoint that stands in for Exchange (there is no Windows here)."""
    server = WSManServer("HOSTING\\panel", "Exchange-Pass-1", databases=["DB01", "DB02"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_session_worker(worker_env):
    worker = CeleryWorker(worker_env).start()
    yield worker
    worker.stop()
    worker.remove_log()


@pytest.fixture
def celery_worker(celery_session_worker):
    """The session's worker, started again if a test killed it."""
    if not celery_session_worker.is_running:
        celery_session_worker.start()
    return celery_session_worker


@pytest.fixture
def live_demo(transactional_db, samba_dc, directory_settings, celery_worker, wsman_endpoint,
              settings):
    """The demo data with its Active Directory service pointed at the suite's Samba DC and
    its Exchange service at the suite's WS-Management endpoint, provisioned by the real
    worker."""
    settings.PROVISIONING_BACKEND = "live"
    seed_live_demo(directory_settings, wsman_endpoint)
    operations = wait_for_operations()
    assert {o.state for o in operations} == {"succeeded"}, [
        (o.action, o.last_error) for o in operations]
    return Customer.objects.organizations().get(name="Contoso")


@pytest.fixture
def own_broker(settings):
    """A redis-server of the test's own as this process's broker (the readiness checks read
    settings.CELERY_BROKER_URL), so a test may stop it without touching the shared Redis."""
    import shutil

    from tests.support.processes import RedisServer

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    settings.CELERY_BROKER_URL = server.url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield server
    server.remove()


# --- The browser panel -------------------------------------------------------------------

PANEL_PASSWORD = "Demo-Panel-2026!"


@pytest.fixture
def endpoint():
    """A WS-Management stand-in for Exchange of the test's own, for the client's tests
    (the live tests share the session's `wsman_endpoint`)."""
    server = WSManServer(username="svc-exchange", password="S3cret!pass")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def eager_dryrun(settings):
    """Operations run in-process on commit, through the dry-run backend."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PROVISIONING_BACKEND = "dryrun"
    return settings


@pytest.fixture
def contoso_peers(demo):
    """One Contoso panel account per peer role (besides the seeded helpdesk)."""
    from provisioning.models import Role
    from tests.support.views import make_peer

    return {role: make_peer(demo, f"contoso-{role.value.replace('_', '-')}", role)
            for role in (Role.PEER_FULL_ADMIN, Role.PEER_USER_MANAGER, Role.PEER_READ_ONLY)}


@pytest.fixture
def other_tenant(demo):
    """A second reseller, Litware, with its organization Fabrikam, a user, a peer and a
    failed operation: the ids another tenant must never reach."""
    from tests.support.views import make_other_tenant

    return make_other_tenant()


@pytest.fixture
def ad(directory_settings):
    """A directory client of the test's own, to check what ended up in Samba."""
    client = DirectoryClient(directory_settings)
    yield client
    client.close()


def seed_live_demo(directory_settings, wsman_endpoint):
    """The demo data, its Active Directory service pointed at the suite's Samba DC and its
    Exchange service at the suite's WS-Management endpoint."""
    # Every test seeds its own Contoso; the directory still holds the one an earlier test
    # made, which belongs to another customer row and would rightly not be adopted.
    with DirectoryClient(directory_settings) as directory:
        earlier = directory.get_by_dn(directory.org_dn("Contoso"))
        if earlier is not None:
            directory.delete(earlier["objectGUID"], recursive=True)
    with transaction.atomic():
        call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
        service = Service.objects.get(kind=ServiceKind.ACTIVE_DIRECTORY)
        service.ldap_host = directory_settings.host
        service.ldap_port = directory_settings.port
        service.use_ssl = True
        service.verify_ca = True
        with open(directory_settings.ca_file) as ca:
            service.ca_certificate = ca.read()
        service.base_dn = directory_settings.base_dn
        service.bind_dn = directory_settings.bind_dn
        service.bind_password = directory_settings.bind_password
        service.save()
        exchange = Service.objects.get(kind=ServiceKind.EXCHANGE)
        exchange.winrm_endpoint = wsman_endpoint.url
        exchange.winrm_transport = "basic"
        exchange.winrm_allow_insecure = True
        exchange.exchange_username = "HOSTING\\panel"
        exchange.exchange_password = "Exchange-Pass-1"
        exchange.save()
