import pytest
from django.core.management import call_command

from provisioning.models import Customer


@pytest.fixture
def demo(db):
    """The demo data set: servers, plans, the Northwind reseller and the Contoso organization."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Customer.objects.organizations().get(name="Contoso")


@pytest.fixture
def reseller(demo):
    return demo.parent
