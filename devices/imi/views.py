"""IMI v3 endpoints. Each reads the request, asks ``services`` or builds a queryset, answers JSON in
the IMI's shapes. Exempt from CSRF: the API authenticates every request itself (Basic credentials
or its own JSESSIONID) and never by the portal's login cookie."""

import logging
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ald_portal import jsondata

from ..models import DeploymentSettings, Device, Directory, Firmware
from . import auth, errors, services
from .representation import device_json, directory_json, firmware_json

log = logging.getLogger("devices.imi")

SERVER_VERSION = "12.08.110"  # dotted numbers: clients parse it as a version
BUILD_NUMBER = "1"

ADD_DEVICE, CHANGE_DEVICE, DELETE_DEVICE = (
    "devices.add_device",
    "devices.change_device",
    "devices.delete_device",
)
ADD_DIR, CHANGE_DIR, DELETE_DIR = (
    "devices.add_directory",
    "devices.change_directory",
    "devices.delete_directory",
)


def _body(request):
    """The JSON body; an empty body or ``null`` is None. IMI clients send JSON with any content type
    (curl --data says form-urlencoded), so the body is read as JSON whatever the header says."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise errors.unreadable_json("the body is too large") from None
    if not raw.strip():
        return None
    try:
        body = jsondata.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise errors.unreadable_json(str(exc)[:200]) from None
    bad = jsondata.unstorable_text(body)
    if bad:
        raise errors.invalid_body(f"{bad} contains a NUL character or a lone surrogate")
    return body


def _require(user, *perms):
    for perm in perms:
        if not user.has_perm(perm):
            raise errors.access_denied(perm)


def _facets(request, allowed) -> set:
    asked = {f.strip() for f in request.GET.get("facets", "").split(",") if f.strip()}
    unknown = sorted(asked - set(allowed))
    if unknown:
        raise errors.no_handler(f"facets={','.join(unknown)} is not served by this UMS")
    return asked


def api(public=False, **handlers):
    """A view answering the given methods; ``handlers`` maps a method to ``fn(request, user, **kw)``.
    Errors become IMI error bodies; anything unexpected is logged and answered ITG-FF001."""

    @csrf_exempt
    def view(request, **kwargs):
        try:
            handler = handlers.get(request.method)
            if handler is None:
                raise errors.method_not_supported(request.method)
            user = None if public else auth.request_user(request)
            result = handler(request, user, **kwargs)
        except errors.ImiError as exc:
            return exc.response()
        except Exception:
            log.exception("IMI %s %s failed", request.method, request.path)
            return errors.internal_error().response()
        return result if isinstance(result, JsonResponse) else JsonResponse(result, safe=False)

    return view


# --- server status, login, logout -----------------------------------------------------------------


def _server_status(request, user):
    fingerprint = DeploymentSettings.load().ums_id_fingerprint or settings.PORTAL_UMS_NAME
    return {
        "rmGuiServerVersion": SERVER_VERSION,
        "buildNumber": BUILD_NUMBER,
        "activeMQVersion": "",
        "derbyVersion": "",
        "serverUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ald-portal-ums:{fingerprint}")),
        "server": request.get_host(),
        "links": [],
    }


def _login(request, user):
    credentials = auth.basic_credentials(request)
    if credentials is None:
        raise errors.no_auth_header()
    user = auth.login_with_credentials(request, credentials)
    auth.forget_expired_sessions()
    session_id = auth.start_session(request, user)
    response = JsonResponse({"message": f"{auth.SESSION_COOKIE}={session_id}"})
    response.set_cookie(
        auth.SESSION_COOKIE,
        session_id,
        path="/umsapi/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Strict",
    )
    return response


@csrf_exempt
def logout(request):
    if request.method != "POST":
        return errors.method_not_supported(request.method).response()
    session_id = auth.session_id_of(request)
    try:
        if session_id is None:
            if auth.basic_credentials(request) is None:
                raise errors.no_session_id()
            auth.request_user(request)  # direct authorization: nothing to end, but check who asks
        elif not auth.end_session(session_id):
            raise errors.no_session(session_id)
    except errors.ImiError as exc:
        return exc.response()
    response = JsonResponse({"message": "Logout successful"})
    response.delete_cookie(auth.SESSION_COOKIE, path="/umsapi/", samesite="Strict")
    return response


server_status = api(public=True, GET=_server_status)
login = api(public=True, POST=_login)


# --- thin clients -----------------------------------------------------------------------------------


def _list_devices(request, user):
    facets = _facets(request, ("details", "online"))
    devices = Device.objects.order_by("pk")
    if "details" not in facets:
        devices = devices.only(
            "pk",
            "unit_id",
            "mac",
            "firmware_id",
            "last_ip",
            "name",
            "directory_id",
            "moved_to_bin",
            "details",
            "last_contact",
        )
    return [device_json(d, details="details" in facets, online="online" in facets) for d in devices]


def _create_device(request, user):
    _require(user, ADD_DEVICE)
    device = services.create_device(_body(request), actor=user.get_username())
    return {
        "message": "Thin client successfully inserted.",
        "id": str(device.pk),
        "name": device.name,
        "parentID": str(device.directory_id) if device.directory_id else "-1",
    }


def _command(request, user):
    _require(user, CHANGE_DEVICE)
    commands = request.GET.getlist("command")
    if not commands:
        raise errors.invalid_command("(no command)")
    if len(commands) > 1:  # one command a request, as the IMI takes it; not silently the last one
        raise errors.invalid_command(" and ".join(commands))
    command = commands[0]
    executed = services.send_command(command, _body(request), actor=user.get_username())
    return {"CommandExecList": executed}


def _get_device(request, user, tc_id):
    facets = _facets(request, ("details", "online"))
    device = Device.objects.filter(pk=services.parse_id(tc_id, "tcId")).first()
    if device is None:
        raise errors.tc_not_found(tc_id)
    return device_json(device, details="details" in facets, online="online" in facets, single=True)


def _update_device(request, user, tc_id):
    _require(user, CHANGE_DEVICE)
    services.update_device(tc_id, _body(request), actor=user.get_username())
    return {"message": "Update successful"}


def _delete_device(request, user, tc_id):
    _require(user, DELETE_DEVICE)
    delete_licenses = request.GET.get("deletelicenses", "").lower() in ("true", "1", "yes")
    executed = services.delete_device(tc_id, actor=user.get_username(), delete_licenses=delete_licenses)
    return {"CommandExecList": [executed]}


def _delete_device_offline(request, user, tc_id):
    _require(user, DELETE_DEVICE)
    services.delete_device(tc_id, actor=user.get_username())
    return {"message": "Offline deletion successful"}


thinclients = api(GET=_list_devices, PUT=_create_device, POST=_command)
thinclient = api(GET=_get_device, PUT=_update_device, DELETE=_delete_device)
thinclient_offline_delete = api(DELETE=_delete_device_offline)


# --- directories ------------------------------------------------------------------------------------


def _children_of(directory_ids) -> dict:
    """{directory id: [(objectType, id)]}: subdirectories first, then devices, each by id."""
    children = {pk: [] for pk in directory_ids}
    for pk, parent in (
        Directory.objects.filter(parent_id__in=directory_ids).order_by("pk").values_list("pk", "parent_id")
    ):
        children[parent].append(("tcdirectory", pk))
    for pk, parent in (
        Device.objects.filter(directory_id__in=directory_ids).order_by("pk").values_list("pk", "directory_id")
    ):
        children[parent].append(("tc", pk))
    return children


def _list_directories(request, user):
    facets = _facets(request, ("children",))
    directories = list(Directory.objects.order_by("pk"))
    children = _children_of([d.pk for d in directories]) if "children" in facets else {}
    return [directory_json(request, d, children.get(d.pk)) for d in directories]


def _create_directory(request, user):
    _require(user, ADD_DIR)
    created = services.create_directory(_body(request), actor=user.get_username())
    return {"message": "Directory successfully inserted.", "id": str(created.pk), "name": created.name}


def _get_directory(request, user, dir_id):
    facets = _facets(request, ("children",))
    found = services.directory(dir_id)
    children = _children_of([found.pk])[found.pk] if "children" in facets else None
    return directory_json(request, found, children)


def _change_directory(request, user, dir_id):
    operation = request.GET.get("operation")
    body = _body(request)
    if operation == "move":
        _require(user, CHANGE_DIR)
        if isinstance(body, list) and any(isinstance(o, dict) and o.get("type") == "tc" for o in body):
            _require(user, CHANGE_DEVICE)
        return services.move_into_directory(dir_id, body, actor=user.get_username())
    if operation is not None:
        raise errors.no_handler(f"operation={operation}")
    _require(user, CHANGE_DIR)
    services.rename_directory(dir_id, body, actor=user.get_username())
    return {"message": "Updated directory successfully."}


def _delete_directory(request, user, dir_id):
    _require(user, DELETE_DIR)
    services.delete_directory(dir_id, actor=user.get_username())
    return {"message": "Deletion successful."}


tcdirectories = api(GET=_list_directories, PUT=_create_directory)
tcdirectory = api(GET=_get_directory, PUT=_change_directory, DELETE=_delete_directory)


# --- firmwares --------------------------------------------------------------------------------------


def _list_firmwares(request, user):
    return {"FwResource": [firmware_json(fw) for fw in Firmware.objects.order_by("pk")]}


def _get_firmware(request, user, fw_id):
    fw = Firmware.objects.filter(pk=services.parse_id(fw_id, "fwId")).first()
    if fw is None:
        raise errors.firmware_not_found(fw_id)
    return firmware_json(fw)


firmwares = api(GET=_list_firmwares)
firmware = api(GET=_get_firmware)


@csrf_exempt
def no_handler(request, rest=""):
    return errors.no_handler(request.path).response()
