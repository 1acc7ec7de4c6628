"""The base of every list table: any page or page size from a URL gives a page, never an error."""

import django_tables2 as tables
from django.core.paginator import EmptyPage, PageNotAnInteger

MAX_PER_PAGE = 500

# Columns whose every cell is one token (an ID, a MAC, an IP address): like dates and times their cells
# carry the class "nowrap" and stay on one line (portal.css), so a table short of room never splits
# "WE-NT6ZM" or "2027-12-01" after a hyphen; a table too wide scrolls in its .scroll wrapper instead.
ONE_TOKEN_COLUMNS = frozenset(
    {"pack_id", "pack", "unit_id", "mac", "last_ip", "number", "key", "subscription_key", "order_number"}
)


class PortalTable(tables.Table):
    def get_column_class_names(self, classes_set, bound_column):
        classes = super().get_column_class_names(classes_set, bound_column)
        if bound_column.name in ONE_TOKEN_COLUMNS or isinstance(
            bound_column.column, (tables.DateColumn, tables.DateTimeColumn)
        ):
            classes.add("nowrap")
        return classes

    def paginate(self, paginator_class=tables.paginators.Paginator, per_page=None, page=1, *args, **kwargs):
        try:
            per_page = int(per_page) if per_page not in (None, "") else None
        except (TypeError, ValueError):
            per_page = None
        if per_page is not None and not 1 <= per_page <= MAX_PER_PAGE:
            per_page = None
        try:
            page = int(page)
        except (TypeError, ValueError, OverflowError):
            page = 1
        try:
            return super().paginate(paginator_class, per_page, page, *args, **kwargs)
        except (EmptyPage, PageNotAnInteger):
            last = self.paginator.num_pages if page > 1 else 1
            return super().paginate(paginator_class, per_page, last, *args, **kwargs)
