"""How the UMS side talks to the licensing service (ILS): one small interface (docs/DESIGN.md section 2).

Two implementations answer the same calls with the same plain values:

- ``InProcessLicensingClient``, the embedded default, calls ``licensing.services`` on the same
  database;
- ``HttpLicensingClient`` (``ILS_URL`` set) speaks the ILS v1 HTTP API (docs/ILS_API.md) through
  ``requests``: connect and read timeouts, retries with exponential backoff on connection errors,
  timeouts and 5xx, one idempotency key per call kept across its retries, and the proxy of the
  Deployment page.

A UMS authenticates with its UMS ID (requests signed with the private key made at installation) and
with every ALD token registered in it; a pack is asked for through the credential it was listed
under. The UMS side never writes licensing tables; it only holds the plain values the ILS answers."""

import base64
import datetime
import json
import logging
import time
import uuid
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from django.conf import settings

from ald_portal import clock
from licensing import services as ils
from licensing.contract import (
    API_PREFIX,
    CREDENTIAL_ERRORS,
    HEADER_IDEMPOTENCY_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    HEADER_UMS_ID,
    TOKEN_SCHEME,
    AllocationResult,
    LicenseErrorCode,
    LicenseServiceError,
    PackInfo,
    certificate_fingerprint,
    signing_payload,
)

log = logging.getLogger(__name__)


class IlsUnavailable(Exception):
    """The licensing service could not be reached or did not answer; nothing is known to have
    happened there, so the request may be repeated."""


class IlsCredentialRefused(IlsUnavailable):
    """The licensing service refused this UMS's credential (UMS ID not registered, bad signature,
    ALD token deleted): it cannot be used until an administrator fixes that, so devices wait and
    are retried, as when the service is down."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


# --- the UMS ID key pair ----------------------------------------------------------------------------


def make_ums_key_pair(name: str) -> tuple[str, str, str]:
    """A new UMS ID: an Ed25519 private key (PEM, PKCS#8), a self-signed certificate for it (PEM, what
    is exported as .crt and registered in the License Portal) and the certificate's SHA-256
    fingerprint."""
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (name or "UMS")[:64])])
    now = clock.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * 30))
        .sign(key, None)
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return private_pem, cert_pem, certificate_fingerprint(cert.public_bytes(serialization.Encoding.DER))


def sign(private_key_pem: str, payload: bytes) -> str:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return base64.b64encode(key.sign(payload)).decode()
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


# --- routing over credentials ----------------------------------------------------------------------

UMS_ID = None  # the credential "this UMS's UMS ID"; an ALD token is its own credential (a str)


class _RoutingClient:
    """The calls every client offers. Each pack is asked for through the credential it is listed
    under (the UMS ID first, then the ALD tokens in order of registration)."""

    def __init__(self, ums_fingerprint: str, tokens=()):
        self.ums_fingerprint = ums_fingerprint
        self._tokens = None if tokens is None else list(tokens)
        self._routes = None

    @property
    def tokens(self) -> list[str]:
        """The ALD tokens registered in this UMS; read on first use (``tokens=None``), so a client
        that is made but never asks costs no query."""
        if self._tokens is None:
            from .models import UmsAldToken

            self._tokens = list(
                UmsAldToken.objects.order_by("registered_at", "pk").values_list("token", flat=True)
            )
        return self._tokens

    def _credentials(self):
        return [UMS_ID, *self.tokens]

    def _call(self, credential, op, **kwargs):
        raise NotImplementedError

    def _each(self, op, **kwargs):
        """``op`` through every credential; a refused token is logged and passed over (its packs
        stay registered with their last known counts), unless every credential is refused."""
        answers, refused = [], []
        for credential in self._credentials():
            try:
                answers.append((credential, self._call(credential, op, **kwargs)))
            except IlsCredentialRefused as exc:
                if credential is UMS_ID and self.tokens:
                    log.info("UMS ID not accepted by the licensing service (%s); using ALD tokens", exc)
                else:
                    log.warning("licensing service refused a credential: %s", exc)
                refused.append(exc)
        if not answers and refused:
            raise refused[-1]  # a token's refusal says more than "UMS ID not registered"
        return answers

    def _route(self, pack_id):
        if not self.tokens:
            return UMS_ID
        if self._routes is None:
            self.refresh_packs()
        return self._routes.get(pack_id, UMS_ID)

    def refresh_packs(self) -> list[PackInfo]:
        infos, routes = {}, {}
        for credential, packs in self._each("packs"):
            for info in packs:
                if info.pack_id not in infos:
                    infos[info.pack_id], routes[info.pack_id] = info, credential
        self._routes = routes
        return list(infos.values())

    def packs_via_token(self) -> set[str]:
        """The packs of the last refresh that were listed through an ALD token, not the UMS ID."""
        return {pack_id for pack_id, credential in (self._routes or {}).items() if credential is not UMS_ID}

    def request_licenses(self, pack_id: str, unit_ids: list[str]) -> AllocationResult:
        return self._call(self._route(pack_id), "request", pack_id=pack_id, unit_ids=list(unit_ids))

    def release(self, pack_id: str, unit_id: str) -> bool:
        """Free the slot; False when the unit held none there, or when the pack is no longer this
        UMS's to manage (unassigned or gone in the License Portal): nothing this UMS can free."""
        try:
            return self._call(self._route(pack_id), "release", pack_id=pack_id, unit_id=unit_id)
        except LicenseServiceError as exc:
            if exc.code not in (LicenseErrorCode.PACK_NOT_ASSIGNED, LicenseErrorCode.UNKNOWN_PACK):
                raise
            log.warning("cannot release %s in %s: %s", unit_id, pack_id, exc.message)
            return False

    def slots(self, pack_ids=None) -> list[tuple[str, str]]:
        if pack_ids is None:
            rows = set()
            for _, answer in self._each("slots", pack_ids=None):
                rows.update(answer)
            return sorted(rows)
        groups = {}
        for pack_id in pack_ids:
            groups.setdefault(self._route(pack_id), []).append(pack_id)
        rows = set()
        for credential, ids in groups.items():
            rows.update(self._call(credential, "slots", pack_ids=ids))
        return sorted(rows)

    def reconcile_counters(self) -> dict[str, tuple[int, int]]:
        corrected = {}
        for _, answer in self._each("reconcile"):
            corrected.update(answer)
        return corrected

    def merged_packs(self) -> dict[str, str]:
        merged = {}
        for _, answer in self._each("merged"):
            merged.update(answer)
        return merged

    def license_file(self, unit_id, service, pack_id, expires, issued_at) -> bytes:
        """The signed license file the licensing service issues for this license."""
        return self._call(
            self._route(pack_id),
            "license_file",
            pack_id=pack_id,
            unit_id=unit_id,
            service=service,
            expires=expires,
            issued_at=issued_at,
        )


class InProcessLicensingClient(_RoutingClient):
    """Calls the licensing services in this process; credentials are checked as over HTTP, except
    that the UMS ID needs no signature (it is the same installation)."""

    def _caller(self, credential):

        callers = self.__dict__.setdefault("_callers", {})
        if credential not in callers:
            try:
                if credential is UMS_ID:
                    callers[credential] = ils.ums_caller(self.ums_fingerprint)
                else:
                    callers[credential] = ils.authenticate_token(credential)
            except LicenseServiceError as exc:
                raise IlsCredentialRefused(exc.code, exc.message) from exc
        return callers[credential]

    def _call(self, credential, op, **kwargs):

        caller = self._caller(credential)
        fp, scope = caller.ums_fingerprint, {}
        if caller.subscription_key_id is not None:
            scope = {"subscription_key_id": caller.subscription_key_id}
        if op == "packs":
            return ils.packs_for_ums(fp, **scope)
        if op == "request":
            return ils.request_licenses(kwargs["pack_id"], kwargs["unit_ids"], fp, **scope)
        if op == "release":
            ils.authorize_pack(kwargs["pack_id"], caller)
            return ils.release_license(kwargs["pack_id"], kwargs["unit_id"], actor=f"UMS ({caller})")
        if op == "slots":
            return [tuple(row) for row in ils.active_slots(fp, kwargs["pack_ids"], **scope)]
        if op == "reconcile":
            return ils.reconcile_pack_counters(caller)
        if op == "merged":
            return ils.merged_pack_map(caller)
        if op == "license_file":
            return ils.license_file_for(caller, **kwargs)
        raise ValueError(op)


class HttpLicensingClient(_RoutingClient):
    def __init__(
        self,
        base_url: str,
        ums_fingerprint: str,
        private_key_pem: str,
        tokens=(),
        *,
        proxy_url: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        session: requests.Session | None = None,
    ):
        super().__init__(ums_fingerprint, tokens)
        self.base_url = base_url.rstrip("/")
        self.private_key_pem = private_key_pem
        self.proxies = {"http": proxy_url, "https": proxy_url} if proxy_url else {}
        self.timeout = (
            settings.ILS_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
            settings.ILS_READ_TIMEOUT if read_timeout is None else read_timeout,
        )
        self.retries = settings.ILS_RETRIES if retries is None else retries
        self.backoff = settings.ILS_BACKOFF_SECONDS if backoff is None else backoff
        self.session = session or requests.Session()

    def _url(self, endpoint):
        return self.base_url + API_PREFIX + endpoint

    def _headers(self, credential, prepared, key):
        prepared.headers[HEADER_IDEMPOTENCY_KEY] = key
        if credential is UMS_ID:
            timestamp = str(int(clock.now().timestamp()))
            payload = signing_payload(
                prepared.method, prepared.path_url, timestamp, key, prepared.body or b""
            )
            prepared.headers[HEADER_UMS_ID] = self.ums_fingerprint
            prepared.headers[HEADER_TIMESTAMP] = timestamp
            prepared.headers[HEADER_SIGNATURE] = sign(self.private_key_pem, payload)
        else:
            prepared.headers["Authorization"] = f"{TOKEN_SCHEME} {credential}"

    def send(self, credential, method, endpoint, body=None, params=None) -> dict:
        """One call: the same idempotency key on every attempt, so a retry of a request whose answer
        was lost is answered from the first one. Returns the JSON answer; raises LicenseServiceError
        for a refusal, IlsCredentialRefused for a refused credential, IlsUnavailable when no answer
        came after all attempts."""
        key = uuid.uuid4().hex
        data = json.dumps(body).encode() if body is not None else None
        last = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = requests.Request(
                method,
                self._url(endpoint),
                data=data,
                params=params,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            prepared = self.session.prepare_request(request)
            self._headers(credential, prepared, key)  # signed per attempt: a fresh timestamp
            try:
                response = self.session.send(
                    prepared, timeout=self.timeout, proxies=self.proxies, allow_redirects=False
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("ILS %s %s attempt %d: %s", method, endpoint, attempt + 1, last)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = f"HTTP {response.status_code}"
                log.info("ILS %s %s attempt %d: %s", method, endpoint, attempt + 1, last)
                continue
            try:
                answer = response.json()
            except ValueError:
                raise IlsUnavailable(
                    f"{self._url(endpoint)} answered HTTP {response.status_code} without JSON"
                ) from None
            if response.status_code >= 400:
                error = answer.get("error") if isinstance(answer, dict) else None
                code = (error or {}).get("code", LicenseErrorCode.BAD_REQUEST)
                message = (error or {}).get("message", f"HTTP {response.status_code}")
                if code in CREDENTIAL_ERRORS:
                    raise IlsCredentialRefused(code, message)
                raise LicenseServiceError(code, message)
            return answer
        raise IlsUnavailable(f"{self._url(endpoint)}: no answer after {self.retries + 1} attempt(s) ({last})")

    def _call(self, credential, op, **kwargs):
        if op == "packs":
            return [PackInfo.from_json(p) for p in self.send(credential, "GET", "packs")["packs"]]
        if op == "request":
            answer = self.send(credential, "POST", "licenses/request", body=kwargs)
            return AllocationResult.from_json(answer)
        if op == "release":
            return bool(self.send(credential, "POST", "licenses/release", body=kwargs)["released"])
        if op == "slots":
            params = {"pack_id": kwargs["pack_ids"]} if kwargs["pack_ids"] is not None else None
            return [tuple(row) for row in self.send(credential, "GET", "slots", params=params)["slots"]]
        if op == "reconcile":
            answer = self.send(credential, "POST", "reconcile", body={})
            return {k: tuple(v) for k, v in answer["corrected"].items()}
        if op == "merged":
            return dict(self.send(credential, "GET", "merged-packs")["merged"])
        if op == "license_file":
            body = dict(kwargs, expires=kwargs["expires"].isoformat() if kwargs["expires"] else None)
            body["issued_at"] = kwargs["issued_at"].isoformat()
            return self.send(credential, "POST", "license-files", body=body)["license_file"].encode()
        raise ValueError(op)


def proxy_url(conf) -> str | None:
    """The proxy of the Deployment page as a URL requests understands, or None."""
    if not conf.proxy_enabled or not conf.proxy_host:
        return None
    auth = ""
    if conf.proxy_user:
        auth = quote(conf.proxy_user, safe="") + ":" + quote(conf.proxy_password, safe="") + "@"
    port = f":{conf.proxy_port}" if conf.proxy_port else ""
    return f"http://{auth}{conf.proxy_host}{port}"


def get_client(ums_fingerprint: str | None = None):
    """The client for this UMS: in-process, or over HTTP when ``ILS_URL`` is set."""
    from .services import ums_identity

    if settings.ILS_URL:
        conf = ums_identity()
        return HttpLicensingClient(
            settings.ILS_URL,
            conf.ums_id_fingerprint,
            conf.ums_id_private_key_pem,
            None,
            proxy_url=proxy_url(conf),
        )
    return InProcessLicensingClient(ums_fingerprint or ums_identity().ums_id_fingerprint, None)
