"""The daemon behind a real proxy (issue 20, item 2). In a network namespace of the test's own
the identity provider is reachable only through Debian's tinyproxy, which wants Basic
credentials (given in the proxy URL): sign-in and refresh go through it, as its log shows. A
managed-identity endpoint (App Service, on loopback beside the daemon) is never asked through the proxy,
although http_proxy, https_proxy and ALL_PROXY all name it: its secret header would go to
whoever listens there. Root; the namespaces are removed on every path."""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import Env, wait_until
from fake_idp import FakeIdp, FakeManagedIdentity

CLONE_NEWNET = 0x40000000
PROXY_IP, CLIENT_IP, IDP_IP = "10.213.0.1", "10.213.0.2", "10.214.0.1"
PROXY_PORT = 8888
PROXY_USER, PROXY_PASSWORD = "aksspark", "proxy-pw-" + uuid.uuid4().hex[:12]
TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=30)


def in_netns(name, fn):
    """Run fn with this thread in network namespace name; sockets it makes stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        try:
            return fn()
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os._exit(70)   # never go on in the wrong namespace
    finally:
        os.close(own)
        os.close(target)


@unittest.skipUnless(harness.IS_ROOT and os.path.exists(TINYPROXY), "needs root and tinyproxy")
class ProxyTest(unittest.TestCase):
    def setUp(self):
        tag = uuid.uuid4().hex[:8]
        self.client_ns, self.proxy_ns = "aksc-" + tag, "aksp-" + tag
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.client_ns], capture_output=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.proxy_ns], capture_output=True)
        ip("netns", "add", self.client_ns)
        ip("netns", "add", self.proxy_ns)
        veth_c, veth_p = "vc" + tag, "vp" + tag
        ip("link", "add", veth_c, "netns", self.client_ns, "type", "veth", "peer", "name", veth_p,
           "netns", self.proxy_ns)
        for ns, dev, addr in ((self.client_ns, veth_c, CLIENT_IP), (self.proxy_ns, veth_p, PROXY_IP)):
            ip("-n", ns, "addr", "add", addr + "/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        # the identity provider's address exists only in the proxy's namespace: no route to it
        ip("-n", self.proxy_ns, "addr", "add", IDP_IP + "/32", "dev", "lo")

    def start_proxy(self, idp_port):
        d = tempfile.mkdtemp(prefix="aksspark-tinyproxy-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        os.chmod(d, 0o755)
        log = os.path.join(d, "tinyproxy.log")
        open(log, "w").close()
        os.chown(log, 65534, 65534)
        conf = os.path.join(d, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write("User nobody\nGroup nogroup\nPort %d\nListen %s\nTimeout 30\nLogFile \"%s\"\n"
                    "LogLevel Info\nMaxClients 20\nAllow 10.213.0.0/24\nBasicAuth %s %s\n"
                    "ConnectPort %d\nDisableViaHeader Yes\n"
                    % (PROXY_PORT, PROXY_IP, log, PROXY_USER, PROXY_PASSWORD, idp_port))
        proc = subprocess.Popen(["ip", "netns", "exec", self.proxy_ns, TINYPROXY, "-d", "-c", conf],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        wait_until(lambda: "listening on" in harness.read(log).lower() or proc.poll() is not None, 10,
                   "tinyproxy listening")
        self.assertIsNone(proc.poll(), harness.read(log))
        return log

    def test_identity_provider_through_the_proxy_managed_identity_never(self):
        with Env() as env:
            idp = FakeIdp(env.path("idp"), lifetime=6, host=IDP_IP)
            in_netns(self.proxy_ns, idp.start)
            env.idps.append(idp)
            # App Service's endpoint is on loopback in the daemon's own namespace
            mi = FakeManagedIdentity(idp, "appservice")
            in_netns(self.client_ns, mi.start)
            self.addCleanup(mi.stop)
            log = self.start_proxy(idp.port)

            # nothing reaches the identity provider from the daemon's namespace but the proxy
            direct = subprocess.run(["ip", "netns", "exec", self.client_ns, "/usr/bin/python3", "-c",
                                     "import socket; socket.create_connection(('%s', %d), 3)" % (IDP_IP, idp.port)],
                                    capture_output=True, text=True, timeout=30)
            self.assertNotEqual(direct.returncode, 0, "the identity provider is reachable directly")

            env.write_config({
                "person": {"token_file": env.path("person.token")},
                "app": {"auth": "managed_identity", "tenant": None, "authority_host": None, "ca_file": None,
                        "token_file": env.path("app.token")},
            })
            proxy = "http://%s:%s@%s:%d" % (PROXY_USER, PROXY_PASSWORD, PROXY_IP, PROXY_PORT)
            variables = dict(mi.env(), http_proxy=proxy, https_proxy=proxy, ALL_PROXY=proxy,
                             HTTPS_PROXY=proxy)
            d = env.start_daemon(env=variables, prefix=["ip", "netns", "exec", self.client_ns])
            d.sign_in(idp, profile="person")
            first = harness.read(env.path("person.token"))
            self.assertTrue(idp.token_is_valid(first))
            # the token lives 6 s: a refresh, through the proxy too
            wait_until(lambda: (lambda t: t != first and idp.token_is_valid(t))(
                harness.read(env.path("person.token"))), 30, "a refreshed token")
            self.assertTrue([r for r in idp.requests("token") if r.get("grant_type") == "refresh_token"
                             and r.get("status") == 200])
            text = harness.read(log)
            tunnels = text.count("CONNECT %s:%d" % (IDP_IP, idp.port))
            self.assertGreaterEqual(tunnels, 3, text[-3000:])   # devicecode, token poll(s), refresh
            print("tunnels through tinyproxy: %d" % tunnels, flush=True)

            # the managed identity: answered directly, never asked through the proxy
            wait_until(lambda: (lambda t: t and idp.token_is_valid(t))(
                harness.read(env.path("app.token")) if os.path.exists(env.path("app.token")) else None),
                       20, "the managed identity's token")
            self.assertTrue([r for r in idp.requests("imds") if r["status"] == 200])
            text = harness.read(log)
            self.assertNotIn("/msi/token", text)
            self.assertNotIn(":%s/" % mi.url.rsplit(":", 1)[1], text)
            self.assertNotIn(PROXY_PASSWORD, d.log())
            d.stop(timeout=5)


if __name__ == "__main__":
    unittest.main()
