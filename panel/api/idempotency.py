"""Idempotency-Key: a POST sent again with the same key (by the same token, or the same login
over a session) gets the first answer again instead of acting twice.

The key's row is inserted in the transaction that runs the request, so of two requests with
one key sent at once the second waits on the first's uncommitted row (the unique
constraint) and then answers the first's response. Only a successful (2xx) answer is kept:
a refused request changed nothing and may be sent again with the same key once fixed. A
request under a known key with a different method, path or body (its fingerprint) is
refused with 422. Keys are forgotten after IDEMPOTENCY_KEY_HOURS."""

import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class KeyReused(APIException):
    status_code = 422
    default_detail = ("This Idempotency-Key was used for a different request. Use a new key "
                      "for a new request.")
    default_code = "idempotency_key_reused"


class BadKey(APIException):
    status_code = 400
    default_detail = f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters."
    default_code = "invalid_idempotency_key"


def owner_of(request):
    token = request.auth
    if token is not None and hasattr(token, "prefix"):
        return f"token:{token.pk}"
    return f"user:{request.user.pk}"


def fingerprint(request):
    """Keyed by SECRET_KEY (HMAC-SHA256): a body may hold a password, and a plain hash of it
    could be guessed at from a copy of the database."""
    body = json.dumps(request.data, sort_keys=True, default=str)
    return salted_hmac("panel.api.idempotency", f"{request.method} {request.path}\n{body}",
                       algorithm="sha256").hexdigest()


def key_of(request):
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise BadKey()
    return key


def replay(record):
    response = Response(record.body, status=record.status)
    if record.location:
        response["Location"] = record.location
    response["Idempotent-Replayed"] = "true"
    return response


def run(request, key, handle):
    """Answer `request` by `handle()` once per key. An exception `handle` raises rolls the
    key back with the request's own work."""
    owner, print_ = owner_of(request), fingerprint(request)
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    # Every caller's expired keys, with their stored answers, not only this caller's.
    IdempotentRequest.objects.filter(created__lt=cutoff).delete()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(owner=owner, key=key,
                                                          fingerprint=print_, status=0)
        except IntegrityError:
            record = None
        if record is None:
            # Another request with this key has committed (we waited for it above).
            record = IdempotentRequest.objects.get(owner=owner, key=key)
            if record.fingerprint != print_:
                raise KeyReused()
            return replay(record)
        response = handle()
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)  # nothing was done: the key stays free
            return response
        record.status = response.status_code
        record.body = json.loads(JSONRenderer().render(response.data) or b"null")
        record.location = response.get("Location", "")
        record.save(update_fields=["status", "body", "location"])
        return response
