#!/usr/bin/env python3
"""A local stand-in for Microsoft Entra ID (Azure AD v2.0) for the aksspark-tokend tests.

It serves, over HTTPS with a throwaway CA made by the `openssl` CLI:

  POST /{tenant}/oauth2/v2.0/devicecode             device authorization (RFC 8628)
  POST /{tenant}/oauth2/v2.0/token                  device-code, refresh-token, authorization-code
                                                    (PKCE S256 checked) and client-credentials
                                                    grants (client_secret, a client_assertion
                                                    signed with a registered certificate, or a
                                                    federated token from issue_federated_token)
  GET  /{tenant}/oauth2/v2.0/authorize              browser sign-in: browse(url, user=...) plays
                                                    the person and follows the redirect back
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

Service principals: add_client_secret(client_id) -> secret; make_client_certificate(dir) ->
(pem, cert) and add_client_certificate(client_id, cert); add_federated_credential(client_id,
subject) and issue_federated_token(subject, lifetime) for workload identity. Their tokens
carry idtyp app, appid and roles, and no refresh token. Managed identity: FakeManagedIdentity
(idp, kind="vm"|"appservice"|"arc").start() serves IMDS, App Service or Arc on loopback HTTP.
Every secret, client secret, assertion and key issued is in all_secrets().

Faults (queue_fault kinds, FIFO per endpoint "token", "devicecode", "api", "openid",
"authorize" (an "aad:" fault there comes back to the app as error= on the redirect), "imds"):
"500", "503", "429" (Retry-After: seconds, or an HTTP date with retry_after_date=True, or a
string sent as is), "hang" (no answer until stop()), "close" (closed without an answer),
"reset" (TCP RST), "html" (a 200 captive-portal page), "badjson", "truncated" (Content-Length
promises more than is sent), "huge" (an 8 MiB body, streamed), "delay:<seconds>" (held that long, then answered as
usual), and "aad:<error>[:<code>]" for
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
import html
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
ENDPOINTS = ("token", "devicecode", "api", "openid", "authorize", "imds")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
AUTH_CODE_LIFETIME = 600
ASSERTION_SKEW = 300   # seconds of clock difference AAD forgives on nbf/exp
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


def make_tls_files(directory, host="127.0.0.1"):
    """Create (once) a CA and a server certificate for 127.0.0.1/localhost (and host, when it
    is another IP address) in directory. Returns (ca_file, cert_file, key_file)."""
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
                    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,"
                    # MSAL (inside az) asks this host for instance discovery, whatever the
                    # cloud; AzureCliProxy sends it here.
                    "DNS:login.microsoftonline.com%s\n"
                    % ("" if host in ("127.0.0.1", "::1", "localhost", "") else ",IP:" + host))
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "825", "-extfile", "ext.cnf")
        for name in ("ca.key", "server.key", "server.pem", "ca.pem"):  # ca.pem last
            os.replace(os.path.join(tmp, name), os.path.join(directory, name))
    return ca_pem, cert, key


def _openssl(*args, data=None):
    return subprocess.run(("openssl",) + args, input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)


def _b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def cert_thumbprints(cert_pem):
    """(x5t, x5t#S256) of the first certificate in a PEM file: base64url SHA-1 and SHA-256 of
    its DER form, as a client assertion's header names it."""
    r = _openssl("x509", "-in", cert_pem, "-outform", "DER")
    if r.returncode != 0:
        raise ValueError("not a certificate: %s" % cert_pem)
    return b64url(hashlib.sha1(r.stdout).digest()), b64url(hashlib.sha256(r.stdout).digest())


def make_client_certificate(directory, name="client", password=None, days=30, bits=2048):
    """A self-signed RSA certificate for a service principal. Returns (pem, cert): pem holds
    the certificate and the private key (encrypted with password when given), mode 0600, as
    client_certificate wants it; cert is the certificate alone (what an admin uploads)."""
    key, cert = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    both = os.path.join(directory, name + ".pem")
    args = ["req", "-x509", "-newkey", "rsa:%d" % bits, "-keyout", key, "-out", cert,
            "-days", str(days), "-subj", "/CN=%s" % name]
    args += ["-passout", "pass:" + password] if password else ["-nodes"]
    r = _openssl(*args)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode(errors="replace"))
    fd = os.open(both, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        for part in (cert, key):
            with open(part) as f:
                out.write(f.read())
    os.chmod(key, 0o600)
    return both, cert


def _rsa_sign(key_pem, data, pss=False, password=None):
    args = ["dgst", "-sha256", "-sign", key_pem]
    if password:
        args += ["-passin", "pass:" + password]
    if pss:
        args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
    r = _openssl(*args, data=data)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode(errors="replace"))
    return r.stdout


def _rsa_verify(public_pem, data, signature, pss=False):
    """True when signature is a valid RS256 (or PS256, salt 32) signature of data."""
    with tempfile.TemporaryDirectory() as tmp:
        pub, sig = os.path.join(tmp, "pub.pem"), os.path.join(tmp, "sig")
        with open(pub, "wb") as f:
            f.write(public_pem)
        with open(sig, "wb") as f:
            f.write(signature)
        args = ["dgst", "-sha256", "-verify", pub, "-signature", sig]
        if pss:
            args += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"]
        return _openssl(*args, data=data).returncode == 0


def _public_key_of(pem_path):
    r = _openssl("x509", "-in", pem_path, "-pubkey", "-noout")
    if r.returncode != 0:
        raise ValueError("not a certificate: %s" % pem_path)
    return r.stdout


def make_client_assertion(pem, client_id, audience, alg="PS256", lifetime=600, now=None,
                          jti=None, password=None, sub=None):
    """A client assertion as MSAL makes one (for tests of this fake): a JWT signed with the
    private key in pem, its header naming the certificate (RS256 + x5t, PS256 + x5t#S256)."""
    now = int(time.time()) if now is None else int(now)
    x5t, x5t256 = cert_thumbprints(pem)
    header = {"alg": alg, "typ": "JWT"}
    header["x5t" if alg == "RS256" else "x5t#S256"] = x5t if alg == "RS256" else x5t256
    claims = {"aud": audience, "iss": client_id, "sub": sub or client_id,
              "jti": jti or str(uuid.uuid4()), "nbf": now, "iat": now, "exp": now + lifetime}
    signing_input = ("%s.%s" % (_jwt_part(header), _jwt_part(claims))).encode()
    sig = _rsa_sign(pem, signing_input, pss=(alg == "PS256"), password=password)
    return signing_input.decode() + "." + b64url(sig)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


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


class _App:
    """A confidential client (service principal) and the credentials it may present."""

    def __init__(self, client_id):
        self.client_id = client_id
        self.object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-idp-sp:" + client_id))
        self.secrets = []
        self.certificates = {}   # x5t or x5t#S256 -> public key PEM (bytes)
        self.federated = []      # (issuer, subject, audience)
        self.roles = ["Cluster.Access"]


class _AuthCode:
    def __init__(self, client_id, tenant, redirect_uri, challenge, scope, user, claims):
        self.client_id, self.tenant, self.redirect_uri = client_id, tenant, redirect_uri
        self.challenge, self.scope, self.user, self.claims = challenge, scope, user, claims
        self.issued = time.monotonic()
        self.used = False
        self.nonce = None   # the authorize request's, put into the id_token as Azure AD does


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
        self._apps = {}           # client_id -> _App (confidential clients and their credentials)
        self._auth_codes = {}     # authorization code -> _AuthCode
        self._jtis = set()        # client-assertion ids seen (each may be used once)
        self._federation_key = None
        self._random = None       # (rate, kinds, endpoints, Random)
        self._log = []
        self._wire = []

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
            self.ca_file, cert, key = make_tls_files(self.dir, self.host)
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
                    retry_after_date=False, user=None, claims=None):
        """Fail the next request to endpoint with kind; with user, the next refresh of that
        user's sign-in only (so that another profile's refresh cannot take the fault). Kind
        "aad:<error>:<code>[:<suberror>]" answers that AAD error (with claims, a Conditional
        Access claims challenge, when given)."""
        if kind not in FAULT_KINDS and not kind.startswith(("aad:", "delay:")):
            raise ValueError("unknown fault kind %r" % kind)
        if endpoint not in ENDPOINTS:
            raise ValueError("unknown endpoint %r" % endpoint)
        with self._lock:
            for _ in range(count):
                self._faults[endpoint].append(
                    {"kind": kind, "retry_after": retry_after, "date": retry_after_date,
                     "user": user, "claims": claims})

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
                            "date": False, "claims": None}
            return None

    def requests(self, endpoint=None):
        """What was asked, oldest first: dicts with t (unix time), endpoint, grant_type,
        status (None when no answer was sent), fault, client_request_id, user, error,
        client_id, tenant, path, scope, client_info, auth (secret, certificate, federated or
        for managed identity the kind), lib_capability (the x-ms-lib-capability header),
        claims and redirect_uri (authorize). Never a secret."""
        with self._lock:
            return [dict(r) for r in self._log if endpoint in (None, r["endpoint"])]

    def _record_wire(self, handler, path, query, body):
        ctype = handler.headers.get("Content-Type", "")
        entry = {"method": handler.command, "path": path,
                 "query": urllib.parse.parse_qsl(query, keep_blank_values=True),
                 "headers": [(k, v) for k, v in handler.headers.items()],
                 "form": (urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                          if ctype.startswith("application/x-www-form-urlencoded") else None)}
        with self._lock:
            self._wire.append(entry)

    def wire(self):
        """Every request as it came, oldest first: method, path, query and form as lists of
        pairs, headers as a list of pairs. Holds secrets (codes, refresh tokens, client
        secrets, assertions): for the wire comparison only, never to be printed."""
        with self._lock:
            return [dict(e) for e in self._wire]

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

    # ---- service principals, federation, browser -----------------------------------------

    def _app(self, client_id):
        app = self._apps.get(client_id)
        if app is None:
            app = self._apps[client_id] = _App(client_id)
        return app

    def add_client_secret(self, client_id, secret=None):
        """Register a service principal's client secret (a new random one like AAD's when
        secret is None). Returns the secret."""
        with self._lock:
            if secret is None:
                secret = "Fk8Q~" + b64url(secrets.token_bytes(27))
            self._app(client_id).secrets.append(self._new_secret(secret))
            return secret

    def add_client_certificate(self, client_id, cert_pem):
        """Upload a certificate (PEM file) for client_id. Returns its (x5t, x5t#S256)."""
        thumbs = cert_thumbprints(cert_pem)
        public = _public_key_of(cert_pem)
        with self._lock:
            app = self._app(client_id)
            for t in thumbs:
                app.certificates[t] = public
        return thumbs

    @property
    def federation_issuer(self):
        """The issuer of the service-account tokens issue_federated_token() makes (a cluster's
        OIDC issuer URL)."""
        return "https://oidc.fake-aks.invalid/%s/" % DEFAULT_TENANT_ID

    def add_federated_credential(self, client_id, subject, issuer=None,
                                 audience=FEDERATION_AUDIENCE):
        """Trust tokens from issuer (default: this fake's federation) for subject as client_id."""
        with self._lock:
            self._app(client_id).federated.append(
                (issuer or self.federation_issuer, subject, audience))

    def _federation_keys(self):
        with self._lock:
            if self._federation_key is None:
                key = os.path.join(self.dir, "federation.key")
                if not os.path.exists(key):
                    r = _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                                 "rsa_keygen_bits:2048", "-out", key + ".tmp")
                    if r.returncode != 0:
                        raise RuntimeError(r.stderr.decode(errors="replace"))
                    os.replace(key + ".tmp", key)
                pub = _openssl("pkey", "-in", key, "-pubout").stdout
                self._federation_key = (key, pub)
            return self._federation_key

    def issue_federated_token(self, subject="system:serviceaccount:spark:spark-driver",
                              lifetime=3600, audience=FEDERATION_AUDIENCE, now=None):
        """A Kubernetes service-account token as the kubelet projects it for workload
        identity: RS256, signed by this fake's federation key, aud api://AzureADTokenExchange.
        A negative lifetime makes one that has already expired."""
        key, _ = self._federation_keys()
        now = int(time.time()) if now is None else int(now)
        iat = min(now, now + lifetime - 60)
        header = {"alg": "RS256", "kid": "fake-federation", "typ": "JWT"}
        claims = {"aud": [audience], "exp": now + lifetime, "iat": iat, "nbf": iat,
                  "iss": self.federation_issuer, "sub": subject,
                  "kubernetes.io": {"namespace": subject.split(":")[2:3] and
                                    subject.split(":")[2] or "default",
                                    "serviceaccount": {"name": subject.split(":")[-1],
                                                       "uid": str(uuid.uuid4())}}}
        signing_input = ("%s.%s" % (_jwt_part(header), _jwt_part(claims))).encode()
        token = signing_input.decode() + "." + b64url(_rsa_sign(key, signing_input))
        with self._lock:
            return self._new_secret(token)

    def browse(self, authorize_url, user="alice@contoso.com", decline=False, follow=True,
               timeout=10):
        """Play the person's browser: open authorize_url (a URL on this fake, as the app
        printed it) signed in as user (or declining), then follow the redirect to the app's
        loopback address. Returns a dict: status and location of the fake's answer, and, when
        follow, app_status and app_body of what the app answered the browser."""
        if not authorize_url.startswith(self.url + "/"):
            raise ValueError("not a URL of this identity provider: %r" % authorize_url[:200])
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        req = urllib.request.Request(authorize_url, headers={
            "X-Fake-User": user, "X-Fake-Decision": "decline" if decline else "accept"})
        opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(
            context=ctx))
        try:
            with opener.open(req, timeout=timeout) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        out = {"status": status, "location": headers.get("Location"), "body": body}
        if follow and out["location"]:
            try:
                with urllib.request.urlopen(out["location"], timeout=timeout) as r:
                    out["app_status"], out["app_body"] = r.status, r.read()
            except urllib.error.HTTPError as e:
                out["app_status"], out["app_body"] = e.code, e.read()
        return out

    # ---- protocol -------------------------------------------------------------------------

    def _number(self, n):
        return str(n) if self._settings["numbers_as_strings"] else n

    def _error(self, error, code, text, crid, status=400, suberror=None, claims=None):
        now = time.time()
        trace = str(uuid.uuid4())
        corr = crid or str(uuid.uuid4())
        stamp = _utc_stamp(now)
        desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            code, text, trace, corr, stamp)
        body = {"error": error, "error_description": desc, "error_codes": [code],
                "timestamp": stamp, "trace_id": trace, "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}
        if suberror:
            body["suberror"] = suberror
        if claims:
            body["claims"] = claims
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
            if form.get("_nonce"):
                idc["nonce"] = form["_nonce"]
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
            rec["claims"] = form.get("claims")
            if not grant:
                return self._error("invalid_request", 900144, "The request body must contain "
                                   "the following parameter: 'grant_type'.", crid)
            err = self._check_client(client_id, tenant, crid)
            if err:
                return err
            # MSAL (Go, .NET) sends Azure AD's own short name of the grant; AAD takes both.
            if grant in (DEVICE_GRANT, "device_code"):
                return self._device_grant(tenant, form, crid, rec)
            if grant == "refresh_token":
                return self._refresh_grant(tenant, form, crid, rec)
            if grant == "client_credentials":
                return self._client_credentials(tenant, form, crid, rec)
            if grant == "authorization_code":
                return self._code_grant(tenant, form, crid, rec)
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

    def _issue_app_token(self, client_id, object_id, tenant, resource, rec, roles=(),
                         extra=None):
        """An access token for an application (no person): idtyp app, appid, roles."""
        now = int(time.time())
        lifetime = int(self._settings["lifetime"])
        tid = tenant if _looks_like_guid(tenant) else DEFAULT_TENANT_ID
        header = _jwt_part({"typ": "JWT", "alg": "RS256", "kid": "fake-idp"})
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % tid, "iat": now,
                  "nbf": now, "exp": now + lifetime, "appid": client_id, "appidacr": "1",
                  "idtyp": "app", "oid": object_id, "roles": list(roles), "sub": object_id,
                  "tid": tid, "uti": b64url(secrets.token_bytes(16)), "ver": "1.0"}
        claims.update(extra or {})
        access = "%s.%s.%s" % (header, _jwt_part(claims), b64url(secrets.token_bytes(256)))
        self._access[self._new_secret(access)] = ("app:" + client_id, now + lifetime)
        rec["user"] = "app:" + client_id
        return access, lifetime, now

    def _assertion_error(self, code, text, crid):
        return self._error("invalid_client", code, text, crid, 401)

    def _check_assertion(self, app, tenant, assertion, crid, rec):
        """None when assertion proves app's identity, else the AAD error answer."""
        try:
            h64, c64, s64 = assertion.split(".")
            header, claims = json.loads(_b64url_decode(h64)), json.loads(_b64url_decode(c64))
            signature = _b64url_decode(s64)
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError
        except (ValueError, TypeError, UnicodeDecodeError):
            return self._assertion_error(50027, "JWT token is invalid or malformed.", crid)
        signing_input = ("%s.%s" % (h64, c64)).encode()
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, (int, float)) or not isinstance(nbf, (int, float)):
            return self._assertion_error(50027, "JWT token is invalid or malformed: no exp "
                                         "or nbf.", crid)
        in_time = nbf - ASSERTION_SKEW <= now <= exp + ASSERTION_SKEW
        time_error = self._assertion_error(
            700024, "Client assertion is not within its valid time range. Current time: %s, "
            "assertion valid from %s, expiry time of assertion %s." % (
                _utc_stamp(now), _utc_stamp(nbf), _utc_stamp(exp)), crid)

        if claims.get("iss") != app.client_id:
            # Issued by someone else (a cluster's OIDC issuer): workload identity federation.
            rec["auth"] = "federated"
            _, public = self._federation_keys()
            iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            known = [f for f in app.federated if f[0] == iss]
            if not known or header.get("alg") != "RS256" or not _rsa_verify(
                    public, signing_input, signature):
                return self._error("invalid_request", 700211, "No matching federated identity "
                                   "record found for presented assertion issuer '%s'." %
                                   str(iss)[:200], crid)
            if not in_time:
                return time_error
            known = [f for f in known if f[2] in auds]
            if not known:
                return self._error("invalid_request", 700212, "No matching federated identity "
                                   "record found for presented assertion audience '%s'." %
                                   str(aud)[:200], crid)
            if not [f for f in known if f[1] == sub]:
                return self._error("invalid_request", 700213, "No matching federated identity "
                                   "record found for presented assertion subject '%s'." %
                                   str(sub)[:200], crid)
            return None

        rec["auth"] = "certificate"
        alg = header.get("alg")
        rec["assertion_alg"] = alg
        thumb = header.get("x5t") if alg == "RS256" else header.get("x5t#S256")
        if alg not in ("RS256", "PS256") or not isinstance(thumb, str):
            return self._assertion_error(700027, "Client assertion failed signature "
                                         "validation. [Reason - The algorithm '%s' with key "
                                         "identifier %s is not supported.]" % (
                                             str(alg)[:20], "x5t" if alg == "RS256"
                                             else "x5t#S256"), crid)
        # MSAL Python writes the thumbprint base64url with its '=' padding; Azure AD takes both.
        public = app.certificates.get(thumb.rstrip("="))
        if public is None:
            return self._assertion_error(700027, "Client assertion failed signature "
                                         "validation. [Reason - The key was not found., "
                                         "Thumbprint of key used by client: '%s', Please "
                                         "visit the Azure Portal, Graph Explorer or directly "
                                         "use MS Graph to see configured keys for app Id "
                                         "'%s'.]" % (thumb[:64], app.client_id), crid)
        if not _rsa_verify(public, signing_input, signature, pss=(alg == "PS256")):
            return self._assertion_error(700027, "Client assertion failed signature "
                                         "validation. [Reason - The provided signature value "
                                         "did not match the expected signature value.]", crid)
        if claims.get("sub") != app.client_id:
            return self._assertion_error(700021, "Client assertion application identifier "
                                         "doesn't match 'client_id' parameter.", crid)
        token_url = "%s/%s/oauth2/v2.0/token" % (self.url, tenant)
        if claims.get("aud") != token_url:
            return self._assertion_error(700027, "Client assertion failed signature "
                                         "validation. [Reason - The audience '%s' is not "
                                         "the token endpoint '%s'.]" % (
                                             str(claims.get("aud"))[:200], token_url), crid)
        if not in_time or exp - nbf > 3600 * 24:
            return time_error
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return self._assertion_error(50027, "JWT token is invalid or malformed: no jti.",
                                         crid)
        if jti in self._jtis:
            return self._assertion_error(700025, "The client assertion with jti '%s' was "
                                         "already used: make a new one for each request." %
                                         jti[:64], crid)
        self._jtis.add(jti)
        return None

    def _client_credentials(self, tenant, form, crid, rec):
        client_id = form.get("client_id", "")
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if secret is None and assertion is None:
            return self._error("invalid_client", 7000218, "The request body must contain the "
                               "following parameter: 'client_assertion' or 'client_secret'.",
                               crid, 401)
        if secret is not None and assertion is not None:
            return self._error("invalid_request", 90014, "Both 'client_assertion' and "
                               "'client_secret' were given: send one.", crid)
        # What a client presents is as secret as what it is given: the log scans cover both.
        for presented in (secret, assertion):
            if presented:
                self._new_secret(presented)
        if assertion:
            rec["assertion_sha256"] = hashlib.sha256(assertion.encode()).hexdigest()[:16]
        app = self._apps.get(client_id)
        if app is None:
            return self._error("unauthorized_client", 700016, "Application with identifier "
                               "'%s' was not found in the directory '%s'." % (client_id,
                                                                              tenant), crid)
        if secret is not None:
            rec["auth"] = "secret"
            if not any(secrets.compare_digest(secret.encode(), s.encode())
                       for s in app.secrets):
                return self._error("invalid_client", 7000215, "Invalid client secret "
                                   "provided. Ensure the secret being sent in the request is "
                                   "the client secret value, not the client secret ID, for a "
                                   "secret added to app '%s'." % client_id, crid, 401)
        else:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return self._error("invalid_request", 7000219, "'client_assertion_type' must "
                                   "be '%s'." % ASSERTION_TYPE, crid)
            err = self._check_assertion(app, tenant, assertion, crid, rec)
            if err:
                return err
        # Azure AD ignores the OpenID Connect scopes that MSAL (Go, .NET) adds to every request.
        scopes = [x for x in form.get("scope", "").split()
                  if x not in ("openid", "profile", "offline_access")]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self._error("invalid_scope", 1002012, "The provided value for scope %s is "
                               "not valid. Client credential flows must have a scope value "
                               "with /.default suffixed to the resource identifier "
                               "(application ID URI)." % " ".join(scopes)[:200], crid)
        access, lifetime, _ = self._issue_app_token(
            client_id, app.object_id, tenant, scopes[0][:-len("/.default")], rec, app.roles)
        return 200, {"token_type": "Bearer", "expires_in": self._number(lifetime),
                     "ext_expires_in": self._number(lifetime), "access_token": access}

    def _code_grant(self, tenant, form, crid, rec):
        code = self._auth_codes.get(form.get("code", ""))
        if code is None or code.client_id != form.get("client_id"):
            return self._error("invalid_grant", 9002313, "Invalid request. Request is "
                               "malformed or invalid.", crid)
        rec["user"] = code.user
        if code.used:
            return self._error("invalid_grant", 54005, "OAuth2 Authorization code was already "
                               "redeemed, please retry with a new valid code or use an "
                               "existing refresh token.", crid)
        code.used = True   # one redemption, right or wrong
        if time.monotonic() - code.issued > AUTH_CODE_LIFETIME:
            return self._error("invalid_grant", 70008, "The provided authorization code or "
                               "refresh token has expired due to inactivity. Send a new "
                               "interactive authorization request for this user and "
                               "resource.", crid)
        if form.get("redirect_uri") != code.redirect_uri:
            return self._error("invalid_grant", 50011, "The redirect URI '%s' specified in the "
                               "request does not match the redirect URI used to get the "
                               "authorization code." % str(form.get("redirect_uri"))[:200],
                               crid)
        verifier = form.get("code_verifier", "")
        if verifier:
            self._new_secret(verifier)
        if not (43 <= len(verifier) <= 128) or set(verifier) - set(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"):
            return self._error("invalid_request", 501481, "The Code_Verifier does not match "
                               "the code_challenge supplied in the authorization request.",
                               crid)
        if b64url(hashlib.sha256(verifier.encode()).digest()) != code.challenge:
            return self._error("invalid_grant", 50148, "The code_verifier does not match the "
                               "code_challenge supplied in the authorization request for "
                               "PKCE.", crid)
        return self._issue_tokens(code.user, code.client_id, tenant, form.get("scope") or
                                  code.scope, dict(form, _nonce=code.nonce), rec)

    def _signin_page(self, tenant, q):
        """The sign-in page a browser gets: a form that posts the request back with the
        person's name and decision, as AAD's own page does after the person types."""
        hidden = "".join('<input type="hidden" name="%s" value="%s">' % (
            html.escape(k), html.escape(v)) for k, v in q.items())
        return ("<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>"
                "<h1>Sign in</h1><form id=\"signin\" method=\"post\" action=\"/%s/oauth2/v2.0/"
                "authorize\">%s<label>Email <input type=\"email\" id=\"login\" name=\"login\" "
                "value=\"alice@contoso.com\"></label> <button type=\"submit\" id=\"accept\" "
                "name=\"decision\" value=\"accept\">Sign in</button> <button type=\"submit\" "
                "id=\"decline\" name=\"decision\" value=\"decline\">Cancel</button></form>"
                "</body></html>\n" % (html.escape(urllib.parse.quote(tenant)), hidden)).encode()

    def _authorize(self, tenant, query, headers, crid, rec, signin=None):
        """(status, body, location): a page for what AAD shows itself (the sign-in form for a
        real browser), or a redirect back. signin: the form the person posted."""
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if signin is not None:
            q = {k: v for k, v in signin.items() if k not in ("login", "decision")}
        client_id, redirect = q.get("client_id", ""), q.get("redirect_uri", "")
        rec["client_id"], rec["scope"], rec["redirect_uri"] = client_id, q.get("scope"), redirect
        rec["claims"], rec["prompt"] = q.get("claims"), q.get("prompt")
        with self._lock:
            err = self._check_client(client_id, tenant, crid)
        if err:
            return err[0], err[1], None
        u = urllib.parse.urlsplit(redirect)
        if u.scheme != "http" or u.hostname not in ("localhost", "127.0.0.1") or u.fragment:
            return self._error("invalid_request", 50011, "The redirect URI '%s' specified in "
                               "the request does not match the redirect URIs configured for "
                               "the application '%s'." % (redirect[:200], client_id),
                               crid) + (None,)

        def back(**fields):
            if "state" in q:
                fields["state"] = q["state"]
            sep = "&" if u.query else "?"
            return 302, b"", redirect + sep + urllib.parse.urlencode(fields)

        def error(err, code, text):
            _, body = self._error(err, code, text, crid)
            rec["error"] = err
            return back(error=err, error_description=body["error_description"])

        if q.get("response_type") != "code":
            return error("unsupported_response_type", 700054, "response_type '%s' is not "
                         "enabled for the application." % q.get("response_type", "")[:40])
        if not q.get("scope", "").strip():
            return error("invalid_request", 900144, "The request body must contain the "
                         "following parameter: 'scope'.")
        challenge = q.get("code_challenge", "")
        if q.get("code_challenge_method") != "S256" or len(challenge) != 43:
            return error("invalid_request", 50148, "This fake wants PKCE with "
                         "code_challenge_method S256 and a 43-character code_challenge.")
        with self._lock:
            fault = self._take_fault("authorize")
        if fault:
            rec["fault"] = fault["kind"]
            if fault["kind"].startswith("aad:"):
                _, err, *code = fault["kind"].split(":")
                return error(err, int(code[0]) if code else 50000, "Injected error %s." % err)
            return None   # the caller applies it
        if signin is None and "X-Fake-User" not in headers:
            # A real browser: the sign-in page, a form the person submits (POST, below).
            return 200, self._signin_page(tenant, q), None
        decision = (signin or {}).get("decision") or headers.get("X-Fake-Decision")
        if decision == "decline":
            return error("access_denied", 65004, "User declined to consent to access the app.")
        user = (signin or {}).get("login") or headers.get("X-Fake-User") or "alice@contoso.com"
        with self._lock:
            code = "1.A" + b64url(secrets.token_bytes(600))
            self._auth_codes[self._new_secret(code)] = _AuthCode(
                client_id, tenant, redirect, challenge, q["scope"], user, q.get("claims"))
            self._auth_codes[code].nonce = q.get("nonce")
        rec["user"] = user
        return back(code=code, session_state=str(uuid.uuid4()))

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

    def _instance_discovery(self, query):
        """MSAL's instance discovery (GET /common/discovery/instance?authorization_endpoint=
        https://HOST/TENANT/oauth2/v2.0/authorize): where that tenant's metadata is, here."""
        q = urllib.parse.parse_qs(query)
        endpoint = urllib.parse.urlsplit((q.get("authorization_endpoint") or [""])[0])
        tenant = ([p for p in endpoint.path.split("/") if p] or ["common"])[0]
        return {"tenant_discovery_endpoint":
                "%s/%s/v2.0/.well-known/openid-configuration" % (self.url, tenant),
                "api-version": "1.1",
                "metadata": [{"preferred_network": endpoint.hostname or "127.0.0.1",
                              "preferred_cache": endpoint.hostname or "127.0.0.1",
                              "aliases": [endpoint.hostname or "127.0.0.1"]}]}

    def _arm_metadata(self):
        """ARM's cloud metadata (GET {resourceManager}/metadata/endpoints), which a current
        `az cloud register --endpoint-resource-manager` reads: this provider as the cloud."""
        return {"name": "AksSparkTest", "portal": self.url + "/portal",
                "authentication": {"loginEndpoint": self.url,
                                   "audiences": ["https://management.core.windows.net/",
                                                 "https://management.azure.com/"],
                                   "tenant": "common", "identityProvider": "AAD"},
                "resourceManager": self.url + "/arm/", "graphAudience": "https://graph.windows.net/",
                "graph": self.url + "/graph/", "microsoftGraphResourceId": "https://graph.microsoft.com/",
                "suffixes": {"storage": "core.windows.net", "keyVaultDns": "vault.azure.net",
                             "sqlServerHostname": "database.windows.net",
                             "acrLoginServer": "azurecr.io"}}

    def _kube(self, path, bearer, rec):
        if [p for p in path.split("/") if p] == ["arm", "metadata", "endpoints"]:
            return 200, self._arm_metadata()
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
        if parts[:1] == ["arm"]:
            # Azure Resource Manager, as far as `az login --allow-no-subscriptions` asks it.
            if parts[1:2] == ["tenants"]:
                return 200, {"value": [{"id": "/tenants/" + DEFAULT_TENANT_ID,
                                        "tenantId": DEFAULT_TENANT_ID, "tenantCategory": "Home"}]}
            return 200, {"value": []}
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

    def _held(self, fault, rec):
        """A "delay:<seconds>" fault holds the request that long (or until stop()), then lets it
        be answered as usual. True when it was one."""
        if not fault["kind"].startswith("delay:"):
            return False
        with self.idp._lock:
            rec["fault"] = fault["kind"]
        self.idp._stopping.wait(float(fault["kind"].split(":", 1)[1]))
        return True

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
                                      "Injected error %s." % error, crid,
                                      suberror=code[1] if len(code) > 1 else None,
                                      claims=fault.get("claims"))
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
        idp._record_wire(self, path, query, body)
        parts = [p for p in path.split("/") if p]
        tenant = parts[0] if parts else ""
        post = self.command == "POST"
        if post and parts[1:] == ["oauth2", "v2.0", "token"]:
            endpoint = "token"
        elif post and parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            endpoint = "devicecode"
        elif parts[1:] == ["oauth2", "v2.0", "authorize"]:
            endpoint = "authorize"
        elif not post and (parts[1:] in (["v2.0", ".well-known", "openid-configuration"],
                                         [".well-known", "openid-configuration"],
                                         ["discovery", "v2.0", "keys"],
                                         ["discovery", "instance"])):
            endpoint = "openid"
        elif not post and (parts[:1] in (["api"], ["apis"], ["version"], ["arm"]) or
                           path == "/oidc/userinfo"):
            endpoint = "api"
        else:
            return self._send(404, {"error": "not_found", "path": path[:200]})
        crid = self.headers.get("client-request-id")
        rec = {"t": time.time(), "method": self.command, "endpoint": endpoint, "grant_type": None, "status": None,
               "fault": None, "client_request_id": crid, "user": None, "error": None,
               "client_id": None, "tenant": tenant if endpoint != "api" else None,
               "path": path, "scope": None, "client_info": None, "auth": None,
               "lib_capability": self.headers.get("x-ms-lib-capability"),
               "claims": None, "redirect_uri": None, "user_agent": self.headers.get("User-Agent")}
        with idp._lock:
            idp._log.append(rec)
        if endpoint == "authorize":
            return self._dispatch_authorize(tenant, query, crid, rec,
                                            self._form(body) if post else None)
        fault = idp._take_fault(endpoint, self._form(body).get("refresh_token")
                                if endpoint == "token" else None)
        if fault and self._held(fault, rec):
            fault = None
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
            if parts[-1] == "instance":
                status, answer = 200, idp._instance_discovery(query)
            else:
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

    def _dispatch_authorize(self, tenant, query, crid, rec, signin):
        idp = self.idp
        answer = idp._authorize(tenant, query, self.headers, crid, rec, signin)
        if answer is None:   # a transport fault the test queued for this sign-in
            return self._apply_fault({"kind": rec["fault"], "retry_after": None,
                                      "date": False}, rec)
        status, body, location = answer
        with idp._lock:
            rec["status"] = status
            if status >= 400 and isinstance(body, dict):
                rec["error"] = body.get("error")
        if location:
            return self._send(302, b"", ctype="text/html; charset=utf-8",
                              headers=[("Location", location)])
        if isinstance(body, bytes):   # the sign-in page
            return self._send(status, body, ctype="text/html; charset=utf-8")
        page = ("<!DOCTYPE html><html><body><h1>Sign in</h1><p>Sorry, but we're having trouble "
                "signing you in.</p><p>%s</p></body></html>\n" % body["error_description"]
                .split("\r\n")[0]).encode()
        return self._send(status, page, ctype="text/html; charset=utf-8")

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


class AzureCliProxy:
    """An HTTP CONNECT proxy on loopback that takes every tunnel to the identity provider,
    whatever host was asked: MSAL inside az asks login.microsoftonline.com for instance
    discovery even in a registered cloud. Give az HTTPS_PROXY=proxy.url (and NO_PROXY for
    127.0.0.1); the provider's certificate names login.microsoftonline.com too."""

    def __init__(self, idp):
        self.idp = idp
        self.url = None
        self.asked = []   # the host:port of every CONNECT
        self._sock = None
        self._thread = None

    def start(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._sock:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    return conn.close()
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0] != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return conn.close()
            self.asked.append(line[1])
            up = socket.create_connection(("127.0.0.1", self.idp.port), timeout=30)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except OSError:
            return conn.close()

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join(60)
        conn.close()
        up.close()


class FakeManagedIdentity:
    """The local token service of an Azure host, on loopback HTTP, issuing tokens that the
    FakeIdp it belongs to accepts (token_is_valid, all_secrets, faults on endpoint "imds"):

      kind "vm"          IMDS: GET /metadata/identity/oauth2/token?api-version=2018-02-01
                         &resource=R [&client_id=|&object_id=|&msi_res_id=], "Metadata: true"
      kind "appservice"  GET /msi/token?api-version=2019-08-01&resource=R [&client_id=|
                         &principal_id=|&mi_res_id=], "X-IDENTITY-HEADER: <identity_header>";
                         point IDENTITY_ENDPOINT at endpoint, IDENTITY_HEADER at identity_header
      kind "arc"         as "vm" (api-version 2019-11-01 or 2020-06-01, system-assigned only), but the first
                         request gets 401 with "WWW-Authenticate: Basic realm=<key file>", a
                         new file in key_dir; the retry sends "Authorization: Basic <content>"

    Numbers in answers are strings, as the real services send them. An identity is chosen by
    one selector; none means the system-assigned one (or the only user-assigned one)."""

    def __init__(self, idp, kind="vm", key_dir=None, system_assigned=True, host="127.0.0.1"):
        self.host = host
        if kind not in ("vm", "appservice", "arc"):
            raise ValueError("unknown kind %r" % kind)
        self.idp, self.kind = idp, kind
        self.key_dir = key_dir or os.path.join(idp.dir, "azcmagent-tokens")
        self.identities = []
        if system_assigned:
            self.identities.append({"client_id": str(uuid.uuid4()),
                                    "object_id": str(uuid.uuid4()), "res_id": None})
        self.identity_header = None
        self._key = None            # Arc: the content of the last challenge file
        self._server = self._thread = None
        self.url = self.endpoint = None
        if kind == "appservice":
            with idp._lock:
                self.identity_header = idp._new_secret(secrets.token_hex(16))

    def add_user_assigned(self, name="uami"):
        """A user-assigned identity; returns its dict of client_id, object_id, res_id."""
        ident = {"client_id": str(uuid.uuid4()), "object_id": str(uuid.uuid4()),
                 "res_id": "/subscriptions/%s/resourceGroups/rg/providers/"
                           "Microsoft.ManagedIdentity/userAssignedIdentities/%s" % (
                               uuid.uuid4(), name)}
        with self.idp._lock:
            self.identities.append(ident)
        return ident

    @property
    def system_identity(self):
        return next((i for i in self.identities if i["res_id"] is None), None)

    def start(self):
        handler = type("MiHandler", (_MiHandler,), {"idp": self.idp, "mi": self})
        server = http.server.ThreadingHTTPServer((self.host, 0), handler)
        server.daemon_threads = True
        server.handle_error = self.idp._handle_error
        self._server = server
        self.url = "http://%s:%d" % (self.host, server.server_address[1])
        self.endpoint = self.url + ("/msi/token" if self.kind == "appservice" else
                                    "/metadata/identity/oauth2/token")
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self.idp._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None
            self.idp._stopping.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def env(self):
        """The environment variables the host sets for its programs."""
        if self.kind == "appservice":
            return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.identity_header}
        if self.kind == "arc":
            return {"IDENTITY_ENDPOINT": self.endpoint, "IMDS_ENDPOINT": self.url}
        return {}

    def _select(self, q, names):
        given = [(k, q[k]) for k in names if k in q]
        if len(given) > 1:
            return None, "Only one of %s may be given" % ", ".join(names)
        if not given:
            ident = self.system_identity
            if ident is None and len(self.identities) == 1:
                ident = self.identities[0]
            return ident, None if ident else "Identity not found"
        key, value = given[0]
        field = {"client_id": "client_id", "object_id": "object_id", "principal_id":
                 "object_id", "msi_res_id": "res_id", "mi_res_id": "res_id"}[key]
        ident = next((i for i in self.identities if i[field] and
                      i[field].lower() == value.lower()), None)
        return ident, None if ident else "Identity not found"

    def _answer(self, method, path, q, headers, rec):
        """(status, body, headers) for one request."""
        def bad(text, status=400):
            if self.kind == "appservice":
                return status, {"statusCode": status, "message": text,
                                "correlationId": str(uuid.uuid4())}, []
            return status, {"error": "invalid_request", "error_description": text}, []

        if method != "GET" or path != urllib.parse.urlsplit(self.endpoint).path:
            return 404, {"error": "not_found"}, []
        rec["resource"] = q.get("resource")
        if self.kind == "appservice":
            if headers.get("X-IDENTITY-HEADER") != self.identity_header:
                return bad("The X-IDENTITY-HEADER is missing or wrong.", 401)
            if q.get("api-version") != "2019-08-01":
                return bad("Invalid or missing api-version: use 2019-08-01.")
            names = ("client_id", "principal_id", "mi_res_id")
        else:
            if headers.get("Metadata") != "true":
                return bad("Required metadata header not specified")
            want = ("2019-11-01", "2020-06-01") if self.kind == "arc" else ("2018-02-01",)
            if "api-version" not in q:
                return bad("Required query variable 'api-version' is missing")
            if q["api-version"] not in want + ("2019-08-01", "2021-02-01"):
                return bad("Invalid API version")
            names = ("client_id", "object_id", "msi_res_id")
        if not q.get("resource"):
            return bad("Required query variable 'resource' is missing")
        if self.kind == "arc":
            if any(k in q for k in names):
                return bad("User assigned identity is not supported on Azure Arc")
            auth = headers.get("Authorization", "")
            with self.idp._lock:
                ok = self._key is not None and auth == "Basic " + self._key
                if not ok:
                    os.makedirs(self.key_dir, mode=0o700, exist_ok=True)
                    key_path = os.path.join(self.key_dir, "%s.key" % uuid.uuid4())
                    self._key = self.idp._new_secret(secrets.token_hex(32))
                    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(self._key)
                    rec["challenge"] = key_path
            if not ok:
                return 401, {"error": "unauthorized", "error_description":
                             "Authorization required"}, [
                                 ("WWW-Authenticate", "Basic realm=%s" % key_path)]
        ident, err = self._select(q, names)
        if err:
            return bad(err)
        rec["identity"] = ident["client_id"]
        resource = q["resource"]
        if resource.endswith("/.default"):
            return bad("Resource '%s' is not a resource: drop /.default" % resource[:200])
        with self.idp._lock:
            extra = {"xms_mirid": ident["res_id"]} if ident["res_id"] else {}
            access, lifetime, now = self.idp._issue_app_token(
                ident["client_id"], ident["object_id"], DEFAULT_TENANT_ID, resource, rec,
                extra=extra)
        answer = {"access_token": access, "expires_on": str(now + lifetime),
                  "resource": resource, "token_type": "Bearer", "client_id": ident["client_id"]}
        if self.kind != "appservice":
            answer.update({"expires_in": str(lifetime), "ext_expires_in": str(lifetime),
                           "not_before": str(now)})
        return 200, answer, []


class _MiHandler(_Handler):
    mi = None   # set by FakeManagedIdentity.start()

    def setup(self):
        http.server.BaseHTTPRequestHandler.setup(self)

    def _dispatch(self):
        idp, mi = self.idp, self.mi
        path, _, query = self.path.partition("?")
        idp._record_wire(self, path, query, self._read_body())
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        rec = {"t": time.time(), "endpoint": "imds", "grant_type": None, "status": None,
               "fault": None, "client_request_id": self.headers.get("client-request-id"),
               "user": None, "error": None, "client_id": None, "tenant": None, "path": path,
               "scope": None, "client_info": None, "auth": "managed_identity:" + mi.kind,
               "lib_capability": self.headers.get("x-ms-lib-capability"), "claims": None,
               "redirect_uri": None, "resource": None, "identity": None,
               "query": sorted(q), "metadata": self.headers.get("Metadata")}
        with idp._lock:
            idp._log.append(rec)
        fault = idp._take_fault("imds")
        if fault and self._held(fault, rec):
            fault = None
        if fault:
            with idp._lock:
                rec["fault"] = fault["kind"]
            return self._apply_fault(fault, rec)
        status, answer, headers = mi._answer(self.command, path, q, self.headers, rec)
        with idp._lock:
            rec["status"] = status
            if status >= 400:
                rec["error"] = answer.get("error") or answer.get("message")
        self._send(status, answer, headers=headers)


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
