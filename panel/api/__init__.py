"""The JSON API under /api/v1/ (Django REST framework): what the browser panel does, for
billing systems and automation, through the same service functions, the same scoping and
the same rules. docs/api.md describes it; /api/schema/ is its OpenAPI 3 schema."""
