#!/usr/bin/env python3
"""Crash and restart: sign in once, then kill -9 the real daemon many times at random instants
while it refreshes and writes (short token lifetime, and `aksspark-tokenctl refresh` forced at
random moments), restart it each time, and check:

  - every read of the token file and spark.properties, by a reader thread running throughout,
    is whole (never missing, empty, torn, or a token the identity provider never issued);
  - the restarted daemon goes on without a new sign-in: a forced refresh right after the
    restart succeeds, and the identity provider sees no new device code;
  - except where the kill landed in the rotation window: the identity provider had rotated the
    refresh token (the old one is dead) but the daemon had not yet stored the new one. Each
    kill is classified from the identity provider's rotation log and the state file left on
    disk before the restart, and that prediction must match what the restarted daemon gets
    (invalid_grant, login_required). A lost sign-in is re-done and counted.

It also measures the window itself: over many forced refreshes, the time from the identity
provider's rotation to the state file's rename on disk.

With --rotation-grace S the identity provider accepts a used refresh token for S more seconds
(as Azure AD does: redeeming a refresh token does not invalidate it), which closes the window.

    python3 tests/soak/crash.py --kills 200                      # the record
    python3 tests/soak/crash.py --kills 200 --rotation-grace 60  # AAD-like rotation
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Output, OutputReader, harness, machine, read_state_refresh_token,  # noqa: E402
                    start_recording_idp)

USER = "carol@contoso.com"


class StateCommitWatcher(threading.Thread):
    """Polls the state file's inode: a new inode is a committed atomic replace (rename)."""

    def __init__(self, path, interval=0.0005):
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.commits = []        # time.time() when a new inode was first seen
        self.stop_flag = threading.Event()

    def run(self):
        last = None
        while not self.stop_flag.is_set():
            try:
                ino = os.stat(self.path).st_ino
            except OSError:
                ino = None
            if ino is not None and ino != last:
                if last is not None:
                    self.commits.append(time.time())
                last = ino
            time.sleep(self.interval)

    def stop(self):
        self.stop_flag.set()
        self.join()


def set_build(build):
    if build:
        harness.BUILD = os.path.abspath(build)
        harness.TOKEND = os.path.join(harness.BUILD, "aksspark-tokend")
        harness.TOKENCTL = os.path.join(harness.BUILD, "aksspark-tokenctl")


def measure_window(env, d, idp, state_file, n):
    """n forced refreshes; for each, rotation at the idp -> new state file on disk (ms)."""
    w = StateCommitWatcher(state_file)
    w.start()
    time.sleep(0.05)
    from_rotation, from_request = [], []
    for _ in range(n):
        before = len(idp.rotations)
        r = d.ctl("refresh")
        if r.returncode != 0 or len(idp.rotations) <= before:
            continue
        t_req, t_rot = idp.rotations[before][0], idp.rotations[before][4]
        harness.wait_until(lambda: any(c >= t_rot for c in w.commits), 5, "the state file commit")
        commit = min(c for c in w.commits if c >= t_rot)
        from_rotation.append(1000 * (commit - t_rot))
        from_request.append(1000 * (commit - t_req))
    w.stop()
    return from_rotation, from_request


def run(kills=200, lifetime=4, seed=7, rotation_grace=0.0, window_samples=100, log=print, build=None):
    set_build(build)
    rnd = random.Random(seed)
    failures = []
    res = {"machine": machine(), "kills": kills, "lifetime": lifetime, "seed": seed,
           "rotation_grace": rotation_grace}
    with harness.Env(prefix="aksspark-crashsoak-") as env:
        idp = start_recording_idp(env, lifetime, rotation_grace=rotation_grace, interval=1)
        tenant = "crash.onmicrosoft.com"
        out_dir = env.path("out")
        os.makedirs(out_dir, mode=0o700)
        token_file, props = os.path.join(out_dir, "oauthToken"), os.path.join(out_dir, "spark.properties")
        with open(props, "w") as f:
            f.write("# crash test\r\nspark.app.name = crash\r\nspark.executor.instances=3\r\n")
        env.write_config(profiles={"default": {"tenant": tenant, "token_file": token_file,
                                               "spark_properties": props}},
                         daemon={"http_timeout": "2s", "log_level": "info"})
        state_file = os.path.join(env.state, "default.json")
        d = env.start_daemon()
        d.sign_in(idp, user=USER)
        sign_ins = 1
        codes_expected = len(idp.requests("devicecode"))

        if window_samples:
            for key, windows in zip(("window_ms", "window_from_request_ms"),
                                    measure_window(env, d, idp, state_file, window_samples)):
                windows.sort()
                res[key] = {"n": len(windows), "median": round(statistics.median(windows), 2),
                            "p90": round(windows[int(len(windows) * 0.9)], 2), "max": round(windows[-1], 2)}

        reader = OutputReader({"default": idp}, [
            Output("default", "token", token_file),
            Output("default", "props", props, {"spark.app.name": "crash", "spark.executor.instances": "3"})],
            interval=0.002)
        reader.start()
        kinds = {"forced": 0, "targeted": 0, "random": 0}
        in_window = dict.fromkeys(kinds, 0)
        lost, mismatches, restart_ms, notes = 0, [], [], []
        t_start = time.time()
        for i in range(kills):
            mode = rnd.choice(sorted(kinds))
            kinds[mode] += 1
            forcer = None
            n_rot = len(idp.rotations)
            if mode in ("forced", "targeted"):
                forcer = subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "refresh"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if mode == "forced":
                # Somewhere between forcing a refresh and its result on disk.
                time.sleep(rnd.uniform(0.0, 0.04))
            elif mode == "targeted":
                # Just after the idp rotated: inside the window (or just past it).
                deadline = time.monotonic() + 5
                while len(idp.rotations) == n_rot and time.monotonic() < deadline:
                    time.sleep(0.0002)
                time.sleep(rnd.uniform(0.0, 0.0015))
            else:
                # Any instant of the daemon's own life: natural refreshes at about L/2.
                time.sleep(rnd.uniform(0.0, lifetime * 0.75))
            d.kill()
            if forcer:
                _, err = forcer.communicate(timeout=10)
                env.client_stderr.append(err)
            # A request the daemon sent before it died still reaches the idp, which rotates and
            # answers into a dead socket: let it arrive and finish before judging the state file.
            time.sleep(0.05)
            harness.wait_until(lambda: all(r["status"] is not None or r["fault"]
                                           for r in idp.requests("token")[-3:]), 5, "the idp to settle")
            stored = read_state_refresh_token(env.state, "default")
            if stored is None:
                failures.append("kill %d: no readable state file after the kill" % i)
                break
            predicted_lost = not idp.refresh_token_is_valid(stored)
            rotated_during = len(idp.rotations) > n_rot
            if not idp.refresh_token_is_valid(stored) or (rotated_during and idp.rotations[-1][2] == stored):
                in_window[mode] += 1   # the idp rotated; the store still held the old token
            t0 = time.monotonic()
            d = env.start_daemon()
            restart_ms.append(1000 * (time.monotonic() - t0))
            r = d.ctl("refresh", timeout=30)
            got_lost = r.returncode == 2
            if r.returncode not in (0, 2):
                # A transient answer would be a daemon problem here: the idp has no faults.
                failures.append("kill %d: refresh after restart exited %d: %s" % (i, r.returncode, r.stderr.strip()))
                break
            if got_lost != predicted_lost:
                mismatches.append("kill %d (%s): predicted %s, restarted daemon %s" % (
                    i, mode, "lost" if predicted_lost else "kept", "lost" if got_lost else "kept"))
            if got_lost:
                lost += 1
                st = d.status()
                notes.append("kill %d (%s): sign-in lost (%s)" % (i, mode, st.get("last_error", "")[:60]))
                d.sign_in(idp, user=USER)
                sign_ins += 1
                codes_expected = len(idp.requests("devicecode"))
            else:
                st = d.status()
                if st["state"] != "valid":
                    failures.append("kill %d: state %s after the restart's refresh" % (i, st["state"]))
            if len(idp.requests("devicecode")) != codes_expected:
                failures.append("kill %d: a device code was requested without a lost sign-in" % i)
                codes_expected = len(idp.requests("devicecode"))
            if (i + 1) % 50 == 0:
                log("  %d kills: %d reads, %d torn, %d sign-ins lost" % (i + 1, reader.reads, len(reader.torn), lost))
        reader.stop()
        d.stop()
        res.update(duration_s=round(time.time() - t_start, 1), kill_modes=kinds, in_window=in_window,
                   lost_sign_ins=lost, sign_ins=sign_ins, prediction_mismatches=mismatches,
                   reads=reader.reads, torn=len(reader.torn), lapse_episodes=len(reader.lapses),
                   restart_to_ready_ms_median=round(statistics.median(restart_ms), 1) if restart_ms else None,
                   lost_notes=notes, grace_redemptions=idp.grace_redemptions)
        if reader.torn:
            failures.append("%d torn reads, first: %s" % (len(reader.torn), reader.torn[:3]))
        if mismatches:
            failures.append("%d kills where the lost/kept prediction was wrong: %s" % (len(mismatches), mismatches[:5]))
        if rotation_grace and lost:
            failures.append("%d sign-ins lost although the idp accepts a used refresh token for %ss" % (lost, rotation_grace))
        res["failures"] = failures
    return res


def report(res, log=print):
    log("machine: %s" % res["machine"])
    for key, what in (("window_from_request_ms", "idp received the refresh request"), ("window_ms", "idp rotated")):
        if key in res:
            w = res[key]
            log("window %s -> new state file renamed into place, %d forced refreshes: median %.2f ms, p90 %.2f ms, max %.2f ms"
                % (what, w["n"], w["median"], w["p90"], w["max"]))
    log("kills: %d (%s) in %.0fs, token lifetime %ds, rotation grace %ss; restart to READY median %s ms"
        % (res["kills"], json.dumps(res["kill_modes"]), res["duration_s"], res["lifetime"], res["rotation_grace"],
           res["restart_to_ready_ms_median"]))
    log("kills in the rotation window: %s; sign-ins lost: %d (new device codes: %d); grace redemptions: %d"
        % (json.dumps(res["in_window"]), res["lost_sign_ins"], res["sign_ins"] - 1, res["grace_redemptions"]))
    log("reads: %d, torn: %d, expired-token episodes: %d" % (res["reads"], res["torn"], res["lapse_episodes"]))
    for n in res["lost_notes"]:
        log("  " + n)
    for f in res["failures"]:
        log("FAIL: %s" % f)


def say(text):
    print(text, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--lifetime", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rotation-grace", type=float, default=0.0)
    ap.add_argument("--window-samples", type=int, default=100)
    ap.add_argument("--build")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = run(args.kills, args.lifetime, args.seed, args.rotation_grace, args.window_samples, log=say, build=args.build)
    report(res, log=say)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
