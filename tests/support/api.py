"""Helpers for the API's tests: a client per login, signed in with a token of its own."""

from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from provisioning import tokens


def token_of(username, name="test"):
    user = get_user_model().objects.get(username=username)
    return tokens.create(user, name=name, actor=user)[1]


def api_client(username=None, token=None):
    client = APIClient()
    if username is not None or token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token or token_of(username)}")
    return client


def api_endpoints(resolver=None, namespace=""):
    """(method, route name, whether its URL has a {pk}) of every API endpoint, read from the
    resolver and the views, so a new endpoint is covered without editing a list."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from api_endpoints(entry, entry.namespace or namespace)
        elif isinstance(entry, URLPattern) and namespace == "api" and entry.name:
            view = entry.callback
            methods = getattr(view, "actions", None) or [
                m for m in view.view_class.http_method_names if hasattr(view.view_class, m)]
            for method in methods:
                if method not in ("head", "options"):
                    yield method, entry.name, "pk" in entry.pattern.regex.groupindex
