"""The change log: every change to these models is recorded by django-auditlog with the
actor (bound per request by its middleware) and the values before and after."""

from auditlog.registry import auditlog

from servers.models import Server, Service, VirtualServer
from servicplans.models import FeatureType, HostingPlan, PlanFeature, ServicePlan

from .models import Account, Customer, CustomerAsset, HostingSpace

for model in (Customer, CustomerAsset, HostingSpace, Account):
    auditlog.register(model)
for model in (Server, VirtualServer, HostingPlan, ServicePlan, PlanFeature, FeatureType):
    auditlog.register(model)
auditlog.register(Service, exclude_fields=["bind_password", "exchange_password"])
