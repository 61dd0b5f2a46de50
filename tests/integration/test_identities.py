"""The identities of issue 15 end to end: the real daemon over HTTPS against the local identity
provider, for each unattended kind (client secret, client certificate, workload identity,
managed identity on a VM, App Service and Arc) and for the browser sign-in. Each puts a valid
token in every output at once, renews it before expiry through faults, and a rejected credential
gives the state, exit code and message the contract names. The harness fails every test whose
logs or state directory hold a secret, a key line or an assertion."""

import json
import os
import time
import unittest
import urllib.parse
import uuid

import harness
from harness import Env, read, wait_until
from fake_idp import FakeManagedIdentity, make_client_certificate

APP = "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUBJECT = "system:serviceaccount:spark:spark-driver"
# One lifetime for every token in this file: short enough to see several renewals. The
# daemon's refresh floor is lowered for tests by the harness.
LIFETIME = 6
RENEWALS = 3
SANITIZED = any(k in os.environ for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"))
FIRST_TOKEN_WITHIN = 1.0 * (5 if SANITIZED else 1)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Unattended:
    """Shared checks for the kinds with no person."""

    def outputs(self, env):
        return {"token_file": env.path("home", "token"),
                "spark_properties": env.path("home", "spark.properties")}

    def read_outputs(self, env):
        out = self.outputs(env)
        try:
            token = read(out["token_file"])
            props = read(out["spark_properties"])
        except FileNotFoundError:
            return None
        key = "spark.kubernetes.authenticate.submission.oauthToken"
        line = [l for l in props.splitlines() if l.startswith(key)]
        if not line or line[0][len(key):].strip(" \t=:") != token:
            return None
        return token

    def start_and_time_first_token(self, env, idp, daemon_env=None):
        start = time.monotonic()
        d = env.start_daemon(wait=False, env=daemon_env)
        token = wait_until(lambda: (lambda t: t if t and idp.token_is_valid(t) else None)(
            self.read_outputs(env)), 10 * (5 if SANITIZED else 1), "a valid token in every output")
        took = time.monotonic() - start
        d.wait_ready()
        self.assertLess(took, FIRST_TOKEN_WITHIN, "the first token took %.2fs" % took)
        return d, token

    def assert_renewals(self, env, idp, d, first, faults=(), endpoint="token", rotate=None):
        """RENEWALS new tokens, each before the last expired, with a fault queued before each."""
        seen = [first]
        for i in range(RENEWALS):
            if faults:
                idp.queue_fault(faults[i % len(faults)], endpoint=endpoint)
            if rotate:
                rotate(i)
            previous = seen[-1]
            exp = json.loads(harness_b64(previous.split(".")[1]))["exp"]
            token = wait_until(lambda: (lambda t: t if t and t not in seen and idp.token_is_valid(t)
                                        else None)(self.read_outputs(env)),
                               LIFETIME * 10, "renewal %d" % (i + 1), interval=0.05)
            self.assertLess(time.time(), exp + 1, "renewal %d came after the token expired" % (i + 1))
            seen.append(token)
        st = d.wait_state("valid")   # the next renewal may be running at any instant
        self.assertEqual(d.ctl("check", "--min-valid", "1s").returncode, 0)
        return seen

    def assert_no_person(self, d):
        for op in ("login", "logout"):
            a = d.request({"op": op})
            self.assertEqual((a["ok"], a["error"]), (False, "bad_request"), a)
            self.assertIn("no person", a["message"])

    def assert_rejected(self, env, d, code):
        st = wait_until(lambda: (lambda s: s if s["state"] == "error" else None)(d.status()), 20,
                        "state error")
        self.assertIn("AADSTS%d" % code, st["last_error"])
        self.assertIn("correlation id", st["last_error"])
        p = d.ctl("check")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("AADSTS%d" % code, p.stderr)
        self.assertIn("AADSTS%d" % code, d.log())


def harness_b64(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class ServicePrincipalTest(Unattended, unittest.TestCase):
    def profile(self, env, **keys):
        p = {"auth": keys.pop("auth"), "client_id": APP, "tenant": TENANT}
        p.update(self.outputs(env))
        p.update(keys)
        return {"default": p}

    def test_client_secret(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            secret = idp.add_client_secret(APP)
            path = write_private(env.path("secret"), secret + "\n")
            env.add_secret_file(path)
            env.write_config(self.profile(env, auth="client_secret", client_secret_file=path))
            d, first = self.start_and_time_first_token(env, idp)
            claims = json.loads(harness_b64(first.split(".")[1]))
            self.assertEqual((claims["idtyp"], claims["appid"]), ("app", APP))
            self.assert_renewals(env, idp, d, first, faults=("503", "close", "500"))
            reqs = [r for r in idp.requests("token") if r["grant_type"] == "client_credentials"
                    and not r["fault"]]
            self.assertTrue(reqs)
            for r in reqs:
                self.assertEqual((r["auth"], r["client_info"], r["scope"], r["lib_capability"]),
                                 ("secret", "1", "6dae42f8-4368-4678-94ff-3960e28e3630/.default",
                                  "retry-after, h429"))
            self.assertEqual(d.status()["account"], APP)
            self.assert_no_person(d)
            d.stop()

    def test_wrong_secret(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            idp.add_client_secret(APP)
            path = write_private(env.path("secret"), "Fk8Q~not-the-secret-at-all-0123456789")
            env.add_secret_file(path)
            env.write_config(self.profile(env, auth="client_secret", client_secret_file=path))
            d = env.start_daemon()
            self.assert_rejected(env, d, 7000215)
            d.stop()

    def test_secret_file_readable_by_others_is_refused(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            path = write_private(env.path("secret"), idp.add_client_secret(APP))
            env.add_secret_file(path)
            os.chmod(path, 0o644)
            env.write_config(self.profile(env, auth="client_secret", client_secret_file=path))
            p = harness.subprocess.run([harness.TOKEND, "--config", env.config_path, "--check-config"],
                                       capture_output=True, text=True, timeout=30,
                                       env=env.daemon_environment())
            self.assertEqual(p.returncode, 78, p.stdout + p.stderr)
            self.assertIn("may be read by others than its owner: run chmod 600 %s" % path, p.stderr)
            os.chmod(path, 0o600)
            p = harness.subprocess.run([harness.TOKEND, "--config", env.config_path, "--check-config"],
                                       capture_output=True, text=True, timeout=30,
                                       env=env.daemon_environment())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("client_secret as %s" % APP, p.stdout)

    def test_client_certificate(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            password = "a-long-test-password-%s" % uuid.uuid4().hex
            pem, cert = make_client_certificate(env.root, "app", password=password)
            idp.add_client_certificate(APP, cert)
            pw = write_private(env.path("password"), password + "\n")
            for f in (pem, pw):
                env.add_secret_file(f)
            env.write_config(self.profile(env, auth="client_certificate", client_certificate=pem,
                                          client_certificate_password_file=pw))
            d, first = self.start_and_time_first_token(env, idp)
            self.assert_renewals(env, idp, d, first, faults=("429", "reset", "badjson"))
            used = [r for r in idp.requests("token") if r["auth"] == "certificate"
                    and r["status"] == 200]
            self.assertGreaterEqual(len(used), RENEWALS + 1)
            self.assertEqual({r["assertion_alg"] for r in used}, {"PS256"})
            # a new assertion for every request (the fake refuses a jti twice)
            self.assertEqual(len({r["assertion_sha256"] for r in used}), len(used))
            self.assert_no_person(d)
            d.stop()

    def test_unknown_certificate(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            _, cert = make_client_certificate(env.root, "registered")
            idp.add_client_certificate(APP, cert)
            pem, _ = make_client_certificate(env.root, "other")
            env.add_secret_file(pem)
            env.write_config(self.profile(env, auth="client_certificate", client_certificate=pem))
            d = env.start_daemon()
            self.assert_rejected(env, d, 700027)
            d.stop()


class WorkloadIdentityTest(Unattended, unittest.TestCase):
    def setup_world(self, env, idp, lifetime=3600):
        idp.add_federated_credential(APP, SUBJECT)
        path = env.path("azure-identity-token")
        write_private(path, idp.issue_federated_token(SUBJECT, lifetime=lifetime))
        os.chmod(path, 0o644)   # as the kubelet projects it: not a file the daemon refuses
        p = dict(self.outputs(env), auth="workload_identity", ca_file=idp.ca_file, tenant=None)
        # tenant, client and authority from the environment the webhook sets
        env.write_config({"default": p}, idp=False)
        variables = {"AZURE_FEDERATED_TOKEN_FILE": path, "AZURE_CLIENT_ID": APP,
                     "AZURE_TENANT_ID": TENANT, "AZURE_AUTHORITY_HOST": idp.url}
        return path, variables

    def test_workload_identity(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            path, variables = self.setup_world(env, idp)
            d, first = self.start_and_time_first_token(env, idp, daemon_env=variables)
            rotated = []

            def rotate(i):   # the kubelet replaces the file: the next request must carry it
                token = idp.issue_federated_token(SUBJECT, lifetime=3600)
                tmp = path + ".tmp"
                write_private(tmp, token)
                os.replace(tmp, path)
                rotated.append(token)
            self.assert_renewals(env, idp, d, first, faults=("503", "reset"), rotate=rotate)
            import hashlib
            sent = {r["assertion_sha256"] for r in idp.requests("token")
                    if r["auth"] == "federated" and r["status"] == 200}
            for token in rotated:
                self.assertIn(hashlib.sha256(token.encode()).hexdigest()[:16], sent)
            reqs = [r for r in idp.requests("token") if r["auth"] == "federated"]
            self.assertEqual({r["tenant"] for r in reqs}, {TENANT})
            self.assert_no_person(d)
            d.stop()

    def test_outside_the_pod_says_what_is_missing(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            path, variables = self.setup_world(env, idp)
            del variables["AZURE_TENANT_ID"]
            d = env.start_daemon(env=variables)
            st = wait_until(lambda: (lambda s: s if s["state"] == "error" else None)(d.status()), 20,
                            "state error")
            self.assertIn("workload identity needs AZURE_TENANT_ID", st["last_error"])
            self.assertEqual(d.ctl("check").returncode, 1)
            d.stop()

    def test_expired_federated_token(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            _, variables = self.setup_world(env, idp, lifetime=-600)
            d = env.start_daemon(env=variables)
            self.assert_rejected(env, d, 700024)
            d.stop()


class ManagedIdentityTest(Unattended, unittest.TestCase):
    def profile(self, env, **keys):
        p = dict(self.outputs(env), auth="managed_identity", tenant=None)
        p.update(keys)
        return {"default": p}

    def start_mi(self, env, idp, kind, **kw):
        mi = FakeManagedIdentity(idp, kind, **kw).start()
        self.addCleanup(mi.stop)
        return mi

    def test_imds(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            mi = self.start_mi(env, idp, "vm")
            uami = mi.add_user_assigned()
            env.write_config(self.profile(env, imds_endpoint=mi.url,
                                          managed_identity_client_id=uami["client_id"]), idp=False)
            d, first = self.start_and_time_first_token(env, idp)
            self.assertEqual(json.loads(harness_b64(first.split(".")[1]))["appid"], uami["client_id"])
            self.assert_renewals(env, idp, d, first, faults=("500", "429", "close"), endpoint="imds")
            for r in idp.requests("imds"):
                self.assertEqual(r["metadata"], "true")
                if r["fault"]:
                    continue
                self.assertEqual(r["resource"], "6dae42f8-4368-4678-94ff-3960e28e3630")
            self.assert_no_person(d)
            d.stop()

    def test_imds_that_answers_500(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            mi = self.start_mi(env, idp, "vm")
            env.write_config(self.profile(env, imds_endpoint=mi.url), idp=False)
            idp.queue_fault("500", endpoint="imds", count=2)
            d = env.start_daemon()
            # transient: retried until it answers
            wait_until(lambda: (lambda t: t and idp.token_is_valid(t))(self.read_outputs(env)),
                       30, "a token after two 500s")
            self.assertEqual(len([r for r in idp.requests("imds") if r["fault"] == "500"]), 2)
            # persistently: the token runs out, check says why and exits 1
            idp.queue_fault("500", endpoint="imds", count=10000)
            # Retries keep running (expired turns refreshing for an instant): wait for expired.
            st = d.wait_state("expired", timeout=LIFETIME * 10)
            self.assertIn("HTTP 500", st["last_error"])
            p = d.ctl("check")
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("HTTP 500", p.stderr)
            self.assertGreater(len([r for r in idp.requests("imds") if r["fault"] == "500"]), 3)
            idp.clear_faults()
            wait_until(lambda: d.status()["state"] == "valid", LIFETIME * 10, "recovery")
            d.stop()

    def test_forced_refresh_rides_through_two_500s(self):
        """IMDS's 429/5xx are retried within the call (0.8 s, 1.6 s): refresh exits 0."""
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            mi = self.start_mi(env, idp, "vm")
            env.write_config(self.profile(env, imds_endpoint=mi.url), idp=False)
            d, first = self.start_and_time_first_token(env, idp)
            idp.queue_fault("500", endpoint="imds", count=2)
            start = time.monotonic()
            p = d.ctl("refresh")
            took = time.monotonic() - start
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len([r for r in idp.requests("imds") if r["fault"] == "500"]), 2)
            self.assertGreater(took, 0.8 + 1.6 - 0.1, "the retries did not back off")
            token = self.read_outputs(env)
            self.assertTrue(token != first and idp.token_is_valid(token))
            idp.queue_fault("503", endpoint="imds", count=1)
            self.assertEqual(d.ctl("check", "--min-valid", "1s").returncode, 0)
            d.stop()

    def test_app_service(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            mi = self.start_mi(env, idp, "appservice")
            env.write_config(self.profile(env), idp=False)
            d, first = self.start_and_time_first_token(env, idp, daemon_env=mi.env())
            self.assert_renewals(env, idp, d, first, faults=("503",), endpoint="imds")
            d.stop()


class ArcTest(Unattended, unittest.TestCase):
    def test_arc_challenge(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            keys = env.path("azcmagent-tokens")
            mi = FakeManagedIdentity(idp, "arc", key_dir=keys).start()
            self.addCleanup(mi.stop)
            p = dict(self.outputs(env), auth="managed_identity", tenant=None)
            env.write_config({"default": p}, idp=False)
            variables = dict(mi.env(), AKSSPARK_TEST_ARC_KEY_DIR=keys)
            d, first = self.start_and_time_first_token(env, idp, daemon_env=variables)
            self.assert_renewals(env, idp, d, first, faults=("500",), endpoint="imds")
            reqs = [r for r in idp.requests("imds") if not r["fault"]]
            # each token: a 401 with the challenge, then the answer with the key
            self.assertEqual([r["status"] for r in reqs[:2]], [401, 200])
            self.assertGreaterEqual(len([r for r in reqs if r["status"] == 200]), RENEWALS + 1)
            d.stop()

    def test_arc_challenge_outside_its_directory_is_refused(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            keys = env.path("elsewhere")
            mi = FakeManagedIdentity(idp, "arc", key_dir=keys).start()
            self.addCleanup(mi.stop)
            p = dict(self.outputs(env), auth="managed_identity", tenant=None)
            env.write_config({"default": p}, idp=False)
            variables = dict(mi.env(), AKSSPARK_TEST_ARC_KEY_DIR=env.path("azcmagent-tokens"))
            d = env.start_daemon(env=variables)
            st = wait_until(lambda: (lambda s: s if s["state"] == "error" else None)(d.status()), 20,
                            "state error")
            self.assertIn("no key file in its token directory", st["last_error"])
            self.assertEqual(d.ctl("check").returncode, 1)
            d.stop()


class BrowserTest(unittest.TestCase):
    USER = "carol@contoso.com"

    def start_login(self, d, *flags):
        import subprocess
        proc = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"] + list(flags),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        url = next((w for w in line.split() if w.startswith("https://")), None)
        self.assertTrue(url, "login printed no URL: %r" % line)
        return proc, url

    def finish_login(self, env, proc):
        out, err = proc.communicate(timeout=60)
        env.client_stderr.append(err)
        return proc.returncode, out, err

    def test_browser_sign_in_then_refreshes_through_faults(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            token_file = env.path("home", "token")
            env.write_config({"default": {"auth": "browser", "token_file": token_file}})
            d = env.start_daemon()
            self.assertEqual(d.status()["state"], "login_required")
            proc, url = self.start_login(d)
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
            self.assertEqual((q["response_type"], q["code_challenge_method"], q["prompt"]),
                             ("code", "S256", "select_account"))
            redirect = urllib.parse.urlsplit(q["redirect_uri"])
            self.assertEqual((redirect.scheme, redirect.hostname), ("http", "localhost"))
            # a visit with another state is refused, and the sign-in goes on
            forged = url.replace("state=" + q["state"], "state=" + "x" * 22)
            out = idp.browse(forged)
            self.assertEqual(out["app_status"], 400)
            self.assertIn(b"state mismatch", out["app_body"])
            self.assertIsNone(proc.poll())
            out = idp.browse(url, user=self.USER)
            self.assertEqual(out["app_status"], 200)
            self.assertIn(b"Signed in", out["app_body"])
            rc, stdout, err = self.finish_login(env, proc)
            self.assertEqual(rc, 0, err)
            self.assertIn("Signed in as %s" % self.USER, stdout)
            code_grants = [r for r in idp.requests("token") if r["grant_type"] == "authorization_code"]
            self.assertEqual(len(code_grants), 1)
            self.assertEqual((code_grants[0]["status"], code_grants[0]["client_info"]), (200, "1"))
            self.assertEqual(idp.access_token_user(read(token_file)), self.USER)
            # the port is closed after the one sign-in
            import socket
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", redirect.port), timeout=2).close()
            # then it refreshes like a device-code profile, through faults
            seen = {read(token_file)}
            for fault in ("503", "close", "429"):
                idp.queue_fault(fault)
                token = wait_until(lambda: (lambda t: t if t not in seen and idp.token_is_valid(t)
                                            else None)(read(token_file)), LIFETIME * 10,
                                   "a refresh after %s" % fault)
                seen.add(token)
            refreshes = [r for r in idp.requests("token") if r["grant_type"] == "refresh_token"
                         and r["status"] == 200]
            self.assertGreaterEqual(len(refreshes), 3)
            d.wait_state("valid")
            d.stop()

    def test_declined_and_device_code_override(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            env.write_config({"default": {"auth": "browser", "token_file": env.path("home", "t")}})
            d = env.start_daemon()
            proc, url = self.start_login(d)
            out = idp.browse(url, decline=True)
            self.assertEqual(out["app_status"], 400)
            rc, _, err = self.finish_login(env, proc)
            self.assertNotEqual(rc, 0)
            self.assertIn("access_denied", d.status()["last_error"])
            # login --device-code on a browser profile: the device flow, once
            import subprocess
            p = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login",
                                  "--device-code"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            code = wait_until(lambda: idp.pending_device_codes(), 20, "a device code")[0]
            idp.approve(code, user=self.USER)
            stdout, err = p.communicate(timeout=60)
            env.client_stderr.append(err)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn(code, stdout)
            d.wait_state("valid")
            d.stop()


class ConditionalAccessTest(unittest.TestCase):
    CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["5e2d6f4a"]}}}'

    def test_claims_challenge_is_shown_and_answered(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            env.write_config({"default": {"token_file": env.path("home", "t")}})
            d = env.start_daemon()
            d.sign_in(idp)
            idp.queue_fault("aad:interaction_required:50076:basic_action", claims=self.CLAIMS)
            st = wait_until(lambda: (lambda s: s if s["state"] == "login_required" else None)(
                d.status()), LIFETIME * 10, "login_required after the challenge")
            self.assertIn("AADSTS50076", st["last_error"])
            self.assertIn("suberror basic_action", st["last_error"])
            self.assertIn("claims challenge", st["last_error"])
            # the next sign-in (device code) sends the claims with the redemption
            d.sign_in(idp)
            redeemed = [r for r in idp.requests("token") if r["grant_type"] ==
                        "urn:ietf:params:oauth:grant-type:device_code" and r["status"] == 200]
            self.assertEqual(redeemed[-1]["claims"], self.CLAIMS)
            self.assertEqual(redeemed[-1]["client_info"], "1")
            d.wait_state("valid")
            d.stop()

    def test_claims_go_to_the_browser_sign_in(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            env.write_config({"default": {"token_file": env.path("home", "t")}})
            d = env.start_daemon()
            d.sign_in(idp)
            idp.queue_fault("aad:interaction_required:53003", claims=self.CLAIMS)
            wait_until(lambda: d.status()["state"] == "login_required", LIFETIME * 10, "login_required")
            proc, url = BrowserTest.start_login(self, d, "--browser")
            self.assertEqual(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["claims"],
                             self.CLAIMS)
            self.assertEqual(idp.browse(url)["app_status"], 200)
            rc, _, err = BrowserTest.finish_login(self, env, proc)
            self.assertEqual(rc, 0, err)
            self.assertEqual(idp.requests("authorize")[-1]["claims"], self.CLAIMS)
            d.stop()

    def test_message_only_says_a_sign_in_will_not_help(self):
        with Env() as env:
            idp = env.start_idp(lifetime=LIFETIME)
            env.write_config({"default": {"token_file": env.path("home", "t")}})
            d = env.start_daemon()
            d.sign_in(idp)
            idp.queue_fault("aad:interaction_required:53000:message_only")
            st = wait_until(lambda: (lambda s: s if s["state"] == "error" else None)(d.status()),
                            LIFETIME * 10, "state error")
            self.assertIn("a new sign-in will not help", st["last_error"])
            self.assertIn("AADSTS53000", st["last_error"])
            p = d.ctl("check")
            self.assertEqual(p.returncode, 1, p.stderr)
            d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
