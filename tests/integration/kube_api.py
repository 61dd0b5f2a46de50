"""A Kubernetes API server stand-in for Spark: what spark-submit and a Spark driver call.

Stdlib HTTPS (its own throwaway CA) on 127.0.0.1. Every request's bearer token is checked
against the fake identity provider's issued tokens (401 for an unknown or expired one, as AKS
answers), and recorded without the token (a short hash names it). Objects live in memory:
create (POST), get and list (with field and label selectors), server-side apply and merge
patches (PATCH), delete, and watches over a WebSocket (what fabric8 opens) or a chunked HTTP
stream. Driver pods (spark-role=driver) go Pending, Running, Succeeded; executor pods go
Running and stay there until deleted."""

import base64
import hashlib
import http.server
import json
import os
import ssl
import threading
import time
import urllib.parse
import uuid

from fake_idp import make_tls_files

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _now_stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _merge(dst, src):
    for k, v in src.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def _labels_match(labels, selector):
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubeApi:
    def __init__(self, directory, idp, leeway=1.0, driver_running_s=1.0, driver_succeeds_s=3.0):
        self.idp, self.leeway = idp, leeway
        self.driver_running_s, self.driver_succeeds_s = driver_running_s, driver_succeeds_s
        os.makedirs(directory, exist_ok=True)
        self.ca_file, cert, key = make_tls_files(directory)
        self._lock = threading.Condition()
        self._objects = {}   # (namespace, resource, name) -> object
        self._rv = 100
        self._log = []
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                          daemon=True)]
        self._threads[0].start()

    def close(self):
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def requests(self):
        """Every request, oldest first: t, method, path, query, status, token_id, user_agent."""
        with self._lock:
            return [dict(r) for r in self._log]

    def objects(self, resource=None):
        with self._lock:
            return [json.loads(json.dumps(o)) for (ns, res, n), o in self._objects.items()
                    if resource in (None, res)]

    # ---- token check ---------------------------------------------------------------------

    def check_token(self, bearer, t):
        with self.idp._lock:
            user, exp = self.idp._access.get(bearer, (None, 0)) if bearer else (None, 0)
        token_id = hashlib.sha256(bearer.encode()).hexdigest()[:12] if bearer else None
        return user is not None and exp + self.leeway > t, token_id

    # ---- objects -------------------------------------------------------------------------

    def _bump(self, obj):
        self._rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
        self._lock.notify_all()

    def _store(self, ns, res, name, obj, kind):
        md = obj.setdefault("metadata", {})
        md.setdefault("name", name)
        md["namespace"] = ns
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", _now_stamp())
        obj.setdefault("apiVersion", "v1")
        obj.setdefault("kind", kind)
        if res == "pods":
            obj.setdefault("status", {})["phase"] = obj.get("status", {}).get("phase") or "Pending"
            role = md.get("labels", {}).get("spark-role")
            if role in ("driver", "executor"):
                threading.Thread(target=self._run_pod, args=(ns, md["name"], role), daemon=True).start()
        self._objects[(ns, res, md["name"])] = obj
        self._bump(obj)
        return obj

    def _run_pod(self, ns, name, role):
        def phase(p, delay):
            if self._stop.wait(delay):
                return
            with self._lock:
                pod = self._objects.get((ns, "pods", name))
                if not pod:
                    return
                st = pod.setdefault("status", {})
                st["phase"] = p
                cname = pod.get("spec", {}).get("containers", [{}])[0].get("name", "spark")
                if p == "Running":
                    st["containerStatuses"] = [{"name": cname, "ready": True, "restartCount": 0,
                                                "image": "spark", "imageID": "", "started": True,
                                                "state": {"running": {"startedAt": _now_stamp()}}}]
                    st["podIP"] = "10.0.0.%d" % (len(self._objects) % 250 + 2)
                else:
                    st["containerStatuses"] = [{"name": cname, "ready": False, "restartCount": 0,
                                                "image": "spark", "imageID": "", "started": False,
                                                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                         "startedAt": _now_stamp(),
                                                                         "finishedAt": _now_stamp()}}}]
                self._bump(pod)
        phase("Running", self.driver_running_s)
        if role == "driver":
            phase("Succeeded", self.driver_succeeds_s)

    def _select(self, ns, res, query):
        fields = query.get("fieldSelector", "")
        labels = query.get("labelSelector", "")
        name = fields.split("metadata.name=", 1)[1].split(",")[0] if "metadata.name=" in fields else None
        return [o for (n, r, nm), o in sorted(self._objects.items())
                if r == res and n == ns and name in (None, nm)
                and _labels_match(o["metadata"].get("labels", {}), labels)]


KINDS = {"pods": "Pod", "configmaps": "ConfigMap", "services": "Service", "secrets": "Secret",
         "persistentvolumeclaims": "PersistentVolumeClaim", "networkpolicies": "NetworkPolicy"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None

    def log_message(self, *args):
        pass

    def _send(self, status, obj, rec):
        rec["status"] = status
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _status(self, code, reason, message, rec):
        self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": code}, rec)

    def _handle(self):
        api = self.api
        path, _, qs = self.path.partition("?")
        query = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        t = time.time()
        ok, token_id = api.check_token(bearer, t)
        rec = {"t": t, "method": self.command, "path": path, "query": query, "status": None,
               "token_id": token_id, "user_agent": self.headers.get("User-Agent"),
               "websocket": self.headers.get("Upgrade", "").lower() == "websocket"}
        with api._lock:
            api._log.append(rec)
        if not ok:
            return self._status(401, "Unauthorized", "Unauthorized", rec)
        parts = [p for p in path.split("/") if p]
        if parts == ["version"]:
            return self._send(200, {"major": "1", "minor": "28", "gitVersion": "v1.28.0"}, rec)
        # /api/v1/namespaces/NS/RES[/NAME] or /apis/GROUP/VERSION/namespaces/NS/RES[/NAME]
        prefix = 2 if parts[:2] == ["api", "v1"] else 3 if parts[:1] == ["apis"] else None
        if prefix is None or len(parts) < prefix + 3 or parts[prefix] != "namespaces":
            return self._status(404, "NotFound", "the server could not find the requested resource", rec)
        ns, res = parts[prefix + 1], parts[prefix + 2]
        name = parts[prefix + 3] if len(parts) > prefix + 3 else None
        kind = KINDS.get(res, "Unknown")
        with api._lock:
            key = (ns, res, name)
            if self.command == "POST" and name is None:
                obj = json.loads(body)
                nm = obj.get("metadata", {}).get("name") or (obj["metadata"]["generateName"] + uuid.uuid4().hex[:5])
                if (ns, res, nm) in api._objects:
                    return self._status(409, "AlreadyExists", "%s \"%s\" already exists" % (res, nm), rec)
                return self._send(201, api._store(ns, res, nm, obj, kind), rec)
            if self.command == "GET" and name is not None:
                if key not in api._objects:
                    return self._status(404, "NotFound", "%s \"%s\" not found" % (res, name), rec)
                return self._send(200, api._objects[key], rec)
            if self.command == "GET" and query.get("watch") in ("true", "1"):
                pass   # below, outside the lock
            elif self.command == "GET":
                items = api._select(ns, res, query)
                return self._send(200, {"kind": kind + "List", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": str(api._rv)}, "items": items}, rec)
            elif self.command in ("PATCH", "PUT") and name is not None:
                ctype = self.headers.get("Content-Type", "")
                patch = json.loads(body) if body.strip()[:1] in (b"{", b"[") else None
                if patch is None:
                    import yaml
                    patch = yaml.safe_load(body)
                exists = key in api._objects
                if isinstance(patch, list):   # json-patch
                    if not exists:
                        return self._status(404, "NotFound", "%s \"%s\" not found" % (res, name), rec)
                    obj = api._objects[key]
                    for op in patch:
                        node = obj
                        segs = [p for p in op["path"].split("/") if p]
                        for s in segs[:-1]:
                            node = node[int(s)] if isinstance(node, list) else node.setdefault(s, {})
                        if op["op"] in ("add", "replace"):
                            if isinstance(node, list):
                                node.append(op["value"]) if segs[-1] == "-" else node.__setitem__(int(segs[-1]), op["value"])
                            else:
                                node[segs[-1]] = op["value"]
                    api._bump(obj)
                    return self._send(200, obj, rec)
                if self.command == "PUT" or not exists:
                    if not exists and "apply-patch" not in ctype and self.command != "PUT":
                        return self._status(404, "NotFound", "%s \"%s\" not found" % (res, name), rec)
                    return self._send(201 if not exists else 200, api._store(ns, res, name, patch, kind), rec)
                obj = api._objects[key]
                _merge(obj, patch)
                api._bump(obj)
                return self._send(200, obj, rec)
            elif self.command == "DELETE":
                if name is None:
                    for o in api._select(ns, res, query):
                        api._objects.pop((ns, res, o["metadata"]["name"]), None)
                    api._lock.notify_all()
                    return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}, rec)
                obj = api._objects.pop(key, None)
                api._lock.notify_all()
                if obj is None:
                    return self._status(404, "NotFound", "%s \"%s\" not found" % (res, name), rec)
                return self._send(200, obj, rec)
            else:
                return self._status(405, "MethodNotAllowed", "not here", rec)
        return self._watch(ns, res, query, rec)

    def _watch(self, ns, res, query, rec):
        api = self.api
        ws = rec["websocket"]
        rec["status"] = 101 if ws else 200
        if ws:
            accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode())
                                      .digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
        self.wfile.flush()

        def emit(event):
            data = json.dumps(event).encode() + b"\n"
            if ws:
                n = len(data)
                head = bytes([0x81]) + (bytes([n]) if n < 126 else
                                        bytes([126]) + n.to_bytes(2, "big") if n < 65536 else
                                        bytes([127]) + n.to_bytes(8, "big"))
                self.wfile.write(head + data)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        seen = {}
        closed = threading.Event()
        if ws:
            def reader():   # the client's close frame, or EOF
                try:
                    while True:
                        b = self.rfile.read(2)
                        if len(b) < 2:
                            break
                        n = b[1] & 0x7F
                        if n == 126:
                            n = int.from_bytes(self.rfile.read(2), "big")
                        elif n == 127:
                            n = int.from_bytes(self.rfile.read(8), "big")
                        self.rfile.read(4 + n if b[1] & 0x80 else n)
                        if b[0] & 0x0F == 8:
                            break
                except OSError:
                    pass
                closed.set()
                with api._lock:
                    api._lock.notify_all()
            threading.Thread(target=reader, daemon=True).start()
        try:
            while not api._stop.is_set() and not closed.is_set():
                with api._lock:
                    current = {o["metadata"]["name"]: o for o in api._select(ns, res, query)}
                    events = []
                    for nm, o in current.items():
                        if nm not in seen:
                            events.append({"type": "ADDED", "object": json.loads(json.dumps(o))})
                        elif seen[nm] != o["metadata"]["resourceVersion"]:
                            events.append({"type": "MODIFIED", "object": json.loads(json.dumps(o))})
                    for nm in set(seen) - set(current):
                        events.append({"type": "DELETED", "object": {"kind": KINDS.get(res), "apiVersion": "v1",
                                                                      "metadata": {"name": nm, "namespace": ns}}})
                    seen = {nm: o["metadata"]["resourceVersion"] for nm, o in current.items()}
                    if not events:
                        api._lock.wait(0.5)
                for e in events:
                    emit(e)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET
