#!/usr/bin/env python3
"""The include rule (scripts/check-layers.py) holds for the tree, and fails on a planted include."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("AKSSPARK_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..")
SCRIPT = os.path.join(SOURCE, "scripts", "check-layers.py")


def run(root):
    return subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)


class Layers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="layers-")
        for d in ("daemon", "include"):
            shutil.copytree(os.path.join(SOURCE, d), os.path.join(self.tmp, d))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def plant(self, rel, line):
        path = os.path.join(self.tmp, rel)
        with open(path, "a") as f:
            f.write("\n" + line + "\n")

    def test_tree_keeps_the_rule(self):
        r = run(SOURCE)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_lower_layer_including_a_higher_one_fails(self):
        self.assertEqual(run(self.tmp).returncode, 0)
        self.plant("daemon/base/util.c", '#include "profile/profile.h"')
        r = run(self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("daemon/base/util.c", r.stdout)
        self.assertIn("base/ may not include profile/profile.h", r.stdout)

    def test_client_reaching_the_daemon_fails(self):
        self.plant("daemon/tokenctl/tokenctl.c", '#include "loop/http.h"')
        r = run(self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("tokenctl/ may not include loop/http.h", r.stdout)

    def test_header_of_a_lower_layer_reaching_up_fails(self):
        self.plant("include/idp/aad.h", '#include "server/server.h"')
        self.assertEqual(run(self.tmp).returncode, 1)

    def test_include_without_a_folder_fails(self):
        self.plant("daemon/loop/http.c", '#include "util.h"')
        r = run(self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn('"util.h" has no folder', r.stdout)

    def test_file_outside_the_layers_fails(self):
        with open(os.path.join(self.tmp, "daemon", "stray.c"), "w") as f:
            f.write("int x;\n")
        self.assertIn("outside the layer folders", run(self.tmp).stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
