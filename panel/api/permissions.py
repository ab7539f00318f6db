"""The API's access rule is the panel's: a login with a panel account, whose role allows the
action (provisioning.scoping.PERMISSIONS), on objects in its scope. Views name the
permission of each action (`ApiView.permissions`) and check it after resolving the objects
of the URL, so a foreign id answers 404 whatever the role, as in the panel."""

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from provisioning import scoping


class HasPanelAccount(BasePermission):
    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if scoping.account_of(request.user) is None:
            raise PermissionDenied("This login has no panel account.")
        return True
