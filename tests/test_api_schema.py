"""Schemathesis against the API's own OpenAPI schema: generated requests (valid and invalid)
to every operation, as the reseller and as an organization's administrator, must never get
a 500, and every answer must be one the schema documents — its status, content type,
headers and body. Bounded (a few examples per operation) so it runs in CI in about a
minute and a half; API_SCHEMA_EXAMPLES=200 digs deeper."""

import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api import token_of
from tests.support.views import PRIMARY, RESELLER

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
APP = WSGIHandler()


@pytest.fixture
def in_test_transaction():
    """Requests run in-process, inside the test's transaction: Django must not close the
    connection at each request's start and end, as its own test client ensures too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(demo, other_tenant, in_test_transaction, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"login": None}}
    return {RESELLER: token_of(RESELLER), PRIMARY: token_of(PRIMARY)}


@schema.parametrize()
@settings(max_examples=int(os.environ.get("API_SCHEMA_EXAMPLES", 6)), deadline=None,
          derandomize="API_SCHEMA_EXAMPLES" not in os.environ, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_the_api_keeps_its_schema(case, tokens):
    for login in (RESELLER, PRIMARY):
        response = case.call(app=APP, headers={"Authorization": f"Bearer {tokens[login]}"})
        case.validate_response(response, checks=CHECKS)
