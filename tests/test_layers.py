#!/usr/bin/env python3
"""The include rule (scripts/check-layers.py) holds for the tree, and fails on a planted include;
no files call each other in a circle (scripts/check-circles.py, over the build's objects), and a
planted circle fails."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("AKSSPARK_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..")
SCRIPT = os.path.join(SOURCE, "scripts", "check-layers.py")
CIRCLES = os.path.join(SOURCE, "scripts", "check-circles.py")
BUILD = os.environ.get("AKSSPARK_BUILD_DIR") or os.path.join(SOURCE, "build")


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

    def test_readme_states_the_same_rule(self):
        # The README's Architecture table: | `folder/` | holds | may include |
        sys.path.insert(0, os.path.join(SOURCE, "scripts"))
        import importlib
        rule = importlib.import_module("check-layers").MAY_USE
        text = open(os.path.join(SOURCE, "README.md"), encoding="utf-8").read()
        stated = {}
        for line in text.splitlines():
            m = re.match(r"^\| `(\w+)/` \|.*\| ([^|]+) \|$", line)
            if m and m.group(1) in rule:
                cell = m.group(2).strip()
                stated[m.group(1)] = [] if cell == "nothing else" else re.findall(r"`(\w+)/`", cell)
        self.assertEqual(stated, rule)

    def test_file_outside_the_layers_fails(self):
        with open(os.path.join(self.tmp, "daemon", "stray.c"), "w") as f:
            f.write("int x;\n")
        self.assertIn("outside the layer folders", run(self.tmp).stdout)



def circles(build):
    return subprocess.run([sys.executable, CIRCLES, build], capture_output=True, text=True)


class Circles(unittest.TestCase):
    """Files of a fake build: daemon/<target>.p/<folder>_<file>.c.o, as meson names them."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="circles-")
        self.objects = os.path.join(self.tmp, "daemon", "libx.a.p")
        os.makedirs(self.objects)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def compile(self, name, text):
        src = os.path.join(self.tmp, name.replace("/", "_"))
        with open(src, "w") as f:
            f.write(text)
        subprocess.run(["cc", "-c", "-o", os.path.join(self.objects, name.replace("/", "_") + ".o"), src],
                       check=True)

    def test_tree_has_no_circle(self):
        r = circles(BUILD)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_planted_circle_fails(self):
        # a -> b -> c -> a: a circle around a chain; d -> a is outside it; a calls itself.
        self.compile("base/a.c", "int b(void); int a(void) { return b() + a(); }\n")
        self.compile("base/b.c", "int c(void); int b(void) { return c(); }\n")
        self.compile("loop/c.c", "int a(void); int c(void) { return a(); }\n")
        self.compile("loop/d.c", "int a(void); int d(void) { return a(); }\n")
        r = circles(self.tmp)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("base/a.c <-> base/b.c <-> loop/c.c", r.stdout)
        self.assertNotIn("loop/d.c", r.stdout)

    def test_calls_one_way_pass(self):
        self.compile("base/a.c", "int b(void); int a(void) { return b() + a(); }\n")
        self.compile("base/b.c", "int c(void); int b(void) { return c(); }\n")
        self.compile("loop/c.c", "int c(void) { return 1; }\n")
        r = circles(self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
