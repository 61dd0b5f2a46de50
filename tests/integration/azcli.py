"""A real Azure CLI signed in against the local identity provider, for the azurecli tests.

az cannot be told to skip MSAL's instance discovery, which asks login.microsoftonline.com even
in a registered cloud: az gets HTTPS_PROXY pointing at AzureCliProxy, which brings every tunnel
to the provider (whose certificate also names that host). AZURE_CONFIG_DIR keeps az's state in
the test's world."""

import os
import subprocess

import harness

DEBIAN_AZ = "/usr/bin/az"                                      # Debian 12's azure-cli 2.45
PYPI_AZ = "/var/cache/aksspark-tokend-peers/az-venv/bin/az"    # scripts/install-peers-az.sh
SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
CLIENT_ID = "3a4b5c6d-7e8f-4a9b-8c0d-1e2f3a4b5c6d"


class Az:
    def __init__(self, env, idp, az, config_dir=None):
        from fake_idp import AzureCliProxy, DEFAULT_TENANT_ID
        if not os.access(az, os.X_OK):
            raise AssertionError("%s is not installed: run scripts/install-deps.sh" % az)
        self.env, self.idp, self.az = env, idp, az
        self.tenant = DEFAULT_TENANT_ID
        self.config_dir = config_dir or env.path("azure")
        self.proxy = AzureCliProxy(idp).start()
        self.secret = idp.add_client_secret(CLIENT_ID)

    def environ(self):
        """What az needs here; the daemon gets it too, since it runs az with its own."""
        return {
            "AZURE_CONFIG_DIR": self.config_dir,
            "REQUESTS_CA_BUNDLE": self.idp.ca_file,
            "HTTPS_PROXY": self.proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
        }

    def run(self, *args, check=True):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.env.home, "LANG": "C.UTF-8"}
        e.update(self.environ())
        p = subprocess.run([self.az] + list(args), capture_output=True, text=True, timeout=120, env=e)
        if check and p.returncode != 0:
            raise AssertionError("az %s exited %d: %s" % (" ".join(args[:2]), p.returncode, p.stderr[-2000:]))
        return p

    def version(self):
        import json
        return json.loads(self.run("version", "--output", "json").stdout)["azure-cli"]

    def sign_in(self):
        """Register the provider as a cloud and sign in as a service principal."""
        url = self.idp.url
        self.run("cloud", "register", "--name", "AksSparkTest", "--endpoint-active-directory", url,
                 "--endpoint-active-directory-resource-id", "https://management.core.windows.net/",
                 "--endpoint-resource-manager", url + "/arm/",
                 "--endpoint-active-directory-graph-resource-id", "https://graph.windows.net/",
                 "--suffix-storage-endpoint", "core.windows.net")
        self.run("cloud", "set", "--name", "AksSparkTest")
        self.log_in()

    def log_in(self):
        self.run("login", "--service-principal", "--username", CLIENT_ID, "--password", self.secret,
                 "--tenant", self.tenant, "--allow-no-subscriptions")

    def sign_out(self):
        self.run("logout", "--username", CLIENT_ID)

    def stop(self):
        self.proxy.stop()
