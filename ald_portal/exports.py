"""Exports of a list page: exactly its filtered rows, in its sort order, as CSV (streamed), XLSX or JSON.

A list view (``SingleTableMixin`` + ``FilterView``) takes ``ExportMixin`` first; ``?export=csv|xlsx|json``
then answers with a file instead of the page, keeping every other query parameter (filters, sort).
The columns are the table's visible ones without check-box or action (header-less) columns, each cell
as plain text. A cell beginning with = + - @ (or a tab / carriage return) gets a leading ``'`` in CSV
and XLSX so a spreadsheet shows it as text, never runs it as a formula."""

import csv
import io
import json
from html import unescape

import django_tables2 as tables
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.html import strip_tags
from django.utils.safestring import SafeData
from django_tables2 import RequestConfig
from django_tables2.rows import BoundRow
from openpyxl import Workbook
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


def _value(value):
    """A cell for JSON and XLSX: numbers stay numbers, everything else is plain text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _plain(value)
    return value


def neutralise(text):
    """Text a spreadsheet takes literally: a leading ' before anything that would start a formula."""
    return "'" + text if isinstance(text, str) and text.startswith(FORMULA_STARTS) else text


def _records(table):
    data = table.data.data  # the filtered queryset, ordered as the table is sorted
    if hasattr(data, "iterator"):
        return data.iterator(chunk_size=CHUNK_SIZE)
    return iter(data)


def rows(table):
    """The header, then one list of raw cell values per record, read chunk by chunk."""
    columns = export_columns(table)
    yield [_plain(bc.header) for bc in columns]
    for record in _records(table):
        row = BoundRow(record, table=table)
        yield [_cell(row, bc) for bc in columns]


def _cell(row, bound_column):
    """A cell's export value; empty, the column's own default (Expiry: "perpetual"), not the
    table-wide placeholder."""
    value = row.get_cell_value(bound_column.name)
    return bound_column.column.default if value is None else value


def filename(basename, fmt):
    return f"{basename}-{clock.today().isoformat()}.{fmt}"


def _attach(response, basename, fmt):
    response["Content-Disposition"] = f'attachment; filename="{filename(basename, fmt)}"'
    return response


class _Echo:
    def write(self, value):
        return value


def _csv_lines(table):
    writer = csv.writer(_Echo())
    yield "\ufeff"  # so Excel reads the file as UTF-8
    for row in rows(table):
        yield writer.writerow([neutralise(_value(v)) for v in row])  # a number (-3 free) stays one


def _xlsx_cell(value):
    value = _value(value)
    if isinstance(value, str):
        return neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def export_response(table, fmt, basename):
    """The whole (unpaginated, sorted) ``table`` as a download in ``fmt``."""
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(table), content_type=CONTENT_TYPES["csv"])
    elif fmt == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(basename[:31])
        for row in rows(table):
            sheet.append([_xlsx_cell(v) for v in row])
        buffer = io.BytesIO()
        workbook.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type=CONTENT_TYPES["xlsx"])
    elif fmt == "json":
        lines = rows(table)
        header = next(lines)
        body = [dict(zip(header, (_value(v) for v in row), strict=True)) for row in lines]
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

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("export")
        if fmt not in FORMATS:  # no (or an unknown) format: the page, as any odd parameter gives
            return super().get(request, *args, **kwargs)
        # as FilterView.get: an invalid filter under strict mode lists (and so exports) nothing
        self.filterset = self.get_filterset(self.get_filterset_class())
        if not self.filterset.is_bound or self.filterset.is_valid() or not self.get_strict():
            self.object_list = self.filterset.qs
        else:
            self.object_list = self.filterset.queryset.none()
        table = self.get_table_class()(data=self.get_table_data(), **self.get_table_kwargs())
        RequestConfig(request, paginate=False).configure(table)
        return export_response(table, fmt, self.export_basename)
