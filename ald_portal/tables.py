"""The base of every list table: any page or page size from a URL gives a page, never an error."""

import django_tables2 as tables
from django.core.paginator import EmptyPage, PageNotAnInteger

MAX_PER_PAGE = 500


class PortalTable(tables.Table):
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
