"""The short soak and crash-restart runs (tests/soak/): many profiles refreshing against an
identity provider that faults on a large share of token requests, with every output checked at
every sampled instant; then kill -9 at random instants with restarts that must not need a new
sign-in except when the kill landed in the refresh-token rotation window."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))
import crash  # noqa: E402
import soak  # noqa: E402

MINUTES = float(os.environ.get("AKSSPARK_SOAK_MINUTES", "1.25"))
KILLS = int(os.environ.get("AKSSPARK_CRASH_KILLS_SHORT", "20"))


def log(text):
    print(text, file=sys.stderr, flush=True)


class SoakTest(unittest.TestCase):
    def test_short_soak_with_random_faults(self):
        res = soak.run(minutes=MINUTES, profiles=20, lifetime=6, rate=0.3, seed=11, log=log)
        soak.report(res, log=log)
        self.assertEqual(res["failures"], [])
        self.assertGreaterEqual(res["refresh_cycles"], 300)
        self.assertGreaterEqual(res["fault_share"], 0.2)
        self.assertEqual(sorted(res["faults_by_kind"]), sorted(soak.FAULT_KINDS))
        self.assertEqual(res["torn"], 0)
        self.assertEqual(res["lapses_unexplained"], 0)
        if not res["sanitizers"]:   # ASan's quarantine keeps freed memory by design
            self.assertLessEqual(res["rss_growth_kib"], soak.RSS_SLACK_KIB)
        self.assertGreater(res["reads"], 1000)


class CrashRestartTest(unittest.TestCase):
    def test_kill_9_at_random_instants_keeps_the_sign_in(self):
        res = crash.run(kills=KILLS, lifetime=4, seed=5, window_samples=20, log=log)
        crash.report(res, log=log)
        self.assertEqual(res["failures"], [])
        self.assertEqual(res["torn"], 0)
        self.assertEqual(res["prediction_mismatches"], [])
        # Only kills inside the rotation window may cost the sign-in.
        self.assertLessEqual(res["lost_sign_ins"], sum(res["in_window"].values()))

    def test_with_aad_like_rotation_grace_no_kill_loses_the_sign_in(self):
        res = crash.run(kills=KILLS, lifetime=4, seed=5, rotation_grace=60, window_samples=0, log=log)
        crash.report(res, log=log)
        self.assertEqual(res["failures"], [])
        self.assertEqual(res["lost_sign_ins"], 0)
        self.assertEqual(res["sign_ins"], 1)
        # Every kill inside the window restarted with the old refresh token, which still worked.
        self.assertGreater(sum(res["in_window"].values()), 0, "no kill landed in the window")
        self.assertEqual(res["grace_redemptions"], sum(res["in_window"].values()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
