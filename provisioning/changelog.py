"""The change log: every change to these models is recorded by django-auditlog with the
actor (bound per request by its middleware) and the values before and after."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

from servers.models import Server, Service, VirtualServer
from servicplans.models import FeatureType, HostingPlan, PlanFeature, ServicePlan

from .models import Account, Customer, CustomerAsset, HostingSpace

for model in (Customer, CustomerAsset, HostingSpace, Account):
    auditlog.register(model)
for model in (Server, VirtualServer, HostingPlan, ServicePlan, PlanFeature, FeatureType):
    auditlog.register(model)
auditlog.register(Service, exclude_fields=["bind_password", "exchange_password"])
# Panel logins: deactivating or editing one is a change an organization must be able to
# trace. The password hash is a secret, and last_login changes at every sign-in, which would
# bury the real changes.
auditlog.register(get_user_model(), exclude_fields=["password", "last_login"])
