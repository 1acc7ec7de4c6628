"""Exports of a list page: exactly its filtered rows, in its sort order, as CSV (streamed), XLSX or JSON.

A list view (``SingleTableMixin`` + ``FilterView``) takes ``ExportMixin`` first; ``?export=csv|xlsx|json``
then answers with a file instead of the page, keeping every other query parameter (filters, sort).
The columns are the table's visible ones without check-box or action (header-less) columns.

Each cell keeps its type where the table gives one (see ``_typed``), then each format writes it:

* text: the cell as plain text (HTML loses its tags). A text beginning with = + - @ (or a tab / carriage
  return) would start a formula: CSV writes it with a leading ``'`` (the usual CSV injection defence);
  XLSX stores it as a string cell (inline string, no ``'`` in the value, flagged "quote prefix" as Excel
  does for a typed ``'``), which a spreadsheet shows as text and never evaluates. JSON writes it as is.
* numbers stay numbers in all three.
* dates and times of date/time columns: XLSX real date cells (times local, timezone-naive, since Excel
  knows no zones) with a date number format; JSON ISO 8601 ("2026-12-03", local times with their
  offset to the second: "2026-12-03T13:00:00+01:00"); CSV as the pages show them (local,
  ``SHORT_DATE_FORMAT`` / ``SHORT_DATETIME_FORMAT``: "2026-12-03", "2026-12-03 13:00").
* a share the page computes and shows as "40%" (no stored value behind it): XLSX a number (0.4) shown
  as a percentage; CSV and JSON the text "40%" as the page shows it."""

import csv
import io
import json
import re
from datetime import date, datetime
from decimal import Decimal
from html import unescape

import django_tables2 as tables
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import formats, timezone
from django.utils.html import strip_tags
from django.utils.safestring import SafeData
from django_tables2 import RequestConfig
from django_tables2.rows import BoundRow
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from ald_portal import clock

FORMATS = ("csv", "xlsx", "json")
# Rows are read this many at a time (prefetches run once per chunk), so memory and the number of
# queries do not grow with a list of up to this many rows.
CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
# Spreadsheet number formats: dates as the pages show them (ISO, 24-hour clock, to the minute).
XLSX_DATE_FORMAT = "yyyy-mm-dd"
XLSX_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_RE = re.compile(r"-?\d+(?:\.(\d+))?%")
NUMBERS = (int, float, Decimal)


class Percent(str):
    """A share as the page shows it ("40%"), which a spreadsheet gets as the number 0.4."""

    @property
    def number(self):
        return float(Decimal(self[:-1]) / 100)

    @property
    def number_format(self):
        decimals = PERCENT_RE.fullmatch(self).group(1)
        return f"0.{'0' * len(decimals)}%" if decimals else "0%"


def export_columns(table):
    """The visible columns worth exporting: no check boxes, no header-less (action) columns."""
    return [
        bc for bc in table.columns if not isinstance(bc.column, tables.CheckBoxColumn) and _plain(bc.header)
    ]


def _plain(value):
    """A cell or header as plain text: HTML (safe strings) loses its tags and entities."""
    if value is None:
        return ""
    if isinstance(value, SafeData):
        return " ".join(unescape(strip_tags(str(value))).split())
    return str(value)


def _is_number(value):
    return isinstance(value, NUMBERS) and not isinstance(value, bool)


def neutralise(text):
    """Text a spreadsheet takes literally: a leading ' before anything that would start a formula."""
    return "'" + text if isinstance(text, str) and text.startswith(FORMULA_STARTS) else text


def _records(table):
    data = table.data.data  # the filtered queryset, ordered as the table is sorted
    if hasattr(data, "iterator"):
        return data.iterator(chunk_size=CHUNK_SIZE)
    return iter(data)


class _ExportRow(BoundRow):
    """A row that tells, for each cell, both the column's export value (``value_<name>``,
    ``render_<name>`` or the column's own: often text) and the record's value it was made from."""

    def cell(self, bound_column):
        self._source = None  # stays None for an empty cell (the column's default is exported)
        return self.get_cell_value(bound_column.name), self._source

    def _call_value(self, bound_column, value=None):
        self._source = value
        return super()._call_value(bound_column, value)


def rows(table):
    """The header, then one list of typed cell values per record, read chunk by chunk: text, numbers,
    ``date``, ``datetime`` (aware, as stored) and ``Percent``."""
    columns = export_columns(table)
    yield [_plain(bc.header) for bc in columns]
    for record in _records(table):
        row = _ExportRow(record, table=table)
        yield [_cell(row, bc) for bc in columns]


def _cell(row, bound_column):
    """A cell's export value; empty, the column's own default (Expiry: "perpetual"), not the
    table-wide placeholder."""
    value, source = row.cell(bound_column)
    if value is None:
        return _plain(bound_column.column.default)
    return _typed(value, source, bound_column.column)


def _typed(value, source, column):
    """The export value of a cell the column made into ``value`` from the record's ``source``.

    * a date, a time or a number as the column gives it stays one;
    * a date (time) column's cell is its date (time), however the table words it for the page
      ("2026-12-03 13:00" in local time, a badge): the column says it holds one;
    * text that is exactly the record's number ("10") is that number;
    * text that is a share ("40%") the page worked out (there is no stored text behind it, as there
      is behind a comment reading "40%") is a ``Percent``;
    * anything else is its plain text."""
    if isinstance(value, date) or _is_number(value):
        return value
    if isinstance(source, date):
        if isinstance(column, tables.DateTimeColumn):
            return source
        if isinstance(column, tables.DateColumn):
            return _local(source).date() if isinstance(source, datetime) else source
    text = _plain(value)
    if _is_number(source) and text == str(source):
        return source
    if not isinstance(source, str) and PERCENT_RE.fullmatch(text):
        return Percent(text)
    return text


def _local(value):
    """A stored (aware) date and time in the portal's time zone; a naive one is taken as local."""
    return timezone.localtime(value) if timezone.is_aware(value) else value


def filename(basename, fmt):
    return f"{basename}-{clock.today().isoformat()}.{fmt}"


def _attach(response, basename, fmt):
    response["Content-Disposition"] = f'attachment; filename="{filename(basename, fmt)}"'
    return response


class _Echo:
    def write(self, value):
        return value


def _csv_value(value):
    """A cell for CSV: dates and times as the pages show them, text safe from formulas, numbers as
    numbers (a free count of -3 stays one)."""
    if isinstance(value, datetime):
        return formats.date_format(_local(value), "SHORT_DATETIME_FORMAT")
    if isinstance(value, date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return neutralise(value)


def _csv_lines(table):
    writer = csv.writer(_Echo())
    yield "\ufeff"  # so Excel reads the file as UTF-8
    for row in rows(table):
        yield writer.writerow([_csv_value(v) for v in row])


def _json_value(value):
    """A cell for JSON: ISO 8601 dates, local times with their offset to the second, numbers."""
    if isinstance(value, datetime):
        return _local(value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, str):
        return str(value)  # a Percent as its text
    return value


def _xlsx_cell(sheet, value):
    """A typed spreadsheet cell: numbers, real dates with a date format, text as a string cell (never
    a formula)."""
    if isinstance(value, Percent):
        cell = WriteOnlyCell(sheet, value.number)
        cell.number_format = value.number_format
    elif isinstance(value, datetime):
        local = _local(value).replace(tzinfo=None, microsecond=0)  # Excel has no time zones
        cell = WriteOnlyCell(sheet, local)
        cell.number_format = XLSX_DATETIME_FORMAT
    elif isinstance(value, date):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = XLSX_DATE_FORMAT
    elif isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell = WriteOnlyCell(sheet, text)
        cell.data_type = "s"  # openpyxl makes "=…" a formula; a string cell is shown, never evaluated
        if text.startswith(FORMULA_STARTS):
            cell.quotePrefix = True  # as Excel marks a typed '=…: still text once the cell is edited
    else:
        cell = WriteOnlyCell(sheet, value)
    return cell


def export_response(table, fmt, basename):
    """The whole (unpaginated, sorted) ``table`` as a download in ``fmt``."""
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(table), content_type=CONTENT_TYPES["csv"])
    elif fmt == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(basename[:31])
        for row in rows(table):
            sheet.append([_xlsx_cell(sheet, v) for v in row])
        buffer = io.BytesIO()
        workbook.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=CONTENT_TYPES["xlsx"])
    elif fmt == "json":
        lines = rows(table)
        header = next(lines)
        body = [dict(zip(header, (_json_value(v) for v in row), strict=True)) for row in lines]
        response = HttpResponse(
            json.dumps(body, ensure_ascii=False, default=str), content_type=CONTENT_TYPES["json"]
        )
    else:
        raise ValueError(f"Unknown export format {fmt!r}.")
    return _attach(response, basename, fmt)


class ExportMixin:
    """``?export=csv|xlsx|json`` on a ``SingleTableMixin`` + ``FilterView`` list: the download of
    exactly the rows the page lists under the same filters and sort (every page, not one)."""

    export_basename = "export"
    export_formats = FORMATS  # all the view answers (a view may answer more formats itself)

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("export")
        if not fmt:
            return super().get(request, *args, **kwargs)
        if fmt not in FORMATS:
            return unknown_format_response(fmt, self.export_formats)
        self.filterset = self.get_filterset(self.get_filterset_class())
        if self.filterset.is_bound and not self.filterset.is_valid() and self.get_strict():
            # the page lists nothing and shows why; a file would be empty without saying so
            return filter_errors_response(self.filterset)
        self.object_list = self.filterset.qs
        table = self.get_table_class()(data=self.get_table_data(), **self.get_table_kwargs())
        RequestConfig(request, paginate=False).configure(table)
        return export_response(table, fmt, self.export_basename)


def no_export_response(*lines) -> HttpResponse:
    """400, in plain text, beginning "No export: ": a script asking for an export learns why there
    is no file."""
    text = "\n".join(["No export: " + lines[0], *lines[1:]]) + "\n"
    return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")


def filter_errors_response(filterset) -> HttpResponse:
    """Each filter that is not valid with what is wrong (the messages name the value)."""
    lines = ["a filter is not valid."]
    for name, errors in filterset.errors.items():
        label = filterset.form.fields[name].label if name in filterset.form.fields else name
        lines += [f"{label or name} ({name}): {error}" for error in errors]
    return no_export_response(*lines)


def unknown_format_response(fmt, formats) -> HttpResponse:
    """The export asked for is none the page gives."""
    return no_export_response(f"export {fmt!r} is not one of {', '.join(formats)}.")
