"""The panel's error pages. 403 and 404 are shown in the panel's layout, with the signed-in
account's navigation when it has one, or on the sign-in card when not; 500 needs neither the
database nor the request's user (either may be what failed)."""

import logging

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _

from provisioning import scoping

from .base import Permissions

log = logging.getLogger(__name__)


def _layout(request):
    """The context of the page's layout: the panel's shell for an account, else the card."""
    user = getattr(request, "user", None)
    try:
        account = scoping.account_of(user) if user is not None else None
        if account is None:
            return {"layout": "auth_base.html"}
        return {"layout": "base.html", "account": account, "can": Permissions(user),
                "home_organization": scoping.home_organization(user)}
    except Exception as exc:  # noqa: BLE001 - an error page must render whatever failed
        log.warning("error page without the account's navigation (%s)",
                    exc.__class__.__name__)
        return {"layout": "auth_base.html"}


def permission_denied(request, exception=None):
    message = str(exception) if exception is not None else ""
    return render(request, "403.html", {**_layout(request), "title": _("Not allowed"),
                                        "message": message}, status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", {**_layout(request), "title": _("Page not found")},
                  status=404)


def server_error(request):
    return HttpResponseServerError(loader.get_template("500.html").render())
