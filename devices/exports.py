"""The UMS's own export beside the list exports: Device Licenses > *Export Unit ID list*."""

from django.http import StreamingHttpResponse

from ald_portal.exports import CHUNK_SIZE, filename


def unit_id_list_response(licenses, basename):
    """The unit IDs of ``licenses`` (already filtered), each once, sorted, one a line, streamed."""
    ids = licenses.order_by("unit_id").values_list("unit_id", flat=True).distinct()

    def lines():
        for unit_id in ids.iterator(chunk_size=CHUNK_SIZE):
            yield unit_id + "\n"

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    name = filename(basename + "-unit-ids", "txt")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
