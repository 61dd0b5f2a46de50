#!/usr/bin/env python3
"""Self-test of the fake identity provider: each AAD behaviour and each fault, over real TLS."""

import base64
import email.utils
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_idp import (ASSERTION_TYPE, DEVICE_GRANT, FakeIdp, FakeManagedIdentity,  # noqa: E402
                      b64url, make_client_assertion, make_client_certificate)

CLIENT = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"   # a service principal
SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default openid profile offline_access"
CA_DIR = tempfile.mkdtemp(prefix="fake-idp-test-")


def jwt_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class IdpTest(unittest.TestCase):
    def setUp(self):
        self.idp = FakeIdp(CA_DIR, lifetime=30).start()
        self.addCleanup(self.idp.stop)
        self.idp.set(enforce_interval=False)
        self.ctx = ssl.create_default_context(cafile=self.idp.ca_file)

    # ---- helpers -----------------------------------------------------------------------

    def call(self, path, form=None, headers=None, timeout=10, raw=False):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.idp.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                status, hdrs, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, body = e.code, e.headers, e.read()
        return (status, hdrs, body) if raw else (status, json.loads(body))

    def devicecode(self, scope=SCOPE, client=CLIENT, tenant=TENANT):
        return self.call("/%s/oauth2/v2.0/devicecode" % tenant,
                         {"client_id": client, "scope": scope})

    def poll(self, device_code, client=CLIENT, headers=None):
        return self.call("/%s/oauth2/v2.0/token" % TENANT,
                         {"grant_type": DEVICE_GRANT, "client_id": client,
                          "device_code": device_code}, headers=headers)

    def refresh(self, rt, extra=None):
        form = {"grant_type": "refresh_token", "client_id": CLIENT, "refresh_token": rt,
                "scope": SCOPE}
        form.update(extra or {})
        return self.call("/%s/oauth2/v2.0/token" % TENANT, form)

    def sign_in(self, user="alice@contoso.com", scope=SCOPE):
        status, dc = self.devicecode(scope=scope)
        self.assertEqual(status, 200)
        self.assertEqual(self.idp.approve(dc["user_code"], user=user), 1)
        status, tok = self.poll(dc["device_code"])
        self.assertEqual(status, 200, tok)
        return tok

    def assertAadError(self, answer, error, code):
        self.assertEqual(answer["error"], error, answer)
        self.assertEqual(answer["error_codes"], [code])
        self.assertTrue(answer["error_description"].startswith("AADSTS%d: " % code))
        for part in ("\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "):
            self.assertIn(part, answer["error_description"])
        for key in ("timestamp", "trace_id", "correlation_id"):
            self.assertTrue(answer[key])

    # ---- device flow -------------------------------------------------------------------

    def test_device_flow(self):
        status, dc = self.devicecode()
        self.assertEqual(status, 200)
        self.assertEqual(dc["verification_uri"], "https://microsoft.com/devicelogin")
        self.assertEqual((dc["expires_in"], dc["interval"]), (900, 1))
        self.assertEqual(dc["message"], "To sign in, use a web browser to open the page "
                         "https://microsoft.com/devicelogin and enter the code %s to "
                         "authenticate." % dc["user_code"])
        self.assertEqual(self.idp.pending_device_codes(), [dc["user_code"]])

        status, err = self.poll(dc["device_code"], headers={"client-request-id": "c-1"})
        self.assertEqual(status, 400)
        self.assertAadError(err, "authorization_pending", 70016)
        self.assertEqual(err["correlation_id"], "c-1")
        self.assertIn("Correlation ID: c-1\r\n", err["error_description"])

        self.assertEqual(self.idp.approve(dc["user_code"], user="bob@contoso.com"), 1)
        self.assertEqual(self.idp.pending_device_codes(), [])
        status, tok = self.poll(dc["device_code"])
        self.assertEqual(status, 200, tok)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual((tok["expires_in"], tok["ext_expires_in"]), (30, 30))
        self.assertNotIn("refresh_in", tok)
        self.assertIn("offline_access", tok["scope"].split())
        self.assertGreater(len(tok["refresh_token"]), 1100)
        claims = jwt_claims(tok["access_token"])
        self.assertEqual((claims["upn"], claims["tid"]), ("bob@contoso.com", TENANT))
        self.assertLessEqual(abs(claims["exp"] - time.time() - 30), 2)
        for key in ("name", "oid", "iat", "nbf"):
            self.assertIn(key, claims)
        self.assertEqual(jwt_claims(tok["id_token"])["preferred_username"], "bob@contoso.com")
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        self.assertFalse(self.idp.token_is_valid(tok["access_token"] + "x"))

        status, err = self.poll(dc["device_code"])   # a used code
        self.assertEqual(status, 400)
        self.assertAadError(err, "invalid_grant", 54005)

        log = self.idp.requests()
        self.assertEqual([r["endpoint"] for r in log], ["devicecode", "token", "token", "token"])
        self.assertEqual([r["status"] for r in log], [200, 400, 200, 400])
        self.assertEqual(log[1]["client_request_id"], "c-1")
        self.assertEqual(log[2]["grant_type"], DEVICE_GRANT)
        self.assertEqual(log[2]["user"], "bob@contoso.com")
        self.assertEqual(log[3]["error"], "invalid_grant")

    def test_slow_down(self):
        self.idp.set(enforce_interval=True, interval=3)
        _, dc = self.devicecode()
        self.assertEqual(dc["interval"], 3)
        self.assertEqual(self.poll(dc["device_code"])[1]["error"], "authorization_pending")
        status, err = self.poll(dc["device_code"])
        self.assertEqual(status, 400)
        self.assertEqual(err["error"], "slow_down")
        self.assertIn("every 8 seconds", err["error_description"])
        status, err = self.poll(dc["device_code"])
        self.assertIn("every 13 seconds", err["error_description"])

    def test_slow_down_forgives_timer_jitter(self):
        self.idp.set(enforce_interval=True, interval=1)
        _, dc = self.devicecode()
        self.poll(dc["device_code"])
        time.sleep(0.85)   # the interval is the thing under test: 1 s minus 0.15 s of jitter
        self.assertEqual(self.poll(dc["device_code"])[1]["error"], "authorization_pending")

    def test_declined(self):
        _, dc = self.devicecode()
        self.assertEqual(self.idp.decline(dc["user_code"]), 1)
        status, err = self.poll(dc["device_code"])
        self.assertEqual(status, 400)
        self.assertAadError(err, "authorization_declined", 70000)

    def test_expired_code(self):
        self.idp.set(devicecode_expires_in=1)
        _, dc = self.devicecode()
        self.assertEqual(dc["expires_in"], 1)
        self.assertTrue(wait_until(lambda: self.poll(dc["device_code"])[1]["error"] ==
                                   "expired_token"))
        self.assertAadError(self.poll(dc["device_code"])[1], "expired_token", 70020)
        self.assertEqual(self.idp.pending_device_codes(), [])
        self.assertEqual(self.idp.approve(dc["user_code"]), 0)

    def test_bad_code(self):
        status, err = self.poll("DAQABAAEAAADnotacode")
        self.assertEqual(status, 400)
        self.assertAadError(err, "bad_verification_code", 70018)

    def test_auto_approve(self):
        self.idp.set(auto_approve_user="carol@contoso.com")
        _, dc = self.devicecode()
        status, tok = self.poll(dc["device_code"])
        self.assertEqual(status, 200)
        self.assertEqual(jwt_claims(tok["access_token"])["upn"], "carol@contoso.com")

    def test_no_offline_access_no_refresh_token(self):
        tok = self.sign_in(scope="6dae42f8-4368-4678-94ff-3960e28e3630/.default openid")
        self.assertNotIn("refresh_token", tok)

    def test_request_errors(self):
        status, err = self.devicecode(scope="")
        self.assertEqual(status, 400)
        self.assertAadError(err, "invalid_request", 900144)
        status, err = self.call("/%s/oauth2/v2.0/token" % TENANT, {"client_id": CLIENT})
        self.assertAadError(err, "invalid_request", 900144)
        status, err = self.call("/%s/oauth2/v2.0/token" % TENANT,
                                {"client_id": CLIENT, "grant_type": "password"})
        self.assertAadError(err, "unsupported_grant_type", 70003)
        status, err = self.call("/%s/oauth2/v2.0/token" % TENANT,
                                {"client_id": CLIENT, "grant_type": "refresh_token"},
                                headers={"Content-Type": "text/plain"})
        self.assertAadError(err, "invalid_request", 900144)

    def test_unknown_client_and_tenant(self):
        self.idp.set(client_ids=[CLIENT])
        status, err = self.devicecode(client="00000000-0000-0000-0000-000000000001")
        self.assertEqual(status, 400)
        self.assertAadError(err, "unauthorized_client", 700016)
        self.assertEqual(self.devicecode()[0], 200)
        for status, err in (self.devicecode(tenant="bad-tenant"),
                            self.call("/bad-tenant/oauth2/v2.0/token",
                                      {"client_id": CLIENT, "grant_type": "refresh_token"}),
                            self.call("/bad-tenant/v2.0/.well-known/openid-configuration")):
            self.assertEqual(status, 400)
            self.assertAadError(err, "invalid_tenant", 90002)

    # ---- refresh -------------------------------------------------------------------------

    def test_refresh_rotation(self):
        rt1 = self.sign_in()["refresh_token"]
        status, tok = self.refresh(rt1)
        self.assertEqual(status, 200, tok)
        rt2 = tok["refresh_token"]
        self.assertNotEqual(rt1, rt2)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        status, err = self.refresh(rt1)
        self.assertEqual(status, 400)
        self.assertAadError(err, "invalid_grant", 70008)
        status, tok = self.refresh(rt2)
        self.assertEqual(status, 200)
        self.assertEqual(self.idp.valid_refresh_tokens(), [tok["refresh_token"]])
        status, err = self.refresh("0.Anotatoken")
        self.assertAadError(err, "invalid_grant", 9002313)

    def test_revoke(self):
        tok = self.sign_in(user="dave@contoso.com")
        self.assertEqual(self.idp.revoke("dave@contoso.com"), 1)
        status, err = self.refresh(tok["refresh_token"])
        self.assertEqual(status, 400)
        self.assertAadError(err, "invalid_grant", 50173)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        self.assertEqual(self.idp.requests()[-1]["user"], "dave@contoso.com")

    def test_answer_options(self):
        self.idp.set(numbers_as_strings=True, refresh_in=20, lifetime=3599)
        tok = self.sign_in()
        self.assertEqual((tok["expires_in"], tok["ext_expires_in"], tok["refresh_in"]),
                         ("3599", "3599", "20"))
        self.assertNotIn("client_info", tok)
        status, tok = self.refresh(tok["refresh_token"], {"client_info": "1"})
        info = json.loads(base64.urlsafe_b64decode(tok["client_info"] + "==="))
        self.assertEqual(info["utid"], TENANT)
        self.assertEqual(info["uid"], jwt_claims(tok["access_token"])["oid"])
        _, dc = self.devicecode()
        self.assertEqual((dc["expires_in"], dc["interval"]), ("900", "1"))

    def test_lifetime(self):
        self.idp.set(lifetime=1)
        tok = self.sign_in()
        self.assertEqual(tok["expires_in"], 1)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        self.assertTrue(wait_until(lambda: not self.idp.token_is_valid(tok["access_token"])))

    def test_awkward_refresh_tokens_need_urlencoding(self):
        self.idp.set(awkward_tokens=True)
        rt = self.sign_in()["refresh_token"]
        self.assertTrue(set("+/=") <= set(rt))
        body = ("grant_type=refresh_token&client_id=%s&refresh_token=%s" % (CLIENT, rt)).encode()
        req = urllib.request.Request(self.idp.url + "/%s/oauth2/v2.0/token" % TENANT, body)
        with self.assertRaises(urllib.error.HTTPError) as cm:   # '+' read as a space
            urllib.request.urlopen(req, context=self.ctx, timeout=10)
        self.assertEqual(json.load(cm.exception)["error"], "invalid_grant")
        self.assertEqual(self.refresh(rt)[0], 200)

    def test_secrets(self):
        _, dc = self.devicecode()
        self.idp.approve(dc["user_code"])
        _, tok = self.poll(dc["device_code"])
        secrets = self.idp.all_secrets()
        for s in (dc["device_code"], tok["access_token"], tok["refresh_token"],
                  tok["id_token"]):
            self.assertIn(s, secrets)
        self.assertEqual(self.idp.issued_access_tokens(), [tok["access_token"]])
        log = json.dumps(self.idp.requests())
        self.assertFalse([s for s in secrets if s in log])
        tok2 = self.sign_in()
        self.assertNotEqual(tok["access_token"], tok2["access_token"])

    # ---- browser sign-in (authorization code + PKCE) -----------------------------------

    def _loopback(self):
        """A one-shot loopback HTTP server standing in for the app's redirect listener:
        returns (redirect_uri, got) where got is filled with the query it receives."""
        import http.server
        got = {}

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                got.update(urllib.parse.parse_qsl(self.path.partition("?")[2]))
                body = b"<html><body>Signed in.</body></html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        t = threading.Thread(target=srv.handle_request, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        return "http://localhost:%d/" % srv.server_address[1], got

    def authorize_url(self, redirect, verifier, state="st-1", **extra):
        q = {"client_id": CLIENT, "response_type": "code", "redirect_uri": redirect,
             "scope": SCOPE, "state": state, "code_challenge": b64url(
                 hashlib.sha256(verifier.encode()).digest()),
             "code_challenge_method": "S256", "prompt": "select_account"}
        q.update(extra)
        return "%s/%s/oauth2/v2.0/authorize?%s" % (self.idp.url, TENANT,
                                                   urllib.parse.urlencode(q))

    def redeem(self, code, redirect, verifier):
        return self.call("/%s/oauth2/v2.0/token" % TENANT, {
            "grant_type": "authorization_code", "client_id": CLIENT, "code": code,
            "redirect_uri": redirect, "code_verifier": verifier, "scope": SCOPE,
            "client_info": "1"})

    def test_browser_flow(self):
        verifier = b64url(os.urandom(32))
        redirect, got = self._loopback()
        out = self.idp.browse(self.authorize_url(redirect, verifier, claims='{"x":1}'),
                              user="carol@contoso.com")
        self.assertEqual((out["status"], out["app_status"]), (302, 200))
        self.assertTrue(out["location"].startswith(redirect + "?"))
        self.assertEqual(got["state"], "st-1")
        self.assertIn(got["code"], self.idp.all_secrets())
        self.assertEqual(self.idp.requests("authorize")[-1]["claims"], '{"x":1}')
        # the wrong verifier is refused, and the code is then spent
        status, err = self.redeem(got["code"], redirect, b64url(os.urandom(32)))
        self.assertAadError(err, "invalid_grant", 50148)
        status, err = self.redeem(got["code"], redirect, verifier)
        self.assertAadError(err, "invalid_grant", 54005)

        redirect, got = self._loopback()
        self.idp.browse(self.authorize_url(redirect, verifier))
        status, err = self.redeem(got["code"], redirect + "x", verifier)
        self.assertAadError(err, "invalid_grant", 50011)

        redirect, got = self._loopback()
        self.idp.browse(self.authorize_url(redirect, verifier), user="carol@contoso.com")
        status, tok = self.redeem(got["code"], redirect, verifier)
        self.assertEqual(status, 200, tok)
        self.assertEqual(jwt_claims(tok["access_token"])["upn"], "carol@contoso.com")
        self.assertIn("client_info", tok)
        self.assertEqual(self.refresh(tok["refresh_token"])[0], 200)
        status, err = self.redeem(got["code"], redirect, verifier)
        self.assertAadError(err, "invalid_grant", 54005)

    def test_sign_in_form(self):
        """A browser without the scripted headers gets a form; posting it signs in (or
        declines), the nonce comes back in the id_token, and every request is on the wire log."""
        import html.parser

        class Form(html.parser.HTMLParser):
            def __init__(self):
                super().__init__()
                self.action, self.fields = None, {}

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "form":
                    self.action = a["action"]
                elif tag == "input":
                    self.fields[a["name"]] = a.get("value", "")

        verifier = b64url(os.urandom(32))
        redirect, got = self._loopback()
        ctx = ssl.create_default_context(cafile=self.idp.ca_file)
        with urllib.request.urlopen(self.authorize_url(redirect, verifier, nonce="n-1"), context=ctx) as r:
            self.assertEqual(r.status, 200)
            form = Form()
            form.feed(r.read().decode())
        self.assertEqual(form.action, "/%s/oauth2/v2.0/authorize" % TENANT)
        self.assertEqual((form.fields["state"], form.fields["nonce"]), ("st-1", "n-1"))
        self.assertFalse(got)
        fields = dict(form.fields, login="erin@contoso.com", decision="accept")
        conn = http.client.HTTPSConnection(urllib.parse.urlsplit(self.idp.url).netloc, context=ctx)
        conn.request("POST", form.action, urllib.parse.urlencode(fields),
                     {"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        self.assertEqual(r.status, 302)
        location = r.getheader("Location")
        conn.close()
        self.assertTrue(location.startswith(redirect + "?"))
        with urllib.request.urlopen(location):
            pass
        self.assertEqual(got["state"], "st-1")
        status, tok = self.redeem(got["code"], redirect, verifier)
        self.assertEqual(status, 200, tok)
        self.assertEqual(jwt_claims(tok["access_token"])["upn"], "erin@contoso.com")
        self.assertEqual(jwt_claims(tok["id_token"])["nonce"], "n-1")
        self.assertEqual([r["method"] for r in self.idp.requests("authorize")], ["GET", "POST"])
        wire = [e for e in self.idp.wire() if e["path"].endswith("/authorize")]
        self.assertEqual(dict(wire[1]["form"])["login"], "erin@contoso.com")
        self.assertEqual(dict(wire[0]["query"])["nonce"], "n-1")

    def test_browser_errors(self):
        verifier = b64url(os.urandom(32))
        redirect, got = self._loopback()
        out = self.idp.browse(self.authorize_url(redirect, verifier), decline=True)
        self.assertEqual(out["app_status"], 200)
        self.assertEqual((got["error"], got["state"]), ("access_denied", "st-1"))
        self.assertTrue(got["error_description"].startswith("AADSTS65004: "))

        redirect, got = self._loopback()
        self.idp.queue_fault("aad:interaction_required:53003", endpoint="authorize")
        self.idp.browse(self.authorize_url(redirect, verifier))
        self.assertEqual(got["error"], "interaction_required")
        # no PKCE, or plain: refused on the redirect
        redirect, got = self._loopback()
        self.idp.browse(self.authorize_url(redirect, verifier, code_challenge_method="plain"))
        self.assertEqual(got["error"], "invalid_request")
        # a redirect that is not loopback is never followed: AAD shows its own page
        out = self.idp.browse(self.authorize_url("https://evil.example/", verifier))
        self.assertEqual((out["status"], out["location"]), (400, None))
        self.assertIn(b"AADSTS50011", out["body"])
        with self.assertRaises(ValueError):
            self.idp.browse("https://elsewhere.example/x")

    # ---- client credentials -------------------------------------------------------------

    def client_credentials(self, **form):
        base = {"grant_type": "client_credentials", "client_id": APP,
                "scope": "6dae42f8-4368-4678-94ff-3960e28e3630/.default", "client_info": "1"}
        base.update(form)
        return self.call("/%s/oauth2/v2.0/token" % TENANT, base)

    def assertAppToken(self, tok, appid=APP):
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertNotIn("refresh_token", tok)
        self.assertNotIn("id_token", tok)
        claims = jwt_claims(tok["access_token"])
        self.assertEqual((claims["idtyp"], claims["appid"]), ("app", appid))
        self.assertEqual(claims["aud"], "6dae42f8-4368-4678-94ff-3960e28e3630")
        self.assertIn("roles", claims)
        self.assertNotIn("upn", claims)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))

    def test_client_secret(self):
        secret = self.idp.add_client_secret(APP)
        self.assertIn(secret, self.idp.all_secrets())
        status, tok = self.client_credentials(client_secret=secret)
        self.assertEqual(status, 200, tok)
        self.assertAppToken(tok)
        self.assertEqual(self.idp.requests("token")[-1]["auth"], "secret")
        status, err = self.client_credentials(client_secret=secret + "x")
        self.assertEqual(status, 401)
        self.assertAadError(err, "invalid_client", 7000215)
        status, err = self.client_credentials()
        self.assertAadError(err, "invalid_client", 7000218)
        status, err = self.client_credentials(client_secret=secret, scope="6dae42f8-4368-4678-94ff-3960e28e3630/"
                                              ".default https://graph.microsoft.com/.default")
        self.assertAadError(err, "invalid_scope", 1002012)
        # MSAL (Go, .NET) adds the OpenID scopes to every request; Azure AD ignores them here.
        status, tok = self.client_credentials(client_secret=secret, scope=SCOPE)
        self.assertEqual(status, 200, tok)
        status, err = self.client_credentials(client_id=str(uuid.uuid4()), client_secret=secret)
        self.assertAadError(err, "unauthorized_client", 700016)
        self.assertFalse([s for s in self.idp.all_secrets()
                          if s in json.dumps(self.idp.requests())])

    def test_client_certificate(self):
        d = tempfile.mkdtemp(dir=CA_DIR)
        pem, cert = make_client_certificate(d, "app", password="pw-1")
        other, _ = make_client_certificate(d, "other")
        x5t, x5t256 = self.idp.add_client_certificate(APP, cert)
        aud = "%s/%s/oauth2/v2.0/token" % (self.idp.url, TENANT)

        def assertion(**kw):
            kw.setdefault("password", "pw-1")
            return make_client_assertion(kw.pop("pem", pem), APP, kw.pop("aud", aud), **kw)

        def send(a):
            return self.client_credentials(client_assertion_type=ASSERTION_TYPE,
                                           client_assertion=a)
        for alg in ("PS256", "RS256"):
            a = assertion(alg=alg)
            status, tok = send(a)
            self.assertEqual(status, 200, tok)
            self.assertAppToken(tok)
            self.assertEqual(self.idp.requests("token")[-1]["assertion_alg"], alg)
            status, err = send(a)   # a jti is good once
            self.assertAadError(err, "invalid_client", 700025)
        status, err = send(make_client_assertion(other, APP, aud))
        self.assertEqual(status, 401)
        self.assertAadError(err, "invalid_client", 700027)
        self.assertIn("The key was not found", err["error_description"])
        # the right thumbprint over another key's signature
        a = assertion().split(".")
        b = make_client_assertion(other, APP, aud).split(".")
        status, err = send("%s.%s.%s" % (a[0], a[1], b[2]))
        self.assertAadError(err, "invalid_client", 700027)
        status, err = send(assertion(aud=self.idp.url + "/elsewhere"))
        self.assertAadError(err, "invalid_client", 700027)
        status, err = send(assertion(sub=str(uuid.uuid4())))
        self.assertAadError(err, "invalid_client", 700021)
        status, err = send(assertion(now=time.time() - 3600))
        self.assertAadError(err, "invalid_client", 700024)
        status, err = send("not.a.jwt")
        self.assertAadError(err, "invalid_client", 50027)
        status, err = self.client_credentials(client_assertion=assertion())
        self.assertAadError(err, "invalid_request", 7000219)

    def test_workload_identity(self):
        subject = "system:serviceaccount:spark:driver"
        self.idp.add_federated_credential(APP, subject)

        def send(a):
            return self.client_credentials(client_assertion_type=ASSERTION_TYPE,
                                           client_assertion=a)
        token = self.idp.issue_federated_token(subject, lifetime=600)
        self.assertIn(token, self.idp.all_secrets())
        self.assertEqual(jwt_claims(token)["aud"], ["api://AzureADTokenExchange"])
        for _ in range(2):   # the kubelet's token is presented again and again
            status, tok = send(token)
            self.assertEqual(status, 200, tok)
            self.assertAppToken(tok)
        self.assertEqual(self.idp.requests("token")[-1]["auth"], "federated")
        status, err = send(self.idp.issue_federated_token(subject, lifetime=-600))
        self.assertAadError(err, "invalid_client", 700024)
        status, err = send(self.idp.issue_federated_token("system:serviceaccount:x:y"))
        self.assertAadError(err, "invalid_request", 700213)
        status, err = send(self.idp.issue_federated_token(subject, audience="api://other"))
        self.assertAadError(err, "invalid_request", 700212)
        h, c, sig = token.split(".")
        forged = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
        forged["sub"] = "system:serviceaccount:spark:other"
        status, err = send("%s.%s.%s" % (h, b64url(json.dumps(forged).encode()), sig))
        self.assertAadError(err, "invalid_request", 700211)

    # ---- managed identity ---------------------------------------------------------------

    def mi_get(self, mi, query, headers=None):
        url = mi.endpoint + "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, headers=headers if headers is not None
                                     else {"Metadata": "true"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, e.headers, json.load(e)

    def test_imds(self):
        mi = FakeManagedIdentity(self.idp, "vm").start()
        self.addCleanup(mi.stop)
        self.assertTrue(mi.url.startswith("http://127.0.0.1:"))
        uami = mi.add_user_assigned()
        q = {"api-version": "2018-02-01", "resource": "6dae42f8-4368-4678-94ff-3960e28e3630"}
        status, _, tok = self.mi_get(mi, q)
        self.assertEqual(status, 200, tok)
        for k in ("expires_in", "expires_on", "ext_expires_in", "not_before"):
            self.assertIsInstance(tok[k], str)
        self.assertLessEqual(abs(int(tok["expires_on"]) - time.time() - 30), 2)
        self.assertEqual(tok["client_id"], mi.system_identity["client_id"])
        self.assertAppToken(tok, mi.system_identity["client_id"])
        for key, field in (("client_id", "client_id"), ("object_id", "object_id"),
                           ("msi_res_id", "res_id")):
            status, _, tok = self.mi_get(mi, dict(q, **{key: uami[field]}))
            self.assertEqual((status, tok["client_id"]), (200, uami["client_id"]))
        status, _, err = self.mi_get(mi, dict(q, client_id=str(uuid.uuid4())))
        self.assertEqual((status, err["error"]), (400, "invalid_request"))
        status, _, err = self.mi_get(mi, q, headers={})
        self.assertEqual((status, err["error_description"]),
                         (400, "Required metadata header not specified"))
        status, _, err = self.mi_get(mi, {"api-version": "2018-02-01"})
        self.assertEqual(status, 400)
        self.idp.queue_fault("500", endpoint="imds")
        self.idp.queue_fault("429", endpoint="imds", retry_after=3)
        self.assertEqual(self.mi_get(mi, q)[0], 500)
        status, hdrs, _ = self.mi_get(mi, q)
        self.assertEqual((status, hdrs["Retry-After"]), (429, "3"))
        self.assertEqual(self.mi_get(mi, q)[0], 200)
        rec = self.idp.requests("imds")[-1]
        self.assertEqual((rec["auth"], rec["metadata"]), ("managed_identity:vm", "true"))

    def test_app_service(self):
        mi = FakeManagedIdentity(self.idp, "appservice").start()
        self.addCleanup(mi.stop)
        env = mi.env()
        self.assertEqual(env["IDENTITY_ENDPOINT"], mi.url + "/msi/token")
        self.assertIn(env["IDENTITY_HEADER"], self.idp.all_secrets())
        q = {"api-version": "2019-08-01", "resource": "6dae42f8-4368-4678-94ff-3960e28e3630"}
        status, _, tok = self.mi_get(mi, q, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
        self.assertEqual(status, 200, tok)
        self.assertNotIn("expires_in", tok)
        self.assertIsInstance(tok["expires_on"], str)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        status, _, err = self.mi_get(mi, q, {"X-IDENTITY-HEADER": "wrong"})
        self.assertEqual((status, err["statusCode"]), (401, 401))

    def test_arc(self):
        keys = tempfile.mkdtemp(dir=CA_DIR)
        mi = FakeManagedIdentity(self.idp, "arc", key_dir=keys).start()
        self.addCleanup(mi.stop)
        q = {"api-version": "2019-11-01", "resource": "6dae42f8-4368-4678-94ff-3960e28e3630"}
        status, hdrs, _ = self.mi_get(mi, q)
        self.assertEqual(status, 401)
        scheme, _, realm = hdrs["WWW-Authenticate"].partition(" realm=")
        self.assertEqual(scheme, "Basic")
        self.assertTrue(realm.startswith(keys + "/") and realm.endswith(".key"))
        with open(realm) as f:
            key = f.read()
        self.assertIn(key, self.idp.all_secrets())
        status, _, tok = self.mi_get(mi, q, {"Metadata": "true",
                                             "Authorization": "Basic " + key})
        self.assertEqual(status, 200, tok)
        self.assertTrue(self.idp.token_is_valid(tok["access_token"]))
        self.assertEqual(self.mi_get(mi, q, {"Metadata": "true",
                                             "Authorization": "Basic nope"})[0], 401)
        self.assertEqual(self.mi_get(mi, dict(q, client_id=str(uuid.uuid4())),
                                     {"Metadata": "true", "Authorization": "Basic " + key})[0],
                         400)

    # ---- faults --------------------------------------------------------------------------

    def test_status_faults(self):
        rt = self.sign_in()["refresh_token"]
        self.idp.queue_fault("500")
        self.idp.queue_fault("503", retry_after=7)
        self.idp.queue_fault("429", retry_after=30, retry_after_date=True)
        self.idp.queue_fault("429", retry_after="120")
        self.idp.queue_fault("aad:interaction_required:50076")
        status, hdrs, _ = self.call("/%s/oauth2/v2.0/token" % TENANT,
                                    {"grant_type": "refresh_token", "client_id": CLIENT,
                                     "refresh_token": rt}, raw=True)
        self.assertEqual((status, hdrs["Retry-After"]), (500, None))
        status, hdrs, _ = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual((status, hdrs["Retry-After"]), (503, "7"))
        status, hdrs, _ = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual(status, 429)
        when = email.utils.parsedate_to_datetime(hdrs["Retry-After"]).timestamp()
        self.assertLessEqual(abs(when - time.time() - 30), 2)
        status, hdrs, _ = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual((status, hdrs["Retry-After"]), (429, "120"))
        status, err = self.refresh(rt)
        self.assertAadError(err, "interaction_required", 50076)
        status, tok = self.refresh(rt)   # no fault consumed the refresh token
        self.assertEqual(status, 200)
        log = self.idp.requests("token")[-6:]
        self.assertEqual([r["fault"] for r in log],
                         ["500", "503", "429", "429", "aad:interaction_required:50076", None])
        self.assertEqual(log[0]["grant_type"], "refresh_token")
        self.assertEqual(log[0]["status"], 500)

    def test_fault_does_not_count_a_poll(self):
        self.idp.set(enforce_interval=True, interval=5)
        _, dc = self.devicecode()
        self.idp.approve(dc["user_code"])
        self.idp.queue_fault("503")
        self.assertEqual(self.poll(dc["device_code"])[0], 503)
        status, tok = self.poll(dc["device_code"])   # not "slow_down": the 503 was no poll
        self.assertEqual(status, 200, tok)

    def test_faults_are_per_endpoint_fifo(self):
        self.idp.queue_fault("500", endpoint="devicecode")
        self.idp.queue_fault("503", endpoint="token", count=2)
        self.assertEqual(self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)[0], 503)
        self.assertEqual(self.devicecode()[0], 500)
        self.assertEqual(self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)[0], 503)
        self.assertEqual(self.devicecode()[0], 200)

    def test_body_faults(self):
        for kind in ("html", "badjson"):
            self.idp.queue_fault(kind)
        status, hdrs, body = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual((status, hdrs.get_content_type()), (200, "text/html"))
        self.assertIn(b"<html>", body)
        status, hdrs, body = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual(status, 200)
        self.assertRaises(ValueError, json.loads, body)

    def test_truncated(self):
        self.idp.queue_fault("truncated")
        with self.assertRaises(http.client.IncompleteRead) as cm:
            self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual(cm.exception.expected, 4096 - len(cm.exception.partial))

    def test_huge(self):
        self.idp.set(huge_bytes=3 << 20)
        self.idp.queue_fault("huge")
        status, hdrs, body = self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertEqual((status, int(hdrs["Content-Length"]), len(body)),
                         (200, 3 << 20, 3 << 20))
        self.assertEqual(json.loads(body)["token_type"], "Bearer")
        self.idp.set(huge_bytes=8 << 20)
        self.idp.queue_fault("huge")   # a client that stops reading early
        conn = http.client.HTTPSConnection("127.0.0.1", self.idp.port, context=self.ctx)
        conn.request("POST", "/%s/oauth2/v2.0/token" % TENANT, body=b"")
        r = conn.getresponse()
        self.assertEqual(int(r.headers["Content-Length"]), 8 << 20)
        r.read(1024)
        conn.close()
        self.assertEqual(self.devicecode()[0], 200)

    def test_close_and_reset(self):
        self.idp.queue_fault("close")
        self.idp.queue_fault("reset")
        with self.assertRaises((http.client.RemoteDisconnected, urllib.error.URLError)) as cm:
            self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        self.assertNotIsInstance(getattr(cm.exception, "reason", None), ConnectionResetError)
        with self.assertRaises((ConnectionResetError, urllib.error.URLError)) as cm:
            self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True)
        reason = getattr(cm.exception, "reason", cm.exception)
        self.assertIsInstance(reason, ConnectionResetError)
        self.assertEqual([r["status"] for r in self.idp.requests()], [None, None])

    def test_hang(self):
        self.idp.queue_fault("hang")
        outcome = {}

        def hung_request():
            try:
                self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True, timeout=60)
                outcome["r"] = "answered"
            except Exception as e:   # noqa: BLE001: any failure is what we expect
                outcome["r"] = type(e).__name__
        t = threading.Thread(target=hung_request)
        t.start()
        self.assertTrue(wait_until(lambda: len(self.idp.requests()) == 1))
        self.idp.queue_fault("hang")
        with self.assertRaises((socket.timeout, TimeoutError, urllib.error.URLError)):
            self.call("/%s/oauth2/v2.0/token" % TENANT, {}, raw=True, timeout=0.3)
        start = time.monotonic()
        self.assertEqual(self.devicecode()[0], 200)   # the hang blocks nobody else
        self.assertLess(time.monotonic() - start, 2)
        self.assertTrue(t.is_alive())
        self.idp.stop()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertNotEqual(outcome["r"], "answered")

    def test_restart_keeps_state(self):
        rt = self.sign_in()["refresh_token"]
        port = self.idp.port
        self.idp.stop()
        with self.assertRaises(urllib.error.URLError) as cm:
            self.refresh(rt)
        self.assertIsInstance(cm.exception.reason, ConnectionRefusedError)
        self.idp.start()
        self.assertEqual(self.idp.port, port)
        status, tok = self.refresh(rt, {"client_info": "1"})
        self.assertEqual(status, 200)
        last = self.idp.requests("token")[-1]
        self.assertEqual((last["scope"], last["client_info"]), (SCOPE, "1"))

    def test_random_faults_are_deterministic(self):
        def sequence():
            idp = FakeIdp(CA_DIR).start()
            try:
                idp.random_faults(0.5, ["500", "503"], seed=42)
                ctx = ssl.create_default_context(cafile=idp.ca_file)
                out = []
                for _ in range(30):
                    req = urllib.request.Request(idp.url + "/organizations/oauth2/v2.0/token",
                                                 b"")
                    try:
                        urllib.request.urlopen(req, context=ctx, timeout=10)
                    except urllib.error.HTTPError as e:
                        out.append(e.code)
                return out, [r["fault"] for r in idp.requests()]
            finally:
                idp.stop()
        (a, fa), (b, fb) = sequence(), sequence()
        self.assertEqual((a, fa), (b, fb))
        self.assertTrue({"500", "503", None} <= set(fa))
        self.assertEqual(a, [int(f) if f else 400 for f in fa])

    # ---- Kubernetes stand-in, discovery, admin, CLI ---------------------------------------

    def test_kube_api(self):
        tok = self.sign_in(user="erin@contoso.com")["access_token"]
        status, body = self.call("/api/v1/namespaces/default/pods")
        self.assertEqual((status, body["code"]), (401, 401))
        status, body = self.call("/version", headers={"Authorization": "Bearer nope"})
        self.assertEqual(status, 401)
        auth = {"Authorization": "Bearer " + tok}
        self.assertEqual(self.call("/version", headers=auth),
                         (200, self.call("/version", headers=auth)[1]))
        self.assertEqual(self.call("/version", headers=auth)[1]["gitVersion"], "v1.28.0")
        self.assertEqual(self.call("/api/v1/namespaces/default/pods", headers=auth),
                         (200, {"kind": "PodList", "apiVersion": "v1",
                                "metadata": {"resourceVersion": "1"}, "items": []}))
        self.assertEqual(self.idp.requests("api")[-1]["user"], "erin@contoso.com")

    def test_kube_api_refuses_an_expired_token(self):
        # The long-running client tests count on this: a token is refused once it expired,
        # after api_expiry_leeway at most; and each request records which token it carried.
        self.idp.set(lifetime=1)
        tok = self.sign_in(user="erin@contoso.com")["access_token"]
        auth = {"Authorization": "Bearer " + tok}
        self.assertEqual(self.call("/api/v1/namespaces/a/pods", headers=auth)[0], 200)
        rec = self.idp.requests("api")[-1]
        self.assertEqual(len(rec["token_id"]), 12)
        self.assertNotIn(rec["token_id"], tok)
        self.assertLessEqual(rec["token_exp"], time.time() + 1)
        time.sleep(max(0, rec["token_exp"] - time.time()) + 0.05)
        self.assertEqual(self.call("/api/v1/namespaces/a/pods", headers=auth)[0], 401)
        self.idp.set(api_expiry_leeway=30.0)
        self.assertEqual(self.call("/api/v1/namespaces/a/pods", headers=auth)[0], 200)
        self.idp.set(api_expiry_leeway=0.0)
        self.assertEqual(self.call("/api/v1/namespaces/a/pods", headers=auth)[0], 401)

    @unittest.skipUnless(shutil.which("kubectl"), "kubectl not installed")
    def test_kubectl(self):
        tok = self.sign_in()["access_token"]
        kc = os.path.join(CA_DIR, "kubeconfig-%d" % self.idp.port)
        base = ["kubectl", "--kubeconfig", kc, "--server", self.idp.url,
                "--certificate-authority", self.idp.ca_file, "--request-timeout", "10s"]
        open(kc, "w").close()
        r = subprocess.run(base + ["--token", tok, "get", "pods"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No resources found", r.stdout + r.stderr)
        r = subprocess.run(base + ["--token", "bad", "get", "pods"], capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Unauthorized", r.stderr)

    def test_discovery(self):
        status, doc = self.call("/organizations/v2.0/.well-known/openid-configuration")
        self.assertEqual(status, 200)
        base = self.idp.url + "/organizations"
        self.assertEqual(doc["issuer"], base + "/v2.0")
        self.assertEqual(doc["token_endpoint"], base + "/oauth2/v2.0/token")
        self.assertEqual(doc["device_authorization_endpoint"], base + "/oauth2/v2.0/devicecode")
        self.assertIn("authorization_endpoint", doc)
        self.assertEqual(self.call(doc["jwks_uri"][len(self.idp.url):]), (200, {"keys": []}))

    def test_date_offset(self):
        def date():
            req = urllib.request.Request(self.idp.url + "/organizations/v2.0/.well-known/openid-configuration")
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                return email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()
        self.assertLess(abs(date() - time.time()), 5)
        self.idp.set(date_offset=-600)
        self.assertLess(abs(date() - (time.time() - 600)), 5)

    def test_admin_http(self):
        def admin(op, **args):
            req = urllib.request.Request(self.idp.url + "/_admin/" + op,
                                         json.dumps(args).encode(),
                                         {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                return json.load(r)
        self.assertEqual(admin("set", lifetime=77, refresh_in="none")["settings"]["lifetime"],
                         77)
        _, dc = self.devicecode()
        self.assertEqual(admin("pending")["user_codes"], [dc["user_code"]])
        self.assertEqual(admin("approve", user_code=dc["user_code"], user="f@x.org")["approved"],
                         1)
        tok = self.poll(dc["device_code"])[1]
        self.assertEqual((tok["expires_in"], jwt_claims(tok["access_token"])["upn"]),
                         (77, "f@x.org"))
        admin("fault", kind="503", retry_after=3)
        self.assertEqual(self.refresh(tok["refresh_token"])[0], 503)
        self.assertEqual(admin("revoke", user="f@x.org")["revoked"], 1)
        self.assertEqual(self.refresh(tok["refresh_token"])[1]["error"], "invalid_grant")
        self.assertEqual(admin("requests")["requests"][-1]["error"], "invalid_grant")
        self.assertTrue(admin("token_is_valid", token=tok["access_token"])["valid"])
        with self.assertRaises(urllib.error.HTTPError) as cm:
            admin("set", no_such_setting=1)
        self.assertEqual(cm.exception.code, 400)


class CliTest(unittest.TestCase):
    def test_cli(self):
        d = tempfile.mkdtemp(prefix="fake-idp-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        script = os.path.join(HERE, "fake_idp.py")
        p = subprocess.Popen([sys.executable, script, "--dir", d, "--lifetime", "45"],
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(p.kill)
        line = p.stdout.readline().strip()
        self.assertRegex(line, r"^READY https://127\.0\.0\.1:\d+$")
        url = line.split()[1]
        with open(os.path.join(d, "url")) as f:
            self.assertEqual(f.read().strip(), url)
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        req = urllib.request.Request(url + "/organizations/oauth2/v2.0/devicecode",
                                     urllib.parse.urlencode({"client_id": CLIENT,
                                                             "scope": SCOPE}).encode())
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            user_code = json.load(r)["user_code"]
        out = subprocess.run([sys.executable, script, "--dir", d, "admin", "pending"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(out.stdout)["user_codes"], [user_code])
        out = subprocess.run([sys.executable, script, "--dir", d, "admin", "approve"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(out.stdout)["approved"], 1)
        start = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(5), 0)
        self.assertLess(time.monotonic() - start, 2)
        p.stdout.close()


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(CA_DIR, ignore_errors=True)
