"""How the API says no, from the same exceptions the panel turns into form errors:

- a service's ValidationError: 400 with the errors by field (`non_field_errors` for the
  rest), or 409 when it is a state the request cannot change — a quota reached
  (`code: "quota"`, with the quota's name, `used`, `limit` and `requested`), a suspended or
  deleted organization (`code: "suspended"` / `"deleted"`);
- PermissionDenied (the role, scoping.require): 403; Http404 (scoping): 404; and
  REST framework's own (401, 405, 415, 429 with Retry-After, ...).

Every error body has `detail`; `code` names the kind when there is one."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

CONFLICTS = ("quota", "suspended", "deleted")


def _errors(exc):
    """(field, error) pairs of a ValidationError, field None for the non-field ones."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                yield (None if field == NON_FIELD_ERRORS else field), error
    else:
        for error in exc.error_list:
            yield None, error


def _message(error):
    return next(iter(error))


def service_error(exc):
    errors = list(_errors(exc))
    for field, error in errors:
        if error.code in CONFLICTS:
            body = {"detail": _message(error), "code": error.code}
            if error.code == "quota":
                body.update(field=field, **{k: v for k, v in (error.params or {}).items()
                                            if k in ("quota", "used", "limit", "requested")})
            return Response(body, status=status.HTTP_409_CONFLICT)
    body = {}
    for field, error in errors:
        body.setdefault(field or api_settings.NON_FIELD_ERRORS_KEY, []).append(_message(error))
    first = next(iter(body.values()))[0]
    return Response({"detail": first, "code": "invalid", **body},
                    status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        return service_error(exc)
    response = drf_exception_handler(exc, context)
    if isinstance(exc, Http404):  # never which model was looked for
        response.data = {"detail": "Not found.", "code": "not_found"}
        return response
    if response is not None and isinstance(response.data, dict):
        if "detail" in response.data:
            code = getattr(response.data["detail"], "code", None)
            if code:
                response.data["code"] = code
        else:  # a serializer's errors by field
            first = next(iter(response.data.values()), [""])
            first = first[0] if isinstance(first, list) and first else first
            response.data = {"detail": str(first) if not isinstance(first, dict) else
                             "Invalid input.", "code": "invalid", **response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": str(response.data[0]) if response.data else "Invalid.",
                         "code": "invalid", api_settings.NON_FIELD_ERRORS_KEY: response.data}
    return response
