"""A write waiting behind a hung one from before a reload never lands afterwards (issue 20,
item 5). A profile's token_file is on a FUSE file system whose server is stopped: its write
hangs, the next refresh's write waits behind it. A reload then removes the profile. When the
server goes on, the hung write finishes, but the waiting one (a newer token of a profile that
no longer exists) must never be written. Before the fix it was."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Env, wait_until
from test_robustness import DEBIAN_PYTHON, MemFs, token_of


@unittest.skipUnless(harness.IS_ROOT and os.path.exists("/dev/fuse") and os.path.exists(DEBIAN_PYTHON),
                     "mounting a FUSE file system needs root and /dev/fuse")
class StaleWorkerTest(unittest.TestCase):
    def test_waiting_write_of_a_removed_profile_never_lands(self):
        with Env() as env:
            fs = MemFs(env.path("nfs-home"))
            try:
                idp = env.start_idp(lifetime=6)
                hung_token = os.path.join(fs.mountpoint, "oauthToken")
                other_token = env.path("other.token")
                profiles = {"gone": {"token_file": hung_token}, "other": {"token_file": other_token}}
                env.write_config(profiles=profiles)
                d = env.start_daemon()
                d.sign_in(idp, profile="gone", user="bob@contoso.com")
                d.sign_in(idp, profile="other")
                self.assertTrue(idp.token_is_valid(harness.read(hung_token)))

                def bob_refreshes():
                    return len([r for r in idp.requests("token") if r.get("grant_type") == "refresh_token"
                                and r.get("user") == "bob@contoso.com" and r.get("status") == 200])
                fs.freeze()
                try:
                    before = bob_refreshes()
                    # one write hangs, the next waits behind it
                    wait_until(lambda: bob_refreshes() >= before + 2, 30, "two refreshes of the hung profile")
                    newest = d.request({"op": "token", "profile": "gone"})["access_token"]
                    del profiles["gone"]
                    env.write_config(profiles=profiles)
                    self.assertTrue(d.request({"op": "reload"})["ok"])
                    self.assertEqual([p["name"] for p in d.request({"op": "profiles"})["profiles"]], ["other"])
                finally:
                    fs.thaw()
                # The hung write finishes; give the old thread time to run anything it still holds.
                wait_until(lambda: token_of(hung_token) is not None, 10, "the hung write to finish")
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    self.assertTrue(token_of(hung_token) != newest,   # no token in the message
                                    "a waiting write of a removed profile landed after the reload")
                    time.sleep(0.05)
                self.assertIsNone(d.proc.poll(), d.log()[-3000:])
                self.assertNotIn("AddressSanitizer", d.log())
                d.stop(timeout=5)
            finally:
                fs.close()


if __name__ == "__main__":
    unittest.main()
