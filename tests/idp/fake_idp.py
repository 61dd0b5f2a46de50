#!/usr/bin/env python3
"""A local stand-in for Microsoft Entra ID (Azure AD v2.0) for the aksspark-tokend tests.

It serves, over HTTPS with a throwaway CA made by the `openssl` CLI:

  POST /{tenant}/oauth2/v2.0/devicecode             device authorization (RFC 8628)
  POST /{tenant}/oauth2/v2.0/token                  device-code and refresh-token grants
  GET  /{tenant}/v2.0/.well-known/openid-configuration (and /{tenant}/discovery/v2.0/keys)
  GET  /api/..., /apis/..., /version, /oidc/userinfo  a Kubernetes API stand-in: needs
                                                    "Authorization: Bearer <valid token>"
  GET|POST /_admin/<op>                             the methods below, for the CLI and demos

Answers look like AAD's (see /work/shared/spec/aad.md): errors are HTTP 400 with `error`,
`error_description` ("AADSTSnnnnn: text\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\n
Timestamp: ..."), `error_codes`, `timestamp`, `trace_id`, `correlation_id` (the request's
`client-request-id` header when it sent one). Refresh tokens rotate: each one works once, the
old one then gets invalid_grant (AADSTS70008); revoke(user) makes that user's refresh tokens
fail with invalid_grant (AADSTS50173). Access tokens are JWT-shaped (upn, name, tid, oid, exp,
iat, nbf) and stay valid until they expire, as AAD's do. Every response says
"Connection: close" (unless set(keepalive=True)), so a client never reuses a connection and a
queued fault hits exactly the request it was meant for.

Use from a test (add tests/idp to sys.path):

    from fake_idp import FakeIdp
    idp = FakeIdp(tmpdir, lifetime=30)
    idp.start()                       # serving when it returns; idp.url, idp.ca_file
    ...                               # point the daemon at idp.url with ca_file = idp.ca_file
    codes = idp.wait_pending(timeout=10)      # user codes waiting for a person
    idp.approve(codes[0], user="alice@contoso.com")
    idp.queue_fault("503", retry_after=2)     # the next token request gets a 503
    idp.stop()

Faults (queue_fault kinds, FIFO per endpoint "token", "devicecode", "api", "openid"):
"500", "503", "429" (Retry-After: seconds, or an HTTP date with retry_after_date=True, or a
string sent as is), "hang" (no answer until stop()), "close" (closed without an answer),
"reset" (TCP RST), "html" (a 200 captive-portal page), "badjson", "truncated" (Content-Length
promises more than is sent), "huge" (an 8 MiB body, streamed), and "aad:<error>[:<code>]" for
any AAD error answer (e.g. "aad:interaction_required:50076"). A faulted request changes no
state: no code is used, no token rotates, no poll is counted.

From a shell:

    python3 tests/idp/fake_idp.py --dir DIR [--port 0] [--lifetime SECONDS]
        writes DIR/ca.pem, prints "READY https://127.0.0.1:PORT", writes DIR/url; SIGTERM stops
    python3 tests/idp/fake_idp.py --dir DIR admin pending
    python3 tests/idp/fake_idp.py --dir DIR admin approve [user_code=XXXX] [user=bob@contoso.com]
    python3 tests/idp/fake_idp.py --dir DIR admin fault kind=503 retry_after=5
    python3 tests/idp/fake_idp.py --dir DIR admin set lifetime=120 refresh_in=60
    python3 tests/idp/fake_idp.py --dir DIR admin requests

Python 3 standard library only.
"""

import argparse
import base64
import email.utils
import hashlib
import http.server
import json
import os
import random
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
DEFAULT_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FAULT_KINDS = ("500", "503", "429", "hang", "close", "reset", "html", "badjson", "truncated",
               "huge")
ENDPOINTS = ("token", "devicecode", "api", "openid")
SLOW_DOWN_SLACK = 0.25  # seconds of timer jitter forgiven before answering slow_down
MAX_BODY = 1 << 20

_UNSET = object()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt_part(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _utc_stamp(t):
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))


def _looks_like_guid(s):
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


def make_tls_files(directory):
    """Create (once) a CA and a server certificate for 127.0.0.1/localhost in directory.
    Returns (ca_file, cert_file, key_file)."""
    ca_key, ca_pem = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, cert = os.path.join(directory, "server.key"), os.path.join(directory, "server.pem")
    if all(os.path.exists(p) for p in (ca_key, ca_pem, key, cert)):
        return ca_pem, cert, key
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        def run(*args):
            subprocess.run(("openssl",) + args, cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
            "-subj", "/CN=aksspark-tokend test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
        run("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
        with open(os.path.join(tmp, "ext.cnf"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid,issuer\n"
                    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "825", "-extfile", "ext.cnf")
        for name in ("ca.key", "server.key", "server.pem", "ca.pem"):  # ca.pem last
            os.replace(os.path.join(tmp, name), os.path.join(directory, name))
    return ca_pem, cert, key


class _Abort(Exception):
    """The handler has already dealt with the connection (fault); write nothing more."""


class _DeviceCode:
    def __init__(self, device_code, user_code, client_id, tenant, scope, expires_in, interval):
        self.device_code, self.user_code = device_code, user_code
        self.client_id, self.tenant, self.scope = client_id, tenant, scope
        self.issued = time.monotonic()
        self.expires_in, self.interval = expires_in, interval
        self.state = "pending"   # pending | approved | declined | used
        self.user = None
        self.last_poll = None
        self.polls = []          # monotonic times of counted polls

    def expired(self):
        return time.monotonic() - self.issued >= self.expires_in


class _RefreshToken:
    def __init__(self, user, client_id, tenant, scope):
        self.user, self.client_id, self.tenant, self.scope = user, client_id, tenant, scope
        self.state = "valid"     # valid | used | revoked
        self.issued = time.time()


class FakeIdp:
    def __init__(self, directory, lifetime=30, port=0, host="127.0.0.1", tls=True,
                 verbose=False):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.host, self.port, self.tls, self.verbose = host, port, tls, verbose
        self.ca_file = None
        self.url = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self._settings = dict(lifetime=lifetime, refresh_in=None, interval=1,
                              numbers_as_strings=False, devicecode_expires_in=900,
                              auto_approve_user=None, client_ids=None, enforce_interval=True,
                              keepalive=False, huge_bytes=8 << 20, hang_seconds=3600.0,
                              awkward_tokens=False, date_offset=0, api_expiry_leeway=0.0)
        self._device_codes = {}   # device_code -> _DeviceCode
        self._refresh = {}        # refresh token -> _RefreshToken
        self._access = {}         # access token -> (user, exp)
        self._secrets = []        # every secret issued, in order
        self._faults = {e: [] for e in ENDPOINTS}
        self._random = None       # (rate, kinds, endpoints, Random)
        self._log = []

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self):
        """Serve in a background thread; returns once serving. After stop(), start() serves
        again on the same port with the same tokens (an outage, not a new provider)."""
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"idp": self})
        server = http.server.ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        server.handle_error = self._handle_error
        scheme = "http"
        if self.tls:
            self.ca_file, cert, key = make_tls_files(self.dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            # The handshake happens in the connection's thread (_Handler.setup), so a client
            # that connects and says nothing cannot stall the accept loop.
            server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
            scheme = "https"
        self._server = server
        host = server.server_address[0]
        self.port = server.server_address[1]
        self.url = "%s://%s:%d" % (scheme, "[%s]" % host if ":" in host else host, self.port)
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if not self._server:
            return
        self._stopping.set()   # ends every hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _handle_error(self, request, client_address):
        if self.verbose:
            import traceback
            traceback.print_exc()

    # ---- configuration and control --------------------------------------------------------

    def set(self, **kw):
        """Change settings for what happens next: lifetime (s), refresh_in (s or None),
        interval (s), numbers_as_strings, devicecode_expires_in (s), auto_approve_user,
        client_ids (None = any client, else the list that exists), enforce_interval (answer
        slow_down), keepalive, huge_bytes, hang_seconds, awkward_tokens (refresh tokens in
        standard base64 with '+', '/' and '=', to catch missing URL-encoding), date_offset
        (seconds added to the Date header of every answer: a provider whose clock, or ours,
        is off), api_expiry_leeway (s the API stand-in still accepts a token after its expiry:
        a request sent just before the expiry, or a real API server's token cache; 0 by
        default)."""
        with self._lock:
            for k, v in kw.items():
                if k not in self._settings:
                    raise TypeError("unknown setting %r" % k)
                self._settings[k] = v

    def settings(self):
        with self._lock:
            return dict(self._settings)

    def pending_device_codes(self):
        with self._lock:
            return [c.user_code for c in self._device_codes.values()
                    if c.state == "pending" and not c.expired()]

    def wait_pending(self, timeout=10.0):
        """The pending user codes, waiting up to timeout seconds for at least one."""
        deadline = time.monotonic() + timeout
        while True:
            codes = self.pending_device_codes()
            if codes or time.monotonic() >= deadline:
                return codes
            time.sleep(0.02)

    def _find_user_code(self, user_code):
        for c in self._device_codes.values():
            if c.user_code == user_code:
                return c
        return None

    def approve(self, user_code=None, user="alice@contoso.com"):
        """Approve one pending code (or every pending one when user_code is None).
        Returns how many were approved."""
        with self._lock:
            codes = ([self._find_user_code(user_code)] if user_code is not None
                     else list(self._device_codes.values()))
            n = 0
            for c in codes:
                if c and c.state == "pending" and not c.expired():
                    c.state, c.user = "approved", user
                    n += 1
            return n

    def decline(self, user_code=None):
        with self._lock:
            codes = ([self._find_user_code(user_code)] if user_code is not None
                     else list(self._device_codes.values()))
            n = 0
            for c in codes:
                if c and c.state == "pending":
                    c.state = "declined"
                    n += 1
            return n

    def revoke(self, user):
        """Every refresh token of user now gets invalid_grant (AADSTS50173). Returns the count."""
        with self._lock:
            n = 0
            for rt in self._refresh.values():
                if rt.user == user and rt.state == "valid":
                    rt.state = "revoked"
                    n += 1
            return n

    def queue_fault(self, kind, endpoint="token", retry_after=None, count=1,
                    retry_after_date=False, user=None):
        """Fail the next request to endpoint with kind; with user, the next refresh of that
        user's sign-in only (so that another profile's refresh cannot take the fault)."""
        if kind not in FAULT_KINDS and not kind.startswith("aad:"):
            raise ValueError("unknown fault kind %r" % kind)
        if endpoint not in ENDPOINTS:
            raise ValueError("unknown endpoint %r" % endpoint)
        with self._lock:
            for _ in range(count):
                self._faults[endpoint].append(
                    {"kind": kind, "retry_after": retry_after, "date": retry_after_date,
                     "user": user})

    def random_faults(self, rate, kinds=FAULT_KINDS, seed=0, endpoints=("token",),
                      retry_after=None):
        """From now on, each request to endpoints fails with a random kind with probability
        rate (after any queued faults). rate 0 turns it off. Deterministic for a seed."""
        with self._lock:
            self._random = (rate, list(kinds), tuple(endpoints), retry_after,
                            random.Random(seed)) if rate > 0 else None

    def clear_faults(self):
        with self._lock:
            for q in self._faults.values():
                q.clear()
            self._random = None

    def _take_fault(self, endpoint, refresh_token=None):
        with self._lock:
            q = self._faults.get(endpoint)
            rt = self._refresh.get(refresh_token) if refresh_token else None
            for i, fault in enumerate(q or ()):
                if fault["user"] is None or (rt is not None and rt.user == fault["user"]):
                    return q.pop(i)
            if self._random and endpoint in self._random[2]:
                rate, kinds, _, retry_after, rng = self._random
                if rng.random() < rate:
                    return {"kind": rng.choice(kinds), "retry_after": retry_after,
                            "date": False}
            return None

    def requests(self, endpoint=None):
        """What was asked, oldest first: dicts with t (unix time), endpoint, grant_type,
        status (None when no answer was sent), fault, client_request_id, user, error,
        client_id, tenant, path, scope, client_info. Never a secret."""
        with self._lock:
            return [dict(r) for r in self._log if endpoint in (None, r["endpoint"])]

    def wait_requests(self, predicate, count=1, timeout=10.0):
        """Wait until at least count logged requests satisfy predicate; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [r for r in self.requests() if predicate(r)]
            if len(hits) >= count or time.monotonic() >= deadline:
                return hits
            time.sleep(0.02)

    def token_is_valid(self, token):
        with self._lock:
            entry = self._access.get(token)
            return entry is not None and entry[1] > time.time()

    def access_token_user(self, token):
        with self._lock:
            entry = self._access.get(token)
            return entry[0] if entry else None

    def all_secrets(self):
        """Every access token, refresh token, id token and device code ever issued."""
        with self._lock:
            return list(self._secrets)

    def issued_access_tokens(self):
        with self._lock:
            return list(self._access)

    def valid_refresh_tokens(self, user=None):
        with self._lock:
            return [t for t, rt in self._refresh.items()
                    if rt.state == "valid" and user in (None, rt.user)]

    # ---- protocol -------------------------------------------------------------------------

    def _number(self, n):
        return str(n) if self._settings["numbers_as_strings"] else n

    def _error(self, error, code, text, crid, status=400):
        now = time.time()
        trace = str(uuid.uuid4())
        corr = crid or str(uuid.uuid4())
        stamp = _utc_stamp(now)
        desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            code, text, trace, corr, stamp)
        body = {"error": error, "error_description": desc, "error_codes": [code],
                "timestamp": stamp, "trace_id": trace, "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}
        return status, body

    def _check_client(self, client_id, tenant, crid):
        if not client_id:
            return self._error("invalid_request", 900144, "The request body must contain the "
                               "following parameter: 'client_id'.", crid)
        allowed = self._settings["client_ids"]
        if allowed is not None and client_id not in allowed:
            return self._error("unauthorized_client", 700016, "Application with identifier "
                               "'%s' was not found in the directory '%s'. This can happen if "
                               "the application has not been installed by the administrator "
                               "of the tenant." % (client_id, tenant), crid)
        return None

    def _new_secret(self, s):
        self._secrets.append(s)
        return s

    def _issue_tokens(self, user, client_id, tenant, scope, form, rec):
        s = self._settings
        now = int(time.time())
        lifetime = int(s["lifetime"])
        tid = tenant if _looks_like_guid(tenant) else DEFAULT_TENANT_ID
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-idp:" + user))
        name = user.split("@")[0].capitalize() + " (test)"
        scopes = scope.split()
        resource = next((x.split("/")[0] for x in scopes if "/" in x), "00000003-0000-0000-"
                        "c000-000000000000")
        header = _jwt_part({"typ": "JWT", "alg": "RS256", "kid": "fake-idp"})
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % tid, "iat": now,
                  "nbf": now, "exp": now + lifetime, "appid": client_id, "name": name,
                  "oid": oid, "scp": "user.read", "sub": b64url(oid.encode())[:43],
                  "tid": tid, "unique_name": user, "upn": user,
                  "uti": b64url(secrets.token_bytes(16)), "ver": "1.0"}
        access = "%s.%s.%s" % (header, _jwt_part(claims),
                               b64url(secrets.token_bytes(256)))
        self._access[self._new_secret(access)] = (user, now + lifetime)
        answer = {"token_type": "Bearer",
                  "scope": " ".join(x.replace("/.default", "/user.read") for x in scopes),
                  "expires_in": self._number(lifetime),
                  "ext_expires_in": self._number(lifetime),
                  "access_token": access}
        if s["refresh_in"]:
            answer["refresh_in"] = self._number(int(s["refresh_in"]))
        if "offline_access" in scopes:
            if s["awkward_tokens"]:
                raw = "0.A+/=" + base64.b64encode(secrets.token_bytes(880)).decode()
            else:
                raw = "0.A" + b64url(secrets.token_bytes(880)) + "." + b64url(
                    secrets.token_bytes(24))
            self._refresh[self._new_secret(raw)] = _RefreshToken(user, client_id, tenant, scope)
            answer["refresh_token"] = raw
        if "openid" in scopes:
            idc = {"aud": client_id, "iss": "%s/%s/v2.0" % (self.url, tid), "iat": now,
                   "nbf": now, "exp": now + 3600, "name": name, "oid": oid,
                   "preferred_username": user, "sub": claims["sub"], "tid": tid, "ver": "2.0"}
            answer["id_token"] = self._new_secret("%s.%s.%s" % (
                header, _jwt_part(idc), b64url(secrets.token_bytes(64))))
        if form.get("client_info") == "1":
            answer["client_info"] = b64url(json.dumps({"uid": oid, "utid": tid}).encode())
        rec["user"] = user
        return 200, answer

    def _devicecode(self, tenant, form, crid, rec):
        with self._lock:
            s = self._settings
            client_id, scope = form.get("client_id", ""), form.get("scope", "")
            rec["client_id"], rec["scope"] = client_id, scope
            err = self._check_client(client_id, tenant, crid)
            if err:
                return err
            if not scope.strip():
                return self._error("invalid_request", 900144, "The request body must contain "
                                   "the following parameter: 'scope'.", crid)
            alphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"
            while True:
                user_code = "".join(secrets.choice(alphabet) for _ in range(9))
                if not self._find_user_code(user_code):
                    break
            device_code = self._new_secret("DAQABAAEAAAD" + b64url(secrets.token_bytes(120)))
            code = _DeviceCode(device_code, user_code, client_id, tenant, scope,
                               s["devicecode_expires_in"], s["interval"])
            self._device_codes[device_code] = code
            if s["auto_approve_user"]:
                code.state, code.user = "approved", s["auto_approve_user"]
            return 200, {
                "user_code": user_code, "device_code": device_code,
                "verification_uri": VERIFICATION_URI,
                "expires_in": self._number(int(s["devicecode_expires_in"])),
                "interval": self._number(int(s["interval"])),
                "message": "To sign in, use a web browser to open the page %s and enter the "
                           "code %s to authenticate." % (VERIFICATION_URI, user_code)}

    def _token(self, tenant, form, crid, rec):
        with self._lock:
            grant = form.get("grant_type", "")
            client_id = form.get("client_id", "")
            rec["grant_type"], rec["client_id"] = grant or None, client_id
            rec["scope"], rec["client_info"] = form.get("scope"), form.get("client_info")
            if not grant:
                return self._error("invalid_request", 900144, "The request body must contain "
                                   "the following parameter: 'grant_type'.", crid)
            err = self._check_client(client_id, tenant, crid)
            if err:
                return err
            if grant == DEVICE_GRANT:
                return self._device_grant(tenant, form, crid, rec)
            if grant == "refresh_token":
                return self._refresh_grant(tenant, form, crid, rec)
            return self._error("unsupported_grant_type", 70003, "The app requested an "
                               "unsupported grant type '%s'." % grant[:40], crid)

    def _device_grant(self, tenant, form, crid, rec):
        code = self._device_codes.get(form.get("device_code", ""))
        if code is None or code.client_id != form.get("client_id"):
            return self._error("bad_verification_code", 70018, "The provided value for the "
                               "input parameter 'device_code' is not valid.", crid)
        rec["user"] = code.user
        if code.state == "used":
            return self._error("invalid_grant", 54005, "OAuth2 Authorization code was already "
                               "redeemed, please retry with a new valid code or use an "
                               "existing refresh token.", crid)
        if code.expired():
            return self._error("expired_token", 70020, "The provided value for the input "
                               "parameter 'device_code' is not valid. This device code has "
                               "expired.", crid)
        now = time.monotonic()
        too_fast = (code.last_poll is not None and self._settings["enforce_interval"] and
                    now - code.last_poll < code.interval - SLOW_DOWN_SLACK)
        code.last_poll = now
        code.polls.append(now)
        if too_fast:
            code.interval += 5
            return self._error("slow_down", 70016, "OAuth 2.0 device flow error. Polling too "
                               "fast: slow down and poll every %d seconds." % code.interval,
                               crid)
        if code.state == "declined":
            return self._error("authorization_declined", 70000, "The end user denied the "
                               "authorization request.", crid)
        if code.state == "pending":
            return self._error("authorization_pending", 70016, "OAuth 2.0 device flow error. "
                               "Authorization is pending. Continue polling.", crid)
        code.state = "used"
        return self._issue_tokens(code.user, code.client_id, tenant, code.scope, form, rec)

    def _refresh_grant(self, tenant, form, crid, rec):
        token = form.get("refresh_token", "")
        rt = self._refresh.get(token)
        if rt is None or rt.client_id != form.get("client_id"):
            return self._error("invalid_grant", 9002313, "Invalid request. Request is "
                               "malformed or invalid.", crid)
        rec["user"] = rt.user
        if rt.state == "revoked":
            return self._error("invalid_grant", 50173, "The provided grant has expired due to "
                               "it being revoked, a fresh auth token is needed. The user might "
                               "have changed or reset their password. The grant was issued on "
                               "'%s' and the TokensValidFrom date (before which tokens are not "
                               "valid) for this user is '%s'." % (
                                   _utc_stamp(rt.issued), _utc_stamp(time.time())), crid)
        if rt.state == "used":
            return self._error("invalid_grant", 70008, "The provided authorization code or "
                               "refresh token has expired due to inactivity. Send a new "
                               "interactive authorization request for this user and "
                               "resource.", crid)
        rt.state = "used"
        scope = form.get("scope") or rt.scope
        if "offline_access" not in scope.split():
            scope += " offline_access"   # AAD keeps the refresh token once it was granted
        return self._issue_tokens(rt.user, rt.client_id, tenant, scope, form, rec)

    def _discovery(self, tenant):
        base = "%s/%s" % (self.url, tenant)
        return {
            "issuer": base + "/v2.0",
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "token_endpoint": base + "/oauth2/v2.0/token",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "end_session_endpoint": base + "/oauth2/v2.0/logout",
            "userinfo_endpoint": self.url + "/oidc/userinfo",
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token",
                                         "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post",
                                                      "private_key_jwt",
                                                      "client_secret_basic"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name",
                                 "preferred_username", "oid", "tid", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _kube(self, path, bearer, rec):
        with self._lock:
            user = self._access.get(bearer, (None, 0))
            ok = bearer is not None and user[1] + self._settings["api_expiry_leeway"] > rec["t"]
            rec["user"] = user[0]
            # Which token, without the token: the tests count the tokens a client went through.
            rec["token_id"] = hashlib.sha256(bearer.encode()).hexdigest()[:12] if bearer else None
            rec["token_exp"] = user[1] if user[0] else None
        if not ok:
            return 401, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Failure", "message": "Unauthorized",
                         "reason": "Unauthorized", "code": 401}
        parts = [p for p in path.split("/") if p]
        if path == "/oidc/userinfo":
            return 200, {"sub": user[0], "name": user[0], "preferred_username": user[0]}
        if parts == ["version"]:
            return 200, {"major": "1", "minor": "28", "gitVersion": "v1.28.0",
                         "gitCommit": "0" * 40, "gitTreeState": "clean",
                         "buildDate": "2023-08-15T00:00:00Z", "goVersion": "go1.20.7",
                         "compiler": "gc", "platform": "linux/amd64"}
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"],
                         "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                         "serverAddress": "127.0.0.1:443"}]}
        if parts == ["apis"]:
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        if parts == ["api", "v1"]:
            res = [{"name": n, "singularName": s, "namespaced": ns, "kind": k,
                    "verbs": ["get", "list"], "shortNames": sh}
                   for n, s, ns, k, sh in (("pods", "pod", True, "Pod", ["po"]),
                                           ("namespaces", "namespace", False, "Namespace",
                                            ["ns"]))]
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                         "resources": res}
        kind = {"pods": "PodList", "namespaces": "NamespaceList"}.get(parts[-1], "List")
        return 200, {"kind": kind, "apiVersion": "v1",
                     "metadata": {"resourceVersion": "1"}, "items": []}

    # ---- admin (HTTP mirror of the methods) -----------------------------------------------

    def _admin(self, op, args):
        def num(v):
            if isinstance(v, str):
                if v.lower() in ("none", "null", ""):
                    return None
                if v.lower() in ("true", "false"):
                    return v.lower() == "true"
                try:
                    return int(v)
                except ValueError:
                    try:
                        return float(v)
                    except ValueError:
                        return v
            return v
        if op == "pending":
            return {"user_codes": self.pending_device_codes()}
        if op == "approve":
            return {"approved": self.approve(args.get("user_code"),
                                             args.get("user", "alice@contoso.com"))}
        if op == "decline":
            return {"declined": self.decline(args.get("user_code"))}
        if op == "revoke":
            return {"revoked": self.revoke(args["user"])}
        if op == "set":
            self.set(**{k: num(v) for k, v in args.items()})
            return {"settings": self.settings()}
        if op == "fault":
            self.queue_fault(str(args["kind"]), args.get("endpoint", "token"),
                             num(args.get("retry_after")), int(args.get("count", 1)),
                             bool(num(args.get("retry_after_date", False))))
            return {}
        if op == "random_faults":
            kinds = args.get("kinds", list(FAULT_KINDS))
            if isinstance(kinds, str):
                kinds = kinds.split(",")
            self.random_faults(float(args.get("rate", 0)), kinds, num(args.get("seed", 0)))
            return {}
        if op == "clear_faults":
            self.clear_faults()
            return {}
        if op == "requests":
            return {"requests": self.requests(args.get("endpoint"))}
        if op == "token_is_valid":
            return {"valid": self.token_is_valid(args.get("token", ""))}
        if op == "secrets":
            return {"secrets": self.all_secrets()}
        raise KeyError(op)


class _Handler(http.server.BaseHTTPRequestHandler):
    idp = None   # set by FakeIdp.start() on a subclass
    protocol_version = "HTTP/1.1"
    timeout = 30

    def version_string(self):
        return "fake-idp/1.0"

    def date_time_string(self, timestamp=None):
        offset = self.idp._settings["date_offset"]
        return email.utils.formatdate((time.time() if timestamp is None else timestamp) + offset, usegmt=True)

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, fmt, *args):
        if self.idp.verbose:
            sys.stderr.write("fake-idp: %s\n" % (fmt % args))

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _Abort:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    # ---- plumbing -----------------------------------------------------------------------

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise _Abort()
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, ctype="application/json; charset=utf-8", headers=(),
              length=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        crid = self.headers.get("client-request-id")
        if crid:
            self.send_header("client-request-id", crid)
        for k, v in headers:
            self.send_header(k, v)
        if not self.idp._settings["keepalive"] or length is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _drop(self, reset):
        sock = self.connection
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        sock.close()
        raise _Abort()

    def _apply_fault(self, fault, rec):
        kind, idp = fault["kind"], self.idp
        crid = self.headers.get("client-request-id")
        retry = fault["retry_after"]
        headers = []
        if retry is not None:
            if fault["date"]:
                retry = email.utils.formatdate(time.time() + float(retry), usegmt=True)
            headers.append(("Retry-After", str(retry)))
        if kind.startswith("aad:"):
            _, error, *code = kind.split(":")
            status, body = idp._error(error, int(code[0]) if code else 50000,
                                      "Injected error %s." % error, crid)
            rec["status"], rec["error"] = status, error
            return self._send(status, body, headers=headers)
        if kind in ("500", "503", "429"):
            status = int(kind)
            error = {"500": "server_error", "503": "temporarily_unavailable",
                     "429": "temporarily_unavailable"}[kind]
            status, body = idp._error(error, {"500": 50000, "503": 90033, "429": 90033}[kind],
                                      "There was an error issuing a token or an issue with "
                                      "our sign-in service. Please try again.", crid, status)
            rec["status"] = status
            return self._send(status, body, headers=headers)
        if kind == "html":
            rec["status"] = 200
            page = (b"<!DOCTYPE html><html><head><title>Wi-Fi login</title></head><body>"
                    b"<h1>Welcome to Hotel Wi-Fi</h1><p>Please accept the terms of use to "
                    b"continue.</p><form method=post><button>Accept</button></form></body>"
                    b"</html>\n")
            return self._send(200, page, ctype="text/html; charset=utf-8")
        if kind == "badjson":
            rec["status"] = 200
            return self._send(200, b'{"token_type": "Bearer", "expires_in": 3599,,,\n')
        if kind == "truncated":
            rec["status"] = 200
            self._send(200, b'{"token_type": "Bearer", "scope": "user.read", "expires_in": 35',
                       length=4096)
            self.wfile.flush()
            self._drop(reset=False)
        if kind == "huge":
            rec["status"] = 200
            total = int(idp._settings["huge_bytes"])
            head, tail = b'{"token_type": "Bearer", "padding": "', b'"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(total))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            chunk = b"A" * 65536
            left = total - len(head) - len(tail)
            try:
                self.wfile.write(head)
                while left > 0:
                    n = min(left, len(chunk))
                    self.wfile.write(chunk[:n])
                    left -= n
                self.wfile.write(tail)
            except OSError:
                pass   # the client stopped reading at its cap: as it should
            raise _Abort()
        if kind == "hang":
            idp._stopping.wait(float(idp._settings["hang_seconds"]))
            self._drop(reset=False)
        if kind in ("close", "reset"):
            self._drop(reset=(kind == "reset"))
        raise AssertionError(kind)

    def _dispatch(self):
        idp = self.idp
        path, _, query = self.path.partition("?")
        body = self._read_body()
        if path.startswith("/_admin/"):
            return self._dispatch_admin(path[len("/_admin/"):], query, body)
        parts = [p for p in path.split("/") if p]
        tenant = parts[0] if parts else ""
        post = self.command == "POST"
        if post and parts[1:] == ["oauth2", "v2.0", "token"]:
            endpoint = "token"
        elif post and parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            endpoint = "devicecode"
        elif not post and (parts[1:] in (["v2.0", ".well-known", "openid-configuration"],
                                         [".well-known", "openid-configuration"],
                                         ["discovery", "v2.0", "keys"])):
            endpoint = "openid"
        elif not post and (parts[:1] in (["api"], ["apis"], ["version"]) or
                           path == "/oidc/userinfo"):
            endpoint = "api"
        else:
            return self._send(404, {"error": "not_found", "path": path[:200]})
        crid = self.headers.get("client-request-id")
        rec = {"t": time.time(), "endpoint": endpoint, "grant_type": None, "status": None,
               "fault": None, "client_request_id": crid, "user": None, "error": None,
               "client_id": None, "tenant": tenant if endpoint != "api" else None,
               "path": path, "scope": None, "client_info": None,
               "user_agent": self.headers.get("User-Agent")}
        with idp._lock:
            idp._log.append(rec)
        fault = idp._take_fault(endpoint, self._form(body).get("refresh_token")
                                if endpoint == "token" else None)
        if fault:
            with idp._lock:
                rec["fault"] = fault["kind"]
                if endpoint == "token":   # which grant was faulted, without processing it
                    rec["grant_type"] = self._form(body).get("grant_type")
            return self._apply_fault(fault, rec)
        if endpoint == "api":
            auth = self.headers.get("Authorization", "")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            status, answer = idp._kube(path, bearer, rec)
        elif tenant == "bad-tenant":
            status, answer = idp._error("invalid_tenant", 90002, "Tenant '%s' not found. Check "
                                        "to make sure you have the correct tenant ID and are "
                                        "signing into the correct cloud." % tenant, crid)
        elif endpoint == "openid":
            status, answer = 200, (idp._discovery(tenant) if parts[-1] != "keys"
                                   else {"keys": []})
        else:
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            form = self._form(body)
            if ctype != "application/x-www-form-urlencoded":
                status, answer = idp._error("invalid_request", 900144, "The request body must "
                                            "contain the following parameter: 'grant_type'.",
                                            crid)
            elif endpoint == "token":
                status, answer = idp._token(tenant, form, crid, rec)
            else:
                status, answer = idp._devicecode(tenant, form, crid, rec)
        with idp._lock:
            rec["status"] = status
            if isinstance(answer, dict) and status >= 400:
                rec["error"] = answer.get("error") or answer.get("reason")
        self._send(status, answer)

    @staticmethod
    def _form(body):
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return {}
        return dict(pairs)

    def _dispatch_admin(self, op, query, body):
        args = dict(urllib.parse.parse_qsl(query))
        try:
            if body and self.headers.get("Content-Type", "").startswith("application/json"):
                args.update(json.loads(body))
            elif body:
                args.update(self._form(body))
            answer = self.idp._admin(op, args)
        except KeyError as e:
            return self._send(404, {"ok": False, "error": "unknown op or missing %s" % e})
        except (TypeError, ValueError) as e:
            return self._send(400, {"ok": False, "error": str(e)})
        answer["ok"] = True
        self._send(200, answer)


# ---- command line -----------------------------------------------------------------------

def _admin_client(directory, op, pairs):
    with open(os.path.join(directory, "url")) as f:
        url = f.read().strip()
    ctx = ssl.create_default_context(cafile=os.path.join(directory, "ca.pem"))
    args = dict(p.split("=", 1) for p in pairs)
    req = urllib.request.Request("%s/_admin/%s" % (url, op), data=json.dumps(args).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            print(json.dumps(json.load(r), indent=2))
        return 0
    except urllib.error.HTTPError as e:
        print(e.read().decode(), file=sys.stderr)
        return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Local fake of Azure AD for aksspark-tokend tests.")
    ap.add_argument("--dir", required=True, help="where ca.pem, url and the keys live")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--lifetime", type=int, default=30, help="access-token lifetime (s)")
    ap.add_argument("--interval", type=int, default=1, help="device-code polling interval (s)")
    ap.add_argument("--plain-http", action="store_true", help="serve http:// (debugging)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    ap.add_argument("admin", nargs="*", metavar="admin OP [key=value ...]",
                    help="talk to a running fake at DIR instead of serving")
    args = ap.parse_args(argv)
    if args.admin:
        if args.admin[0] != "admin" or len(args.admin) < 2:
            ap.error("expected: admin OP [key=value ...]")
        return _admin_client(args.dir, args.admin[1], args.admin[2:])

    idp = FakeIdp(args.dir, lifetime=args.lifetime, port=args.port, host=args.host,
                  tls=not args.plain_http, verbose=args.verbose)
    idp.set(interval=args.interval)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    idp.start()
    tmp = os.path.join(idp.dir, "url.tmp")
    with open(tmp, "w") as f:
        f.write(idp.url + "\n")
    os.replace(tmp, os.path.join(idp.dir, "url"))
    print("READY " + idp.url, flush=True)
    while not stop.wait(1):
        pass
    idp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
