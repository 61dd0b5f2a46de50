#!/usr/bin/env python3
"""How fast aksspark-tokend's socket and aksspark-tokenctl are, side by side with baselines,
from one run:

  - a socket round trip (connect, `status`, answer, close) against the daemon and against a
    bare epoll echo server in C (bench/echo_server.c): what the daemon's framing, peer check,
    JSON and status snapshot cost;
  - `aksspark-tokenctl status` as a process against a minimal C client process
    (bench/echo_client.c) doing the same round trip, and `aksspark-tokenctl check` against
    /bin/true: what the real client costs beyond a process spawn;
  - pipelined `status` answers per second on one connection, against echoed lines per second;
  - 1,000 concurrent clients while the identity provider hangs a refresh: p50/p99 of each
    client's answer time, against the echo server under the same load.

Usage: python3 bench/bench_socket.py [--build DIR] [--quick]
Needs a built tree (default: $AKSSPARK_BUILD_DIR or ./build) and a C compiler for the helpers.
"""

import argparse
import json
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100.0))]


def summary(values):
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "mean": sum(values) / len(values)}


def compile_helpers(out):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        sys.exit("bench_socket: needs a C compiler for the echo helpers")
    paths = {}
    for name in ("echo_server", "echo_client"):
        exe = os.path.join(out, name)
        subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, name + ".c")], check=True)
        paths[name] = exe
    return paths


def round_trips(path, n, request=b'{"op":"status"}\n'):
    """n sequential connect/request/answer/close cycles; seconds each."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(request)
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("closed without an answer")
            buf += chunk
        s.close()
        out.append(time.perf_counter() - t0)
    return out


def spawns(argv, n, expect=None):
    """n runs of a process; seconds each (fork/exec included, as a caller pays it)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
        if expect is not None and p.returncode != expect:
            raise RuntimeError("%s exited %d" % (argv, p.returncode))
    return out


def pipelined(path, n, request=b'{"op":"status"}\n'):
    """n requests pipelined on one connection; answers per second."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    batch = request * 500

    def writer():
        for _ in range(n // 500):
            s.sendall(batch)

    t0 = time.perf_counter()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    lines = 0
    while lines < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise RuntimeError("closed after %d answers" % lines)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - t0
    t.join()
    s.close()
    return n / elapsed


def concurrent(path, n, timeout=60):
    """n clients connected at once each send status; seconds from each request to its answer."""
    sel = selectors.DefaultSelector()
    socks, started, bufs, lat = [], {}, {}, []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            pass
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE)
    pending = set(socks)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                started[s] = time.perf_counter()
                s.send(b'{"op":"status"}\n')
                bufs[s] = b""
                sel.modify(s, selectors.EVENT_READ)
                continue
            chunk = s.recv(65536)
            bufs[s] += chunk
            if b"\n" in bufs[s] or not chunk:
                if b"\n" in bufs[s]:
                    lat.append(time.perf_counter() - started[s])
                pending.discard(s)
                sel.unregister(s)
    for s in socks:
        s.close()
    sel.close()
    if len(lat) != n:
        raise RuntimeError("only %d of %d clients were answered" % (len(lat), n))
    return lat


def ms(x):
    return "%.3f ms" % (x * 1000)


def row(what, ours, base, base_name, fmt=ms, higher_is_better=False):
    ratio = (base / ours if higher_is_better else ours / base) if base else float("nan")
    print("%-44s %18s   %-12s %14s   %6.2fx" % (what, fmt(ours), base_name, fmt(base), ratio))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("AKSSPARK_BUILD_DIR") or os.path.join(SOURCE, "build"))
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    os.environ["AKSSPARK_BUILD_DIR"] = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
    import harness

    n_rt = 300 if args.quick else 2000
    n_spawn = 50 if args.quick else 300
    n_pipe = 20000 if args.quick else 200000
    n_conc = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n_conc + 500)), hard))

    tmp = tempfile.mkdtemp(prefix="aksspark-bench-")
    helpers = compile_helpers(tmp)
    echo_path = os.path.join(tmp, "echo.sock")
    echo = subprocess.Popen([helpers["echo_server"], echo_path], stdout=subprocess.PIPE)
    echo.stdout.readline()

    try:
        with harness.Env(prefix="aksspark-bench-") as env:
            idp = env.start_idp(lifetime=3600)
            env.write_config(daemon={"log_level": "info"})
            d = env.start_daemon()
            d.sign_in(idp)
            sock = d.socket_path
            ctl = [harness.TOKENCTL, "--socket", sock]

            # Warm up both servers and the page cache.
            round_trips(sock, 50)
            round_trips(echo_path, 50)
            spawns(ctl + ["status"], 5, expect=0)

            print("aksspark-tokend socket benchmark (%s, %d CPUs)" % (harness.TOKEND, os.cpu_count()))
            print("%-44s %18s   %-12s %14s   %7s" % ("measure", "aksspark-tokend", "baseline", "", "ratio"))
            print("(ratio: the daemon's time over the baseline's; for rates, the baseline's rate over the daemon's)")

            rt_d = summary(round_trips(sock, n_rt))
            rt_e = summary(round_trips(echo_path, n_rt))
            row("socket round trip, new connection, p50", rt_d["p50"], rt_e["p50"], "C echo")
            row("socket round trip, new connection, p99", rt_d["p99"], rt_e["p99"], "C echo")

            sp_ctl = summary(spawns(ctl + ["status"], n_spawn, expect=0))
            sp_cli = summary(spawns([helpers["echo_client"], sock], n_spawn, expect=0))
            row("`aksspark-tokenctl status` process, p50", sp_ctl["p50"], sp_cli["p50"], "C client")
            sp_chk = summary(spawns(ctl + ["check"], n_spawn, expect=0))
            sp_true = summary(spawns(["/bin/true"], n_spawn, expect=0))
            row("`aksspark-tokenctl check` process, p50", sp_chk["p50"], sp_true["p50"], "/bin/true")
            row("`aksspark-tokenctl check` process, p99", sp_chk["p99"], sp_true["p99"], "/bin/true")

            pp_d = pipelined(sock, n_pipe)
            pp_e = pipelined(echo_path, n_pipe)
            row("pipelined status answers / s, one conn.", pp_d, pp_e, "C echo", fmt=lambda x: "%.0f/s" % x,
                higher_is_better=True)

            idp.set(hang_seconds=120)
            idp.queue_fault("hang")
            waiter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            waiter.connect(sock)
            waiter.sendall(b'{"op":"refresh"}\n')
            harness.wait_until(lambda: d.status()["state"] == "refreshing", 10, "refresh under way")
            c_d = summary(concurrent(sock, n_conc))
            still = d.status()["state"]
            c_e = summary(concurrent(echo_path, n_conc))
            row("1,000 concurrent clients (refresh hung), p50", c_d["p50"], c_e["p50"], "C echo")
            row("1,000 concurrent clients (refresh hung), p99", c_d["p99"], c_e["p99"], "C echo")
            print("(state during the concurrent run: %s; the hung refresh answered: %s)" %
                  (still, json.loads(waiter.makefile("rb").readline()).get("error", "ok")))
            waiter.close()
            idp.clear_faults()
            d.stop()
    finally:
        echo.terminate()
        echo.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
