"""IMI error bodies: ``{"message", "errorCode", "time", "stackTrace"}`` with the ITG codes of the IMI v3
reference. The stack trace is always empty: the server's insides are not the client's business."""

from django.http import JsonResponse
from django.utils import timezone

from ald_portal import clock


class ImiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body = {
            "message": self.message,
            "errorCode": self.code,
            "time": timezone.localtime(clock.now()).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "stackTrace": "",
        }
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


# Client errors (HTTP 400 unless said otherwise)
def tc_not_found(tc_id):
    return ImiError("ITG-0A001", f"Thin client with ID {tc_id} not found.")


def target_dir_not_found(dir_id):
    return ImiError("ITG-0A002", f"No target directory with ID {dir_id} found.")


def invalid_command(command):
    return ImiError("ITG-0A003", f"{command} is an invalid command.")


def invalid_body(detail):
    return ImiError("ITG-0A004", f"Invalid request body: {detail}")


def unreadable_json(detail):
    return ImiError("ITG-0A005", f"Could not read JSON: {detail}", status=415)


def directory_not_empty(dir_id):
    return ImiError("ITG-0A006", f"Directory with ID <{dir_id}> is not empty. Remove content first.")


def no_mac():
    return ImiError("ITG-0A007", "No MAC defined.")


def duplicate_key(detail):
    return ImiError(
        "ITG-0A008", f"The statement was aborted because it would have caused a duplicate key value: {detail}"
    )


def no_firmware():
    return ImiError("ITG-0A009", "No firmware defined.")


def number_format(field, value):
    return ImiError("ITG-0A010", f"Number format error: {field} {value!r} is not a number.")


def method_not_supported(method):
    return ImiError("ITG-0A011", f"Request method '{method}' not supported")


def id_list_empty():
    return ImiError("ITG-0A012", "IDList is empty.")


def no_valid_property(allowed):
    return ImiError("ITG-0A013", f"No valid property in body (expected one of: {', '.join(allowed)}).")


def mac_length(value):
    return ImiError(
        "ITG-0A014", f"MAC must be 12 characters long: mac {value!r} is not 12 hexadecimal digits."
    )


def firmware_not_found(fw_id):
    return ImiError("ITG-0A015", f"Firmware with ID {fw_id} does not exist.")


def parent_not_found(parent_id):
    return ImiError("ITG-0A016", f"Parent with ID {parent_id} does not exist.")


def target_in_bin(dir_id):
    return ImiError(
        "ITG-0A017",
        f"Target directory is in Recycling Bin. In order to use it revert it first. (directory {dir_id})",
    )


def tc_in_bin(tc_id):
    return ImiError(
        "ITG-0A018",
        f"Thin client is in Recycling Bin. In order to use it, revert it first. (thin client {tc_id})",
    )


def no_handler(path):
    return ImiError("ITG-0A020", f"No handler is mapped for this request: {path}", status=404)


def directory_has_rule(dir_id, packs):
    return ImiError(
        "ITG-0A023",
        f"Directory has Default Directory Rule: directory {dir_id} is a distribution condition of "
        f"pack(s) {', '.join(packs)}; remove it from their conditions first.",
    )


def invalid_name(value):
    return ImiError("ITG-0A024", f"Invalid thin client name: {value!r}")


# Authentication errors (HTTP 401)
def no_auth_header():
    return ImiError("ITG-0B001", "No authentication header found in request.", status=401)


def invalid_credentials(headers=None):
    return ImiError("ITG-0B002", "Invalid login credentials.", status=401, headers=headers)


def no_session_id():
    return ImiError("ITG-0B003", "No session ID found.", status=401)


def no_session(session_id):
    return ImiError("ITG-0B004", f"No session found for requested session ID {session_id}.", status=401)


def access_denied(needed):
    return ImiError("ITG-0B005", f"Access denied. ({needed} needs the UMS administrator role)", status=401)


def internal_error():
    return ImiError("ITG-FF001", "Internal error", status=500)


def server_not_available(detail):
    return ImiError("ITG-FF004", f"Server not available: {detail}", status=500)
