"""A reload while a request is in flight, for every kind of identity (issue 20, item 1): the
identity provider holds its answer, `aksspark-tokenctl refresh` waits for it, and the
configuration is reloaded meanwhile (SIGHUP, then the socket's reload). The reload frees the
old configuration; the request in flight must not read it (under ASan a use-after-free kills
the daemon). The daemon survives, refresh exits 0 and a valid new token is in the outputs."""

import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Env, wait_until
from fake_idp import FakeManagedIdentity, make_client_certificate
from test_identities import APP, SUBJECT, TENANT, Unattended, write_private

SANITIZED = harness.built_with_sanitizers()
HOLD = 3   # seconds the identity provider holds its answer (below the profile's 5 s timeout)


class ReloadInFlight(Unattended, unittest.TestCase):
    def held_reload(self, env, idp, d, endpoint, how):
        """Refresh with the answer held, reload (how: "sighup" or "socket") while it is held."""
        first = self.read_outputs(env)
        idp.queue_fault("delay:%d" % HOLD, endpoint=endpoint)
        before = len(idp.requests(endpoint))
        refresh = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "refresh"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: any(r["fault"] and r["fault"].startswith("delay:")
                                   for r in idp.requests(endpoint)[before:]),
                       HOLD, "the request held at the identity provider")
            if how == "sighup":
                d.proc.send_signal(signal.SIGHUP)
                d.wait_log("Configuration reloaded", timeout=10)
            else:
                self.assertTrue(d.request({"op": "reload"})["ok"])
            out, err = refresh.communicate(timeout=HOLD * 10)
        except BaseException:
            refresh.kill()
            refresh.communicate()
            raise
        self.assertIsNone(d.proc.poll(), "the daemon died:\n" + d.log()[-4000:])
        self.assertEqual(refresh.returncode, 0, err + d.log()[-3000:])
        token = wait_until(lambda: (lambda t: t if t and t != first and idp.token_is_valid(t)
                                    else None)(self.read_outputs(env)), 20, "a new valid token")
        self.assertEqual(d.status()["state"], "valid")
        return token

    def both_reloads(self, env, idp, d, endpoint="token"):
        self.held_reload(env, idp, d, endpoint, "sighup")
        self.held_reload(env, idp, d, endpoint, "socket")
        self.assertNotIn("AddressSanitizer", d.log())
        d.stop(timeout=5)

    def unattended(self, env, idp, profile, daemon_env=None, endpoint="token"):
        p = dict(self.outputs(env), tenant=None)
        p.update(profile)
        env.write_config({"default": p}, idp=None if "client_id" in profile else False)
        d = env.start_daemon(env=daemon_env)
        wait_until(lambda: (lambda t: t and idp.token_is_valid(t))(self.read_outputs(env)), 20,
                   "the first token")
        self.both_reloads(env, idp, d, endpoint)

    def test_device_code_refresh(self):
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            env.write_config({"default": self.outputs(env)})
            d = env.start_daemon()
            d.sign_in(idp)
            wait_until(lambda: self.read_outputs(env), 20, "the signed-in token")
            self.both_reloads(env, idp, d)

    def test_client_secret(self):
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            path = write_private(env.path("secret"), idp.add_client_secret(APP) + "\n")
            env.add_secret_file(path)
            self.unattended(env, idp, {"auth": "client_secret", "client_id": APP, "tenant": TENANT,
                                       "client_secret_file": path})

    def test_client_certificate(self):
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            pem, cert = make_client_certificate(env.root, "app")
            idp.add_client_certificate(APP, cert)
            env.add_secret_file(pem)
            self.unattended(env, idp, {"auth": "client_certificate", "client_id": APP,
                                       "tenant": TENANT, "client_certificate": pem})

    def test_workload_identity(self):
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            idp.add_federated_credential(APP, SUBJECT)
            path = write_private(env.path("azure-identity-token"),
                                 idp.issue_federated_token(SUBJECT, lifetime=3600))
            variables = {"AZURE_FEDERATED_TOKEN_FILE": path, "AZURE_CLIENT_ID": APP,
                         "AZURE_TENANT_ID": TENANT, "AZURE_AUTHORITY_HOST": idp.url}
            self.unattended(env, idp, {"auth": "workload_identity", "ca_file": idp.ca_file},
                            daemon_env=variables)

    def managed(self, kind):
        with Env() as env:
            idp = env.start_idp(lifetime=3600)
            kw = {"key_dir": env.path("azcmagent-tokens")} if kind == "arc" else {}
            mi = FakeManagedIdentity(idp, kind, **kw).start()
            self.addCleanup(mi.stop)
            profile = {"auth": "managed_identity"}
            variables = mi.env() if kind != "vm" else None
            if kind == "vm":
                profile["imds_endpoint"] = mi.url
            if kind == "arc":
                variables = dict(variables, AKSSPARK_TEST_ARC_KEY_DIR=kw["key_dir"])
            self.unattended(env, idp, profile, daemon_env=variables, endpoint="imds")

    def test_managed_identity_imds(self):
        self.managed("vm")

    def test_managed_identity_app_service(self):
        self.managed("appservice")

    def test_managed_identity_arc(self):
        self.managed("arc")


if __name__ == "__main__":
    unittest.main()
