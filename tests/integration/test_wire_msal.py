"""What goes on the wire, held against Microsoft's own clients: MSAL Python and azure-identity
(pinned in tests/peers/msal-requirements.txt, in a venv of scripts/install-peers-kubelogin.sh) run
against the same local identity provider, for every way the daemon gets a token: device code,
refresh, authorization code with PKCE, client secret, client certificate, workload identity's
federated assertion, IMDS, App Service and Arc. The provider records every request (method, path,
query, headers, form); the test compares the daemon's with the reference's for the same flow and
fails on a difference that changes what Azure AD answers: a parameter missing or extra, another
grant, scope or resource, a header Azure reads. What may differ is listed in IGNORED_* (the
README's "On the wire, next to MSAL" says why)."""

import base64
import json
import os
import subprocess
import time
import unittest
import urllib.parse

import harness
from fake_idp import FakeManagedIdentity, make_client_certificate
from harness import Env, read, wait_until

PEER_PYTHON = os.environ.get("AKSSPARK_MSAL_PYTHON", "/var/cache/aksspark-tokend-peers/msal-venv/bin/python")
SERVER = "6dae42f8-4368-4678-94ff-3960e28e3630"
CLIENT = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
APP = "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUBJECT = "system:serviceaccount:spark:spark-driver"
ARC_TOKENS = "/var/opt/azcmagent/tokens"   # where Arc's agent puts its keys, as azure-identity checks

# Headers no Azure endpoint reads for its answer: the client's own telemetry and names
# (x-client-*, User-Agent), per-request ids, and what HTTP itself needs.
IGNORED_HEADERS = {"host", "user-agent", "accept", "accept-encoding", "connection", "content-length",
                   "client-request-id", "return-client-request-id", "x-ms-client-request-id", "traceparent",
                   "x-client-sku", "x-client-ver", "x-client-os", "x-client-cpu", "x-client-current-telemetry",
                   "x-client-last-telemetry", "x-app-name", "x-app-ver"}
# Fields whose values are per request (secrets, codes, random values): compared by presence.
PER_REQUEST = {"device_code", "code", "code_verifier", "refresh_token", "client_secret", "state",
               "code_challenge", "client_assertion", "nonce"}
# Fields MSAL sends that change nothing in the answer the daemon uses (see the README).
IGNORED_FIELDS = {"nonce"}
# By grant: what one reference sends and the other does not, that Azure AD answers the same.
# client_credentials: no person, so no client_info in the answer whether asked or not, and the
# throttling capability only changes an answer under throttling (MSAL sends both, azure-identity's
# own client neither). The device-code grant: MSAL also sends the code as "code", the v1.0
# endpoint's name, which v2.0 ignores.
IGNORED_BY_GRANT = {"client_credentials": {"client_info", "x-ms-lib-capability"},
                    "urn:ietf:params:oauth:grant-type:device_code": {"code"}}
# By path: App Service's endpoint reads X-IDENTITY-HEADER, not IMDS's Metadata header.
IGNORED_BY_PATH = {"/msi/token": {"metadata"}}


def pairs(entry, part):
    return entry[part] or []


def scopes(value):
    return sorted(value.split())


def jwt_shape(token):
    """An assertion's header and claim names, and the claims Azure AD checks by value."""
    def part(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    head, claims = (part(x) for x in token.split(".")[:2])
    # RS256 with x5t and PS256 with x5t#S256 are both what Azure AD takes for a certificate;
    # nbf and iat are optional. What it checks: the key named, aud, iss, sub, a jti and exp.
    key = ("x5t" in head and head.get("alg") == "RS256") or ("x5t#S256" in head and head.get("alg") == "PS256")
    return {"typ": head.get("typ"), "certificate named": key, "aud": claims.get("aud"), "iss": claims.get("iss"),
            "sub": claims.get("sub"), "jti": "jti" in claims, "exp": "exp" in claims}


def redirect_shape(uri):
    u = urllib.parse.urlsplit(uri)
    return (u.scheme, u.hostname, u.path or "/")


def normalised(entry):
    """What of a request Azure AD answers by, with per-request values reduced to their shape."""
    out = {"method": entry["method"], "path": entry["path"]}
    ignored = IGNORED_BY_GRANT.get(dict(pairs(entry, "form")).get("grant_type"), set())
    ignored = ignored | IGNORED_BY_PATH.get(entry["path"], set())
    for part in ("query", "form"):
        fields = {}
        for k, v in pairs(entry, part):
            if k in IGNORED_FIELDS or k in ignored:
                continue
            if k == "scope":
                v = scopes(v)
            elif k == "redirect_uri":
                v = redirect_shape(v)
            elif k == "client_assertion" and v.count(".") == 2:
                v = jwt_shape(v)
            elif k in PER_REQUEST:
                v = "<present>"
            fields[k] = v
        out[part] = fields
    headers = {}
    for k, v in entry["headers"]:
        k = k.lower()
        if k in IGNORED_HEADERS or k in ignored:
            continue
        if k == "content-type":
            v = v.split(";")[0].strip().lower()
        elif k == "authorization":
            v = v.split()[0].lower() + " <credentials>"
        elif k == "metadata":
            v = v.lower()
        elif k == "x-identity-header":   # a secret; App Service refuses a wrong one
            v = "<present>"
        headers[k] = v
    out["headers"] = headers
    return out


def kind_of(entry):
    """Which step of a flow a request is: (method, last path part, grant)."""
    form = dict(pairs(entry, "form"))
    return (entry["method"], entry["path"].rstrip("/").rsplit("/", 1)[-1], form.get("grant_type"))


@unittest.skipUnless(os.access(PEER_PYTHON, os.X_OK) or os.environ.get("CI"), "MSAL venv not installed")
class WireTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.assertTrue(os.access(PEER_PYTHON, os.X_OK), "no MSAL venv: run scripts/install-deps.sh")
        self.env = Env(prefix="aksspark-it-wire-")
        self.env.__enter__()
        self.addCleanup(self.env.__exit__, None, None, None)
        self.idp = self.env.start_idp(lifetime=3600)

    # ---- the two sides -------------------------------------------------------------------

    def peer(self, code, extra_env=None, feed=None):
        """Run Python code in the MSAL venv; feed(proc) talks to it while it runs."""
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.env.home,
             "REQUESTS_CA_BUNDLE": self.idp.ca_file, "SSL_CERT_FILE": self.idp.ca_file,
             "PEER_URL": self.idp.url, "PEER_TENANT": TENANT, "PEER_SCOPE": SERVER + "/.default"}
        e.update(extra_env or {})
        proc = subprocess.Popen([PEER_PYTHON, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=e)
        if feed:
            feed(proc)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err[-2000:])
        self.assertIn("PEER-OK", out, err[-2000:])
        return out

    def mark(self):
        return len(self.idp.wire())

    def since(self, mark):
        return [e for e in self.idp.wire()[mark:] if e["path"] != "/" and "/_admin/" not in e["path"]]

    def compare(self, ours, theirs, kinds):
        """The first request of each kind on both sides must ask Azure AD the same thing."""
        found = []
        for kind in kinds:
            a = next((e for e in ours if kind_of(e) == kind), None)
            b = next((e for e in theirs if kind_of(e) == kind), None)
            self.assertIsNotNone(a, "the daemon sent no %s: %s" % (kind, [kind_of(e) for e in ours]))
            self.assertIsNotNone(b, "the reference sent no %s: %s" % (kind, [kind_of(e) for e in theirs]))
            self.assertEqual(normalised(a), normalised(b), "request %s differs" % (kind,))
            found.append(kind)
        return found

    def daemon(self, profile, daemon_env=None, idp=True):
        self.env.write_config({"default": profile}, idp=self.idp if idp else False)
        d = self.env.start_daemon(env=daemon_env)
        self.addCleanup(d.stop)
        return d

    def wait_token(self, d):
        return wait_until(lambda: d.status()["state"] == "valid", 30, "a token")

    # ---- flows ---------------------------------------------------------------------------

    def test_device_code_and_refresh(self):
        m = self.mark()
        d = self.daemon({"tenant": TENANT, "token_file": self.env.path("home", "t")})
        d.sign_in(self.idp)
        r = d.ctl("refresh")
        self.assertEqual(r.returncode, 0, r.stderr)
        ours = self.since(m)

        def approve(proc):
            code = wait_until(lambda: self.idp.pending_device_codes(), 60, "MSAL's device code")[0]
            self.idp.approve(code)
        m = self.mark()
        self.peer("""
import msal, os, json
app = msal.PublicClientApplication(%r, authority=os.environ["PEER_URL"] + "/" + os.environ["PEER_TENANT"],
                                   instance_discovery=False)
flow = app.initiate_device_flow(scopes=[os.environ["PEER_SCOPE"]])
r = app.acquire_token_by_device_flow(flow)
assert "access_token" in r, r.get("error_description")
r2 = app.acquire_token_by_refresh_token(r["refresh_token"], scopes=[os.environ["PEER_SCOPE"]])
assert "access_token" in r2, r2.get("error_description")
print("PEER-OK")
""" % CLIENT, feed=approve)
        theirs = self.since(m)
        self.compare(ours, theirs, [("POST", "devicecode", None),
                                    ("POST", "token", "urn:ietf:params:oauth:grant-type:device_code"),
                                    ("POST", "token", "refresh_token")])

    def test_authorization_code_with_pkce(self):
        m = self.mark()
        d = self.daemon({"auth": "browser", "tenant": TENANT, "token_file": self.env.path("home", "t")})
        login = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        line = login.stdout.readline()
        url = next(w for w in line.split() if w.startswith("https://"))
        self.assertEqual(self.idp.browse(url)["app_status"], 200)
        login.communicate(timeout=60)
        self.assertEqual(login.returncode, 0)
        ours = self.since(m)

        def sign_in(proc):
            auth_uri = proc.stdout.readline().strip()
            out = self.idp.browse(auth_uri, follow=False)
            response = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(out["location"]).query))
            proc.stdin.write(json.dumps(response) + "\n")
            proc.stdin.flush()
        m = self.mark()
        self.peer("""
import msal, os, json, sys
app = msal.PublicClientApplication(%r, authority=os.environ["PEER_URL"] + "/" + os.environ["PEER_TENANT"],
                                   instance_discovery=False)
flow = app.initiate_auth_code_flow([os.environ["PEER_SCOPE"]], redirect_uri="http://localhost:8400/",
                                   prompt="select_account")
print(flow["auth_uri"], flush=True)
r = app.acquire_token_by_auth_code_flow(flow, json.loads(sys.stdin.readline()))
assert "access_token" in r, r.get("error_description")
print("PEER-OK")
""" % CLIENT, feed=sign_in)
        theirs = self.since(m)
        self.compare(ours, theirs, [("GET", "authorize", None), ("POST", "token", "authorization_code")])

    def test_client_secret(self):
        secret = self.idp.add_client_secret(APP)
        path = self.env.path("secret")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secret + "\n")
        self.env.add_secret_file(path)
        m = self.mark()
        d = self.daemon({"auth": "client_secret", "client_id": APP, "tenant": TENANT, "client_secret_file": path,
                         "token_file": self.env.path("home", "t")})
        self.wait_token(d)
        ours = self.since(m)
        m = self.mark()
        self.peer("""
import msal, os
app = msal.ConfidentialClientApplication(%r, client_credential=os.environ["PEER_SECRET"],
    authority=os.environ["PEER_URL"] + "/" + os.environ["PEER_TENANT"], instance_discovery=False)
r = app.acquire_token_for_client([os.environ["PEER_SCOPE"]])
assert "access_token" in r, r.get("error_description")
print("PEER-OK")
""" % APP, {"PEER_SECRET": secret})
        self.compare(ours, self.since(m), [("POST", "token", "client_credentials")])

    def test_client_certificate(self):
        pem, cert = make_client_certificate(self.env.root, "wire-app")
        self.idp.add_client_certificate(APP, cert)
        m = self.mark()
        d = self.daemon({"auth": "client_certificate", "client_id": APP, "tenant": TENANT,
                         "client_certificate": pem, "token_file": self.env.path("home", "t")})
        self.wait_token(d)
        ours = self.since(m)
        m = self.mark()
        # azure-identity's CertificateCredential: MSAL underneath, given the PEM as a person would.
        self.peer("""
import os
from azure.identity import CertificateCredential
c = CertificateCredential(os.environ["PEER_TENANT"], %r, os.environ["PEER_PEM"],
                          authority=os.environ["PEER_URL"], disable_instance_discovery=True)
assert c.get_token(os.environ["PEER_SCOPE"]).token
print("PEER-OK")
""" % APP, {"PEER_PEM": pem})
        self.compare(ours, self.since(m), [("POST", "token", "client_credentials")])

    def test_workload_identity(self):
        self.idp.add_federated_credential(APP, SUBJECT)
        path = self.env.path("azure-identity-token")
        with open(path, "w") as f:
            f.write(self.idp.issue_federated_token(SUBJECT, lifetime=3600))
        variables = {"AZURE_FEDERATED_TOKEN_FILE": path, "AZURE_CLIENT_ID": APP, "AZURE_TENANT_ID": TENANT,
                     "AZURE_AUTHORITY_HOST": self.idp.url}
        m = self.mark()
        d = self.daemon({"auth": "workload_identity", "ca_file": self.idp.ca_file, "tenant": None,
                         "token_file": self.env.path("home", "t")}, daemon_env=variables, idp=False)
        self.wait_token(d)
        ours = self.since(m)
        m = self.mark()
        self.peer("""
import os
from azure.identity import WorkloadIdentityCredential
c = WorkloadIdentityCredential(disable_instance_discovery=True)
assert c.get_token(os.environ["PEER_SCOPE"]).token
print("PEER-OK")
""", variables)
        self.compare(ours, self.since(m), [("POST", "token", "client_credentials")])

    def managed_identity(self, kind, peer_env, profile_extra=None, **mi_kw):
        mi = FakeManagedIdentity(self.idp, kind, **mi_kw).start()
        self.addCleanup(mi.stop)
        profile = {"auth": "managed_identity", "tenant": None, "token_file": self.env.path("home", "t")}
        profile.update(profile_extra(mi) if profile_extra else {})
        m = self.mark()
        d = self.daemon(profile, daemon_env=mi.env(), idp=False)
        self.wait_token(d)
        ours = self.since(m)
        m = self.mark()
        self.peer("""
import os
from azure.identity import ManagedIdentityCredential
assert ManagedIdentityCredential().get_token(os.environ["PEER_SCOPE"]).token
print("PEER-OK")
""", dict(mi.env(), **peer_env(mi)))
        theirs = self.since(m)
        return ours, theirs

    def test_imds(self):
        ours, theirs = self.managed_identity(
            "vm", lambda mi: {"AZURE_POD_IDENTITY_AUTHORITY_HOST": mi.url},
            profile_extra=lambda mi: {"imds_endpoint": mi.url})
        self.compare(ours, theirs, [("GET", "token", None)])

    def test_app_service(self):
        ours, theirs = self.managed_identity("appservice", lambda mi: {})
        self.compare(ours, theirs, [("GET", "token", None)])

    @unittest.skipUnless(os.geteuid() == 0 or os.environ.get("CI"), "Arc's key directory needs root")
    def test_arc(self):
        made = not os.path.isdir(ARC_TOKENS)
        os.makedirs(ARC_TOKENS, mode=0o700, exist_ok=True)
        before = set(os.listdir(ARC_TOKENS))

        def clean():
            for name in set(os.listdir(ARC_TOKENS)) - before:
                os.unlink(os.path.join(ARC_TOKENS, name))
            if made:
                os.rmdir(ARC_TOKENS)
                for parent in ("/var/opt/azcmagent",):
                    try:
                        os.rmdir(parent)
                    except OSError:
                        pass
        self.addCleanup(clean)
        ours, theirs = self.managed_identity("arc", lambda mi: {}, key_dir=ARC_TOKENS)
        # The challenge (no key), then the request with it: both steps ask the same.
        ours_first, theirs_first = ours[0], theirs[0]
        self.assertEqual(normalised(ours_first), normalised(theirs_first))
        second = [e for e in ours if any(k.lower() == "authorization" for k, _ in e["headers"])]
        second_peer = [e for e in theirs if any(k.lower() == "authorization" for k, _ in e["headers"])]
        self.assertTrue(second and second_peer)
        self.assertEqual(normalised(second[0]), normalised(second_peer[0]))


if __name__ == "__main__":
    unittest.main()
