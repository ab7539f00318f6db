"""The billing feed as CSV (?format=csv): the panel's export columns, with each event's
cursor first; the next poll's cursor is in the X-Next-Cursor header."""

import csv
import io

from rest_framework.renderers import BaseRenderer

from panel.views.reseller import _csv_safe

COLUMNS = ["cursor", "id", "occurred_at", "event_type", "customer_id", "customer",
           "customer_type", "upn", "actor", "data"]


class EventCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out)
        if not isinstance(data, dict) or "results" not in data:
            writer.writerow(["detail"])
            writer.writerow([_csv_safe((data or {}).get("detail", "") if isinstance(data, dict)
                                       else data)])
            return out.getvalue().encode()
        writer.writerow(COLUMNS)
        for event in data["results"]:
            customer = event["customer"]
            writer.writerow([_csv_safe(v) for v in (
                event["cursor"], event["id"], event["occurred_at"], event["event_type"],
                customer["id"], customer["name"], customer["type"], customer["upn"],
                event["actor"] or "",
                "; ".join(f"{k}={v}" for k, v in event["data"].items()))])
        return out.getvalue().encode()
