"""The OpenAPI schema's shared parts: the token scheme, and the error answers every
operation can give (panel/api/errors.py), so a client — and schemathesis — finds each
status it can receive documented."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "required": ["detail"],
    "additionalProperties": True,
    "description": "What went wrong; a refused input also lists its errors by field.",
}
QUOTA_ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": ["quota", "suspended", "deleted"]},
        "field": {"type": "string", "nullable": True},
        "quota": {"type": "string"},
        "used": {"type": "integer"},
        "limit": {"type": "integer"},
        "requested": {"type": "integer"},
    },
    "required": ["detail", "code"],
}

ERRORS = {
    "400": "Invalid input: the errors by field.",
    "401": "No valid token or session.",
    "403": "The role does not allow it, or the session owes its second factor.",
    "404": "Not found in the login's scope (another tenant's id included).",
    "409": "A quota is reached, or the organization is suspended or deleted.",
    "422": "The Idempotency-Key was used for a different request.",
    "429": "Too many requests: wait Retry-After seconds.",
}
WRITES = {"post", "put", "patch", "delete"}


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "panel.api.authentication.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "ho_<prefix>_<secret>",
                "description": "An API token of a login (panel: account menu, API tokens)."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "panel.api.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "The panel's session, past its second factor; unsafe "
                               "methods need the CSRF token (X-CSRFToken)."}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR
    components["Conflict"] = QUOTA_ERROR
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", *WRITES}:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                if method not in WRITES and code in ("409", "422"):
                    continue
                schema = "Conflict" if code == "409" else "Error"
                responses.setdefault(code, {
                    "description": description,
                    "content": {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{schema}"}}}})
            if method == "post":
                params = operation.setdefault("parameters", [])
                params.append({"in": "header", "name": "Idempotency-Key", "required": False,
                               "schema": {"type": "string", "maxLength": 255},
                               "description": "Send a retried POST with the same key to get "
                                              "the first answer instead of acting twice."})
    return result
