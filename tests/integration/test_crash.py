"""Crash at any instant: kill -9 a writer (tests/tools/atomic-writer loop, the real outputs.c and
atomic.c code) hundreds of times at random moments while a reader keeps reading the token file
and spark.properties. Every read must be one of the complete contents, never empty, short or
mixed; after each kill the restart's cleanup must leave no temp file behind.
"""

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

WRITER = os.path.join(harness.BUILD, "tests", "tools", "atomic-writer")
TEMP_PREFIX = ".aksspark-tmp."
KILLS = int(os.environ.get("AKSSPARK_CRASH_KILLS", "250"))


def jwt_like(rnd, n):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    return ".".join("".join(rnd.choice(alphabet) for _ in range(n // 3)) for _ in range(3))


class Reader(threading.Thread):
    """Reads every file in a loop until stopped; records anything that is not a complete content."""

    def __init__(self, valid):
        super().__init__(daemon=True)
        self.valid = valid  # path -> set of acceptable contents
        self.stop = threading.Event()
        self.reads = 0
        self.bad = []

    def run(self):
        while not self.stop.is_set():
            for path, ok in self.valid.items():
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError as e:  # the path must always exist: rename never removes it
                    self.bad.append((path, "open failed: %s" % e))
                    continue
                self.reads += 1
                if data not in ok:
                    self.bad.append((path, "%d bytes: %r...%r" % (len(data), data[:40], data[-40:])))


class CrashTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(WRITER), WRITER)
        self.tmp = tempfile.mkdtemp(prefix="aksspark-crash.")
        self.kube = os.path.join(self.tmp, "kube")
        self.token_file = os.path.join(self.kube, "oauthToken")
        self.props = os.path.join(self.tmp, "spark.properties")
        self.opts = ["--token-file", self.token_file, "--props", self.props]
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_writer(self, *args):
        return subprocess.run([WRITER] + list(args), capture_output=True, check=True, timeout=30)

    def temps(self):
        return [n for d in (self.kube, self.tmp) for n in os.listdir(d) if n.startswith(TEMP_PREFIX)]

    def test_kill_at_random_instants(self):
        rnd = random.Random(int(os.environ.get("AKSSPARK_CRASH_SEED", "4242")))
        # Different lengths, so a torn or truncated write cannot pass for a complete one.
        tokens = [jwt_like(rnd, 2400), jwt_like(rnd, 9000)]
        with open(self.props, "wb") as f:
            f.write(b"# Spark on AKS\r\nspark.master k8s://https://x.hcp.westeurope.azmk8s.io:443\r\n"
                    b"spark.kubernetes.authenticate.submission.oauthToken = old\r\n"
                    b"spark.executor.instances 4\r\n" + b"# padding " * 2000 + b"\r\n")

        # The complete contents each token gives, written once by the same code.
        valid = {self.token_file: set(), self.props: set()}
        for t in tokens:
            self.run_writer("outputs", *self.opts, t)
            for path in valid:
                with open(path, "rb") as f:
                    valid[path].add(f.read())
        self.assertEqual(len(valid[self.props]), 2)

        reader = Reader(valid)
        reader.start()
        kills = kills_mid_write = writes_seen = 0
        try:
            for _ in range(KILLS):
                p = subprocess.Popen([WRITER, "loop"] + self.opts + tokens, stdout=subprocess.PIPE)
                self.procs.append(p)
                # READY comes after one complete round; then kill at a random instant of the
                # following writes (each write is a few fsyncs, so this lands inside them).
                ready, _, _ = select.select([p.stdout], [], [], 20)
                self.assertTrue(ready, "writer never became ready")
                self.assertEqual(p.stdout.readline(), b"READY\n")
                time.sleep(rnd.uniform(0, 0.012))
                p.send_signal(signal.SIGKILL)
                p.wait()
                p.stdout.close()
                self.procs.remove(p)
                kills += 1
                self.assertEqual(p.returncode, -signal.SIGKILL)

                # What a crash leaves: the outputs complete, maybe a temp file; the restart's
                # cleanup removes every one of them.
                left = self.temps()
                if left:
                    kills_mid_write += 1
                for path, ok in valid.items():
                    with open(path, "rb") as f:
                        data = f.read()
                    self.assertTrue(data in ok, "%s torn after a kill: %d bytes, %r..." % (path, len(data), data[:40]))
                out = self.run_writer("cleanup", *self.opts).stdout
                self.assertIn(b'"removed": %d' % len(left), out)
                self.assertEqual(self.temps(), [], "temp files left after cleanup")
                writes_seen += 1
        finally:
            reader.stop.set()
            reader.join(10)

        self.assertEqual(reader.bad[:5], [], "a reader saw an incomplete file")
        self.assertGreater(reader.reads, KILLS)
        # The kills must really have hit writes in progress, or this test proves nothing.
        self.assertGreater(kills_mid_write, KILLS // 20, "too few kills landed inside a write")
        sys.stderr.write("crash: %d kills, %d of them left a temp file (killed mid-write), %d reads all complete\n"
                         % (kills, kills_mid_write, reader.reads))


if __name__ == "__main__":
    unittest.main()
