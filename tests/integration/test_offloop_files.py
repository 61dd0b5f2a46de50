"""Credential files, and the configuration on a reload, are read off the event loop (issue 20, item 6). The client secret file of an
unattended profile sits on a FUSE file system whose server is stopped: every request reads it
again, and that read hangs. Meanwhile the socket answers every status within 100 ms, the loop
never stalls (the harness checks the daemon's own stall log at the end), and once the server
goes on the refresh that waited finishes with a new token. The same for the configuration file
on a reload (SIGHUP and the socket's reload): the socket's reload answers once the reload is
applied, after the server goes on."""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Env, wait_until
from test_identities import APP, TENANT, write_private
from test_robustness import DEBIAN_PYTHON, MemFs, StatusProbe, token_of


@unittest.skipUnless(harness.IS_ROOT and os.path.exists("/dev/fuse") and os.path.exists(DEBIAN_PYTHON),
                     "mounting a FUSE file system needs root and /dev/fuse")
class HungCredentialFileTest(unittest.TestCase):
    def test_a_hung_client_secret_file_stalls_nothing(self):
        with Env() as env:
            fs = MemFs(env.path("nfs"))
            try:
                idp = env.start_idp(lifetime=3600)
                secret = write_private(os.path.join(fs.mountpoint, "secret"), idp.add_client_secret(APP) + "\n")
                env.add_secret_file(secret)
                token_file = env.path("token")
                env.write_config({"default": {"auth": "client_secret", "client_id": APP, "tenant": TENANT,
                                              "client_secret_file": secret, "token_file": token_file}})
                d = env.start_daemon()
                first = wait_until(lambda: token_of(token_file), 20, "the first token")
                fs.freeze()
                refresh = None
                try:
                    with StatusProbe(d) as probe:
                        refresh = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "refresh"],
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                        wait_until(lambda: len(probe.times) >= 60, 30, "60 timed status answers")
                        self.assertIsNone(refresh.poll(), "refresh ended although the secret cannot be read")
                    worst = probe.assert_fast(self)
                    print("slowest status while the secret file hung: %.1f ms of %d"
                          % (worst * 1000, len(probe.times)), flush=True)
                finally:
                    fs.thaw()
                out, err = refresh.communicate(timeout=60)
                self.assertEqual(refresh.returncode, 0, err)
                self.assertNotEqual(token_of(token_file), first)
                self.assertTrue(idp.token_is_valid(token_of(token_file)))
                d.stop(timeout=5)
            finally:
                fs.close()


@unittest.skipUnless(harness.IS_ROOT and os.path.exists("/dev/fuse") and os.path.exists(DEBIAN_PYTHON),
                     "mounting a FUSE file system needs root and /dev/fuse")
class HungConfigurationFileTest(unittest.TestCase):
    def test_a_reload_from_a_hung_file_system_stalls_nothing(self):
        with Env() as env:
            fs = MemFs(env.path("nfs"))
            try:
                env.start_idp(lifetime=3600)
                env.write_config({"default": {"client_id": APP}})
                config = os.path.join(fs.mountpoint, "config.ini")
                with open(env.config_path) as f:
                    text = f.read()
                with open(config, "w") as f:
                    f.write(text)
                d = env.start_daemon(config=config)
                self.assertEqual([p["name"] for p in d.request({"op": "profiles"})["profiles"]], ["default"])
                # The new configuration, in place before the server stops: the reload reads it.
                with open(config, "w") as f:
                    f.write(text + "\n[profile second]\ntenant = %s\nclient_id = %s\nauthority_host = %s\n"
                            "ca_file = %s\n" % (TENANT, APP, env.idp.url, env.idp.ca_file))
                fs.freeze()
                answers = []
                asker = threading.Thread(target=lambda: answers.append(d.request({"op": "reload"}, timeout=90)),
                                         daemon=True)
                try:
                    with StatusProbe(d) as probe:
                        os.kill(d.pid, signal.SIGHUP)
                        asker.start()
                        wait_until(lambda: len(probe.times) >= 60, 30, "60 timed status answers")
                        self.assertEqual(answers, [], "reload answered although the configuration cannot be read")
                    worst = probe.assert_fast(self)
                    print("slowest status while the configuration file hung: %.1f ms of %d"
                          % (worst * 1000, len(probe.times)), flush=True)
                finally:
                    fs.thaw()
                asker.join(60)
                self.assertEqual(len(answers), 1, "the socket's reload got no answer")
                self.assertTrue(answers[0].get("ok"), answers[0])
                names = [p["name"] for p in d.request({"op": "profiles"})["profiles"]]
                self.assertEqual(names, ["default", "second"])
                d.wait_log("Configuration reloaded: 2 profiles.")
                # systemd's reload handshake: READY=1 comes after the last RELOADING=1.
                msgs = wait_until(lambda: (lambda m: m if m and "READY=1" in m[-1] else None)(
                    [x for x in d.notify_messages() if "RELOADING=1" in x or "READY=1" in x]), 10, "READY=1")
                self.assertIn("RELOADING=1", "".join(msgs))
                d.stop(timeout=5)
            finally:
                fs.close()

    def test_a_stop_during_a_hung_reload_is_quick(self):
        with Env() as env:
            fs = MemFs(env.path("nfs"))
            try:
                env.start_idp(lifetime=3600)
                env.write_config({"default": {"client_id": APP}})
                config = os.path.join(fs.mountpoint, "config.ini")
                with open(env.config_path) as f, open(config, "w") as out:
                    out.write(f.read())
                d = env.start_daemon(config=config)
                fs.freeze()
                try:
                    os.kill(d.pid, signal.SIGHUP)
                    d.wait_log("reloading the configuration")
                    d.request({"op": "status"}, timeout=5)  # raises if the loop hangs on the read
                    start = time.monotonic()
                    d.proc.send_signal(signal.SIGTERM)
                    d.proc.wait(timeout=10)
                    took = time.monotonic() - start
                finally:
                    fs.thaw()
                self.assertEqual(d.proc.returncode, 0, d.log())
                self.assertLess(took, 2.0, "the daemon took %.1f s to stop with a reload hung" % took)
                print("stop with a reload hung: %.0f ms" % (took * 1000), flush=True)
            finally:
                fs.close()


if __name__ == "__main__":
    unittest.main()
