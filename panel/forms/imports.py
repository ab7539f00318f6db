"""Bulk import of users from CSV. Every line is checked before anything is provisioned: first
each line's fields (the same form as the single-user page), then the whole file through
`services.create_user` in one transaction, so the services' own rules (unique logon names,
quotas) judge the file as a whole. Any bad line rolls everything back; provisioning starts
only when that transaction commits."""

import csv
import io
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from provisioning import services
from provisioning.models import Operation

from .users import UserCreateForm

COLUMNS = ["display_name", "given_name", "surname", "local_part", "domain", "service_plan",
           "password"]
REQUIRED_COLUMNS = {"display_name", "local_part", "domain", "password"}
MAX_ROWS = 2000
MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


class ImportRowForm(UserCreateForm):
    """One CSV line: the plan is named, not picked by id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service_plan"].to_field_name = "name"


class CountedLines:
    """The file's lines as the csv reader asks for them, counted: the line the reader was
    reading when it failed (its own line_num is not always advanced by then)."""

    def __init__(self, lines):
        self.lines = lines
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self):
        line = next(self.lines)
        self.count += 1
        return line


class _Rollback(Exception):
    pass


class UserImportForm(forms.Form):
    csv_file = forms.FileField(label=_("CSV file"), help_text=format_lazy(
        _("UTF-8, at most {max_rows} users."), max_rows=MAX_ROWS))

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.line_errors = []
        self.rows = []

    def clean_csv_file(self):
        upload = self.cleaned_data["csv_file"]
        if upload.size > MAX_BYTES:
            raise ValidationError("The file is larger than 2 MB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text.") from None
        lines = CountedLines(io.StringIO(text))
        try:
            self._read(csv.DictReader(lines))
        except csv.Error as exc:
            # The csv module stops at a field longer than csv.field_size_limit() (131,072
            # characters), far above any name's or password's limit.
            line = lines.count
            if "field larger than field limit" in str(exc):
                raise ValidationError(
                    f"The file cannot be read: line {line} has a value longer than "
                    f"{csv.field_size_limit():,} characters, far more than any column "
                    "takes.", code="csv_field_too_long") from None
            raise ValidationError(f"The file cannot be read as CSV (line {line}): {exc}.",
                                  code="csv_invalid") from None
        if not self.rows:
            raise ValidationError("The file has no users.")
        return upload

    def _read(self, reader):
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = REQUIRED_COLUMNS - set(header)
        if missing:
            raise ValidationError("The first line must name the columns; missing: "
                                  + ", ".join(sorted(missing)) + ".")
        reader.fieldnames = header
        for row in reader:
            if len(self.rows) >= MAX_ROWS:
                raise ValidationError(f"The file has more than {MAX_ROWS} users.")
            # Stripped as the names' rules (provisioning.names) strip them; a password is
            # taken as typed.
            data = {k: (v or "").strip() if k != "password" else (v or "")
                    for k, v in row.items() if k in COLUMNS}
            if any(data.values()):
                self.rows.append((reader.line_num, data))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.forms = []
        for line, row in self.rows:
            form = ImportRowForm(data=row, organization=self.organization)
            if form.is_valid():
                self.forms.append((line, form))
            else:
                self._record(line, form.errors)
        if self.line_errors:
            # Let the services judge the other lines too, so every mistake is listed at once.
            self._try_create(actor=None)
            self.line_errors.sort(key=lambda e: e.line)
            raise ValidationError("Nothing was imported: correct the lines below and upload "
                                  "the file again.")
        return data

    def _record(self, line, errors):
        for field, messages in errors.items():
            for message in messages:
                self.line_errors.append(LineError(line, "line" if field == "__all__" else field,
                                                  message))

    def save(self, actor):
        """Create every user in one transaction; returns the provisioning operations' ids, or
        raises ValidationError (with `line_errors` filled) having created nothing."""
        operation_ids = self._try_create(actor)
        if self.line_errors:
            raise ValidationError("Nothing was imported: correct the lines below and upload "
                                  "the file again.")
        return operation_ids

    def _try_create(self, actor):
        """Call the service for each line in one transaction, rolled back if any line fails;
        its on_commit provisioning is then never sent."""
        try:
            with transaction.atomic():
                users = []
                for line, form in self.forms:
                    try:
                        with transaction.atomic():
                            users.append(services.create_user(
                                self.organization, actor=actor, **form.service_arguments()))
                    except ValidationError as exc:
                        self._record(line, exc.message_dict if hasattr(exc, "error_dict")
                                     else {"line": exc.messages})
                if self.line_errors:
                    raise _Rollback
                return list(Operation.objects.filter(
                    customer__in=users, action="provision_user").values_list("pk", flat=True))
        except _Rollback:
            return []
