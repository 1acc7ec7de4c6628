"""Requests carrying a NUL character where no page takes one are refused at the door.

No page, ID or form field of the portal takes a NUL; SQLite stores it silently and PostgreSQL refuses
it with an error deep inside a query. So an address with a NUL names no page (404), and a posted form
field with one is a 400 naming the field, before any view runs. (Query parameters are filters, whose
forms say what is wrong with a value; JSON bodies of the APIs are checked by the APIs themselves.)"""

from django.http import HttpResponseBadRequest, HttpResponseNotFound


class RejectNulCharacters:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            return HttpResponseNotFound(
                f"No page at {request.path!r}: it contains a NUL character.",
                content_type="text/plain; charset=utf-8",
            )
        if request.method == "POST":
            for name, values in request.POST.lists():
                bad = [value for value in values if "\x00" in value]
                if "\x00" in name or bad:
                    shown = f": {bad[0]!r}" if bad else ""  # the value that has it, of a list field too
                    return HttpResponseBadRequest(
                        f"The form field {name!r} contains a NUL character{shown}.",
                        content_type="text/plain; charset=utf-8",
                    )
        return self.get_response(request)
