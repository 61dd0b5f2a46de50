"""Secret hygiene around the daemon (issue 20, item 7): notify_command runs with a clean
environment, never the daemon's IDENTITY_HEADER or other credentials, but with what a notifier
needs (PATH, HOME, the AKSSPARK_ variables)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env, read, wait_until


class NotifyEnvironmentTest(unittest.TestCase):
    def test_notify_command_gets_a_clean_environment(self):
        with Env() as env:
            env.start_idp()
            dump = env.path("notify-env")
            # /proc/self/environ of the command itself: what it was given, NUL-separated
            env.write_config(daemon={"notify_command": "cat /proc/$$/environ > %s.tmp && mv %s.tmp %s"
                                     % (dump, dump, dump)})
            header = "identity-header-" + os.urandom(8).hex()
            d = env.start_daemon(env={"IDENTITY_HEADER": header, "MY_API_KEY": "k-" + header,
                                      "LC_TIME": "C.UTF-8"})
            wait_until(lambda: os.path.exists(dump), 10, "notify_command at start (not signed in)")
            names = dict(v.split("=", 1) for v in read(dump).split("\0") if "=" in v)
            self.assertNotIn("IDENTITY_HEADER", names)
            self.assertNotIn("MY_API_KEY", names)
            self.assertNotIn(header, read(dump))
            self.assertEqual(names["AKSSPARK_PROFILE"], "default")
            self.assertEqual(names["AKSSPARK_STATE"], "login_required")
            self.assertIn("PATH", names)
            self.assertIn("HOME", names)
            self.assertEqual(names.get("LC_TIME"), "C.UTF-8")
            d.stop()


if __name__ == "__main__":
    unittest.main()
