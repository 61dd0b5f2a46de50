"""`auth = browser` with a real browser: Debian's Chromium, headless, opens the authorize URL that
`aksspark-tokenctl login` hands to xdg-open (a stand-in xdg-open that starts Chromium, as a
desktop's would), the identity provider's sign-in page is an HTML form, the test clicks its
button through the DevTools protocol as a person clicks, and Chromium follows the redirect to the
daemon's loopback listener; the daemon ends signed in. Also with redirect_port fixed."""

import glob
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.parse

import cdp
import harness
from harness import Env, read, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
USER = "dave@contoso.com"

XDG_OPEN = """#!/bin/sh
# The person's xdg-open: their browser (Chromium, headless here), a fresh profile.
echo $$ > "{pidfile}"
exec "{chromium}" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \\
    --disable-background-networking --disable-component-update --disable-sync \\
    --user-data-dir="{profile}" --remote-debugging-port=0 \\
    --ignore-certificate-errors-spki-list="{spki}" "$1"
"""


def spki_hash(host, port):
    """base64 SHA-256 of the server's public key: what Chromium's SPKI allow-list takes (the
    identity provider's certificate is from the test's own CA)."""
    pem = ssl.get_server_certificate((host, port))
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem.encode(), capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                         check=True).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def processes_with(text):
    out = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(d[6:]))
        except OSError:
            pass
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(os.path.exists(CHROMIUM) or os.environ.get("CI"), "chromium is not installed")
class ChromiumSignInTest(unittest.TestCase):
    def browser_world(self, env, idp):
        bindir = env.path("desktop-bin")
        os.makedirs(bindir)
        self.profile = env.path("chromium-profile")
        os.makedirs(self.profile)   # new and empty
        self.pidfile = env.path("chromium.pid")
        u = urllib.parse.urlsplit(idp.url)
        with open(os.path.join(bindir, "xdg-open"), "w") as f:
            f.write(XDG_OPEN.format(pidfile=self.pidfile, chromium=CHROMIUM, profile=self.profile,
                                    spki=spki_hash(u.hostname, u.port)))
        os.chmod(os.path.join(bindir, "xdg-open"), 0o755)
        # Cleanups run after the Env has gone, last added first: Chromium, still running then,
        # writes its profile again, so the Env's directory is removed once more after it stops.
        self.addCleanup(shutil.rmtree, env.root, True)
        self.addCleanup(self.stop_chromium)
        # A desktop session: DISPLAY set, xdg-open on PATH.
        return {"PATH": bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"), "DISPLAY": ":0",
                "HOME": env.home}

    def stop_chromium(self):
        try:
            os.kill(int(read(self.pidfile)), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + 20
        while processes_with(self.profile) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in processes_with(self.profile):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_until(lambda: not processes_with(self.profile), 20, "Chromium gone")

    def devtools(self):
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        wait_until(lambda: os.path.exists(port_file) and read(port_file).strip(), 60, "Chromium's DevTools port")
        port = int(read(port_file).split()[0])
        return port

    def sign_in(self, env, idp, d, want_port=None):
        desktop = self.browser_world(env, idp)
        login = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "login"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=desktop)
        self.addCleanup(lambda: login.poll() is None and login.kill())
        line = login.stdout.readline()
        url = next((w for w in line.split() if w.startswith("https://")), None)
        self.assertTrue(url, "login printed no URL: %r" % line)
        redirect = urllib.parse.urlsplit(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
                                         ["redirect_uri"])
        if want_port:
            self.assertEqual(redirect.port, want_port)

        # The browser the desktop opened shows the sign-in page of that very URL.
        port = self.devtools()
        page = wait_until(lambda: next((t for t in cdp.page_targets(port) if t["url"].startswith(idp.url)), None),
                          60, "Chromium on the sign-in page")
        self.assertEqual(page["url"], url)
        tools = cdp.DevTools(page["webSocketDebuggerUrl"])
        self.addCleanup(tools.close)
        wait_until(lambda: tools.evaluate("document.readyState === 'complete' && !!document.querySelector('#accept')"),
                   30, "the sign-in form")
        self.assertIsNone(login.poll())
        tools.evaluate("document.querySelector('#login').value = %r" % USER)
        tools.click("#accept")

        # Chromium posts the form, follows the 302 to the daemon's loopback listener.
        wait_until(lambda: tools.evaluate("location.href").startswith("http://localhost:%d/" % redirect.port), 30,
                   "Chromium at the daemon's listener")
        body = wait_until(lambda: (lambda t: t if "Signed in" in t else None)(
            tools.evaluate("document.body ? document.body.innerText : ''")), 30, "the daemon's page")
        self.assertIn("Signed in", body)
        out, err = login.communicate(timeout=60)
        env.client_stderr.append(err)
        self.assertEqual(login.returncode, 0, err)
        self.assertIn("Signed in as %s" % USER, out)

        auth = idp.requests("authorize")
        self.assertEqual([(r["method"], r["status"]) for r in auth], [("GET", 200), ("POST", 302)])
        self.assertEqual(auth[1]["user"], USER)
        self.assertIn("HeadlessChrome", auth[0]["user_agent"] or "")
        grants = [r for r in idp.requests("token") if r["grant_type"] == "authorization_code"]
        self.assertEqual([(g["status"], g["user"]) for g in grants], [(200, USER)])
        return redirect

    def test_chromium_signs_in(self):
        with Env(prefix="aksspark-it-browser-") as env:
            idp = env.start_idp(lifetime=600)
            token_file = env.path("home", "token")
            env.write_config({"default": {"auth": "browser", "token_file": token_file}})
            d = env.start_daemon()
            self.assertEqual(d.status()["state"], "login_required")
            self.sign_in(env, idp, d)
            self.assertEqual(d.status()["state"], "valid")
            self.assertEqual(idp.access_token_user(read(token_file)), USER)
            d.stop()

    def test_chromium_signs_in_on_a_fixed_redirect_port(self):
        with Env(prefix="aksspark-it-browser-") as env:
            idp = env.start_idp(lifetime=600)
            token_file = env.path("home", "token")
            port = free_port()
            env.write_config({"default": {"auth": "browser", "token_file": token_file, "redirect_port": port}})
            d = env.start_daemon()
            self.sign_in(env, idp, d, want_port=port)
            self.assertEqual(d.status()["state"], "valid")
            self.assertEqual(idp.access_token_user(read(token_file)), USER)
            with self.assertRaises(OSError):   # the listener is closed after the one sign-in
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            d.stop()


if __name__ == "__main__":
    unittest.main()
