"""django.request logs a refused page (403) as a warning with the PermissionDenied
traceback. A refusal is expected — a role without the permission — so it is logged on one
line: `403 Forbidden: <path> (<user>)`."""

import logging


class ForbiddenOnOneLine(logging.Filter):
    def filter(self, record):
        if getattr(record, "status_code", None) == 403:
            request = getattr(record, "request", None)
            # A path may carry encoded control characters: one line stays one line.
            path = str(getattr(request, "path", "?")).encode("unicode_escape").decode("ascii")
            user = getattr(request, "user", None)
            who = user.get_username() if getattr(user, "is_authenticated", False) else (
                "anonymous")
            record.msg, record.args = "403 Forbidden: %s (%s)", (path, who)
            record.exc_info = record.exc_text = record.stack_info = None
        return True
