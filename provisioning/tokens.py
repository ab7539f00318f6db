"""API tokens: each login makes, lists and revokes its own; provider staff may make one for
another login (a reseller's billing system, say). A token acts as its login — the same
scope, role and suspended-organization rules — and is its login's second factor's
equivalent: an API request with a token is not asked for a TOTP code.

A token is `ho_<prefix>_<secret>`: the prefix (8 hex digits) is stored and shown, to find
and recognise the token; of the whole token only its SHA-256 digest is kept. The secret has
256 random bits, so a fast hash is enough (there is nothing to guess), and the token itself
exists in clear only in the return value of `create` — the page or answer that shows it
once. Creating and revoking a token is in the change log (provisioning.changelog)."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import names, scoping
from .models import ApiToken
from .names import clean_field

PREFIX = "ho_"
# A token's last use is written at most this often, not at every request.
LAST_USED_EVERY = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=3650)


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def _may_manage(owner, actor):
    if owner.pk == getattr(actor, "pk", None):
        return scoping.can(actor, "token.manage")
    return bool(getattr(actor, "is_active", False) and actor.is_staff)


def check(owner, *, name, expires=None, made_with=None):
    """The checks of `create`: a ValidationError by field (name, expires, user). A token
    made with another token (rotation) lives no longer than the one that made it, so a
    leaked expiring token cannot make a permanent one."""
    errors = {}
    name = clean_field(errors, "name", names.TOKEN_NAME, name)
    now = timezone.now()
    if expires is not None and expires <= now:
        errors["expires"] = _("The expiry must be in the future.")
    elif expires is not None and expires > now + MAX_LIFETIME:
        errors["expires"] = _("A token can live at most ten years.")
    elif made_with is not None and made_with.expires is not None and (
            expires is None or expires > made_with.expires):
        errors["expires"] = _("A token made with an expiring token must expire no later "
                              "than it does (%(expires)s UTC).") % {
            "expires": f"{made_with.expires:%Y-%m-%d %H:%M}"}
    if owner is None or not owner.is_active:
        errors["user"] = _("Choose an active login.")
    if errors:
        raise ValidationError(errors)
    return name


@transaction.atomic
def create(owner, *, name, expires=None, actor, made_with=None):
    """A new token of `owner`; returns (ApiToken, the token in clear — shown once).
    `made_with` is the token the request came with, if any."""
    if not _may_manage(owner, actor):
        raise PermissionDenied(_("Only the login itself, or provider staff, can make its "
                                 "API tokens."))
    name = check(owner, name=name, expires=expires, made_with=made_with)
    while True:
        prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        token = f"{PREFIX}{prefix}_{secret}"
        try:
            with transaction.atomic():
                record = ApiToken.objects.create(
                    user=owner, name=name, prefix=prefix, digest=digest(token),
                    expires=expires, created_by=actor if getattr(actor, "pk", None) else None)
        except IntegrityError:  # the one-in-four-billion prefix that is taken: draw again
            continue
        return record, token


@transaction.atomic
def revoke(token, *, actor):
    """Revoke a token for good (it stays listed, marked revoked)."""
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if not _may_manage(token.user, actor):
        raise PermissionDenied(_("Only the login itself, or provider staff, can revoke its "
                                 "API tokens."))
    if token.revoked is None:
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
    return token


def tokens_of(user):
    return ApiToken.objects.filter(user=user)


def authenticate(token):
    """The usable ApiToken that `token` is, with its login, or None."""
    if not token.startswith(PREFIX):
        return None
    prefix, _, secret = token[len(PREFIX):].partition("_")
    if len(prefix) != 8 or not secret or not set(prefix) <= set("0123456789abcdef"):
        return None
    record = ApiToken.objects.usable().select_related("user").filter(prefix=prefix).first()
    if record is None or not hmac.compare_digest(record.digest, digest(token)):
        return None
    now = timezone.now()
    if record.last_used is None or record.last_used < now - LAST_USED_EVERY:
        # Not through save(): a use is not a change for the change log.
        ApiToken.objects.filter(pk=record.pk).update(last_used=now)
        record.last_used = now
    return record
