#!/usr/bin/env python3
"""Soak: the real daemon keeps many profiles' tokens fresh against the local identity provider
over HTTPS while a large share of the provider's token answers are random faults of every kind.

One daemon, N profiles (each its own tenant, token_file and spark.properties), short token
lifetimes, http_timeout 2s. A reader thread reads every output in a loop and checks, at every
sampled instant, that it is whole (parsed back; other spark.properties keys unchanged) and
holds a token the identity provider still accepts. A token that expired on disk is a lapse;
each lapse is explained from the identity provider's request log (every refresh attempt from
the scheduled refresh to expiry was a fault) or counted as unexplained (a daemon bug). A
sampler watches the daemon's VmRSS and file descriptors: both must be flat after warm-up.

    python3 tests/soak/soak.py --minutes 12 --profiles 30 --lifetime 8      # the long run
    python3 tests/soak/soak.py --minutes 2.5 --profiles 20 --lifetime 6     # CI (it-faults)

Exit status 0 when every assertion held; the figures are printed (and written as JSON with
--json FILE). Needs a built tree: $AKSSPARK_BUILD_DIR or --build (default ./build).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (FAULT_KINDS, Output, OutputReader, ResourceSampler,  # noqa: E402
                    built_with_sanitizers, harness, machine, start_recording_idp)

RSS_SLACK_KIB = 512
TCP_LIFETIME_SLACK = 3.0      # seconds a connection may outlive http_timeout (sampling steps)
LATE_SUCCESS_MARGIN = 0.25    # an answer this close to expiry may land on disk after it


class SoakFailure(AssertionError):
    pass


def set_build(build):
    if build:
        harness.BUILD = os.path.abspath(build)
        harness.TOKEND = os.path.join(harness.BUILD, "aksspark-tokend")
        harness.TOKENCTL = os.path.join(harness.BUILD, "aksspark-tokenctl")


def sign_in_all(env, d, names, timeout=60):
    """Run every profile's `aksspark-tokenctl login` at once (the idp approves on its own)."""
    procs = {n: subprocess.Popen([harness.TOKENCTL, "--socket", d.socket_path, "--profile", n, "login"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names}
    failed = []
    for n, p in procs.items():
        out, err = p.communicate(timeout=timeout)
        env.client_stderr.append(err)
        if p.returncode != 0:
            failed.append("%s: exit %d: %s" % (n, p.returncode, err.strip()))
    if failed:
        raise SoakFailure("sign-in failed: %s" % "; ".join(failed))


def explain_lapse(idp, tenant, token, first_t, last_t, exp, http_timeout):
    """Why the token on disk expired, from the identity provider's request log: that profile's
    refresh attempts between the token's issue and the lapse's end. Returns (explained, cause,
    text). Explained: every attempt before expiry was a fault (or answered too close to expiry
    for the write to land in time). cause: "no-time" when the last failed attempt ended (a hang
    at the HTTP timeout) less than one minimal backoff (0.5 s, 1 s with Retry-After) before
    expiry, "backoff" when the daemon's backoff after a fault ran past expiry."""
    issued_t = idp.token_info(token)[0]
    attempts = [r for r in idp.requests("token")
                if r["tenant"] == tenant and r["grant_type"] == "refresh_token"
                and issued_t < r["t"] <= last_t + 1.0]
    before = [r for r in attempts if r["t"] < exp]
    ok_early = [r for r in before if r["status"] == 200 and not r["fault"] and r["t"] < exp - LATE_SUCCESS_MARGIN]
    steps = ", ".join("%+.2fs %s" % (r["t"] - exp, r["fault"] or r["status"]) for r in attempts)
    floor_loss = issued_t - int(issued_t)
    text = ("attempts relative to expiry: %s; the token was issued %.2fs before expiry; the idp's exp is "
            "whole seconds, %.2fs before the daemon's count from its request; seen expired %.2f-%.2fs after expiry"
            % (steps or "none", exp - issued_t, floor_loss, first_t - exp, last_t - exp))
    if ok_early:
        return False, "unexplained", "UNEXPLAINED: a refresh succeeded %.2fs before expiry; %s" % (
            exp - ok_early[0]["t"], text)
    if not before:
        return False, "unexplained", "UNEXPLAINED: no refresh attempt before expiry; " + text
    last = before[-1]
    ended = last["t"] + (http_timeout if last["fault"] == "hang" else 0.05)
    min_backoff = 1.0 if last["fault"] in ("429", "503", "500") else 0.5
    gap = exp - ended
    cause = "no-time" if gap < min_backoff else "backoff"
    when = "%.2fs before expiry" % gap if gap >= 0 else "%.2fs after expiry (a hang)" % -gap
    text = ("%d failed attempt(s) before expiry; the last ended %s (%s); %s"
            % (len(before), when, "less than a minimal backoff: no retry could fit" if cause == "no-time"
               else "the daemon's backoff ran past expiry", text))
    return True, cause, text


def run(minutes, profiles, lifetime=6, rate=0.3, seed=1, idps=1, http_timeout=2,
        warmup=None, kinds=FAULT_KINDS, log=print, build=None):
    """Run the soak; returns a dict of figures with "failures" (empty when all held)."""
    set_build(build)
    duration = minutes * 60.0
    warmup = warmup if warmup is not None else max(30.0, duration * 0.2)
    failures = []
    res = {"machine": machine(), "minutes": minutes, "profiles": profiles, "lifetime": lifetime,
           "fault_rate": rate, "seed": seed, "idps": idps, "http_timeout": http_timeout}
    with harness.Env(prefix="aksspark-soak-") as env:
        providers = [start_recording_idp(env, lifetime, hang_seconds=http_timeout + 3,
                                         auto_approve_user="soak@contoso.com", interval=1)
                     for _ in range(idps)]
        names = ["p%02d" % i for i in range(profiles)]
        idp_of, tenant_of, outputs, cfg = {}, {}, [], {}
        for i, n in enumerate(names):
            idp = providers[i % idps]
            idp_of[n], tenant_of[n] = idp, "soak%02d.onmicrosoft.com" % i
            out_dir = env.path("out", n)
            os.makedirs(out_dir, mode=0o700)
            token_file, props = os.path.join(out_dir, "oauthToken"), os.path.join(out_dir, "spark.properties")
            keys = {"spark.app.name": "soak-" + n, "spark.executor.instances": "2"}
            with open(props, "w") as f:
                f.write("# soak profile %s\nspark.app.name=soak-%s\n\nspark.executor.instances = 2\n" % (n, n))
            os.chmod(props, 0o600)
            outputs += [Output(n, "token", token_file), Output(n, "props", props, keys)]
            cfg[n] = {"tenant": tenant_of[n], "authority_host": idp.url, "ca_file": idp.ca_file,
                      "token_file": token_file, "spark_properties": props}
        env.write_config(profiles=cfg, daemon={"http_timeout": "%ds" % http_timeout, "log_level": "info"})
        d = env.start_daemon()
        sign_in_all(env, d, names)
        harness.wait_until(lambda: all(os.path.exists(o.path) for o in outputs), 30, "every token file")
        for idp in providers:
            idp.set(auto_approve_user=None)

        reader = OutputReader(idp_of, outputs)
        sampler = ResourceSampler(d.pid, interval=0.5)
        t_start = time.time()
        for k, idp in enumerate(providers):
            idp.random_faults(rate, list(kinds), seed + k, retry_after=1)
        reader.start()
        sampler.start()
        log("soak: %d profiles, lifetime %ds, fault rate %.0f%%, %.1f min, warm-up %.0fs, %s"
            % (profiles, lifetime, rate * 100, minutes, warmup, machine()))
        next_note = t_start + 60
        while time.time() < t_start + duration:
            if d.proc.poll() is not None:
                raise SoakFailure("the daemon died (exit %s):\n%s" % (d.proc.returncode, d.log()[-3000:]))
            if time.time() >= next_note:
                ok = sum(1 for idp in providers for r in idp.requests("token")
                         if r["t"] >= t_start and r["grant_type"] == "refresh_token" and r["status"] == 200 and not r["fault"])
                log("  %4.0fs: %d refreshes, %d reads, %d torn, %d lapse episodes, rss %s KiB"
                    % (time.time() - t_start, ok, reader.reads, len(reader.torn), len(reader.lapses),
                       sampler.samples[-1][1] if sampler.samples else "?"))
                next_note += 60
            time.sleep(0.5)
        t_end = time.time()
        for idp in providers:
            idp.clear_faults()
        # Let every profile come back to a valid token without faults, then stop watching. A
        # profile whose token expired under a streak of faults backs off by doubling (up to
        # SCHEDULE_BACKOFF_MAX, 5 min) and its next try may be that far away: wait that long.
        harness.wait_until(lambda: all(d.status(n)["state"] == "valid" for n in names),
                           3 * lifetime + 5 * 60 + 10, "every profile valid once the faults stop")
        reader.stop()
        sampler.stop()
        log_text = d.log()
        d.stop()

        # ---- figures --------------------------------------------------------------------------
        token_reqs = [r for idp in providers for r in idp.requests("token") if t_start <= r["t"] <= t_end]
        refresh_reqs = [r for r in token_reqs if r["grant_type"] == "refresh_token"]
        good = [r for r in refresh_reqs if r["status"] == 200 and not r["fault"]]
        faulted = [r for r in token_reqs if r["fault"]]
        by_kind = {}
        for r in faulted:
            by_kind[r["fault"]] = by_kind.get(r["fault"], 0) + 1
        res.update(refresh_cycles=len(good), token_requests=len(token_reqs), faulted=len(faulted),
                   fault_share=round(len(faulted) / max(1, len(token_reqs)), 3), faults_by_kind=by_kind,
                   reads=reader.reads, torn=len(reader.torn), duration_s=round(t_end - t_start, 1),
                   login_required=[n for n in names if "Profile %s: a person must sign in" % n in log_text])
        missing = [k for k in kinds if k not in by_kind]
        if missing:
            failures.append("fault kinds never injected: %s" % missing)
        if res["fault_share"] < 0.2:
            failures.append("only %.1f%% of token requests were faulted" % (100 * res["fault_share"]))
        if reader.torn:
            failures.append("%d torn or unreadable reads, first: %s" % (len(reader.torn), reader.torn[:3]))
        if res["login_required"]:
            failures.append("profiles lost their sign-in: %s" % res["login_required"])

        lapses = []
        for (n, token), (first_t, last_t, count, exp, kinds_seen) in sorted(reader.lapses.items(), key=lambda kv: kv[1][0]):
            ok, cause, text = explain_lapse(idp_of[n], tenant_of[n], token, first_t, last_t, exp, http_timeout)
            lapses.append({"profile": n, "explained": ok, "cause": cause, "reads": count,
                           "duration": round(last_t - exp, 2),
                           "outputs": sorted(kinds_seen), "why": text})
        res["lapses"] = lapses
        res["lapses_unexplained"] = sum(1 for x in lapses if not x["explained"])
        res["lapses_by_cause"] = {c: sum(1 for x in lapses if x["cause"] == c) for c in ("no-time", "backoff", "unexplained")}
        res["lapse_seconds"] = round(sum(x["duration"] for x in lapses), 1)
        if res["lapses_unexplained"]:
            failures.append("%d lapses not explained by faults" % res["lapses_unexplained"])

        # Memory and fds: flat after warm-up.
        warm_end, half = t_start + warmup, t_start + duration / 2
        after = sampler.between(warm_end, warm_end + 5) or sampler.between(warm_end, t_end)
        second = sampler.between(half, t_end)
        if not after or not second:
            failures.append("too few resource samples")
        else:
            base_rss = after[0][1]
            max_rss = max(s[1] for s in second)
            res.update(rss_after_warmup_kib=base_rss, rss_max_second_half_kib=max_rss,
                       rss_growth_kib=max_rss - base_rss,
                       rss_first_kib=sampler.samples[0][1], rss_max_kib=max(s[1] for s in sampler.samples))
            res["sanitizers"] = built_with_sanitizers()
            if max_rss - base_rss > RSS_SLACK_KIB and not res["sanitizers"]:
                failures.append("VmRSS grew by %d KiB after warm-up (%d -> %d)" % (max_rss - base_rss, base_rss, max_rss))
            # An fd that stays is in every sample of a stretch; compare right after warm-up with
            # the last seconds (faults off, every profile valid).
            base_fds = sampler.persistent(after[:8])
            end_fds = sampler.persistent(sampler.samples[-8:])
            res.update(fds_after_warmup=len(base_fds), fds_at_end=len(end_fds),
                       fds_nontcp_max=max(s[2] for s in sampler.samples),
                       fds_tcp_max=max(s[3] for s in sampler.samples),
                       tcp_longest_s=round(sampler.longest_tcp(), 2))
            if base_fds != end_fds:
                failures.append("fds that stayed changed after warm-up: gone %s, new %s"
                                % (sorted(base_fds - end_fds), sorted(end_fds - base_fds)))
            if res["fds_tcp_max"] > profiles:
                failures.append("%d TCP sockets at once for %d profiles" % (res["fds_tcp_max"], profiles))
            if res["tcp_longest_s"] > http_timeout + TCP_LIFETIME_SLACK:
                failures.append("a TCP socket lived %.1fs (http_timeout %ds): leaked" % (res["tcp_longest_s"], http_timeout))
        if res["refresh_cycles"] == 0:
            failures.append("no refresh happened")
        res["failures"] = failures
        t_scan = time.time()
    # Env.__exit__ has now scanned every log for every secret the idp issued (raises if found).
    res["secret_scan_s"] = round(time.time() - t_scan, 1)
    return res


def report(res, log=print):
    log("machine: %s" % res["machine"])
    log("refresh cycles: %d in %.0fs (%d profiles, lifetime %ds); token requests %d, faulted %d (%.1f%%): %s"
        % (res["refresh_cycles"], res["duration_s"], res["profiles"], res["lifetime"], res["token_requests"],
           res["faulted"], 100 * res["fault_share"], json.dumps(res["faults_by_kind"], sort_keys=True)))
    log("reads: %d, torn: %d" % (res["reads"], res["torn"]))
    if "rss_after_warmup_kib" in res:
        log("VmRSS: first %d KiB, after warm-up %d KiB, max over second half %d KiB (growth %+d KiB); "
            "lasting fds after warm-up %d, at the end %d (non-TCP at most %d at once); TCP sockets at most %d, "
            "longest lived %.1fs"
            % (res["rss_first_kib"], res["rss_after_warmup_kib"], res["rss_max_second_half_kib"],
               res["rss_growth_kib"], res["fds_after_warmup"], res["fds_at_end"], res["fds_nontcp_max"],
               res["fds_tcp_max"], res["tcp_longest_s"]))
    log("lapses: %d in %d refresh cycles (%s), %.1f token-seconds expired on disk in all"
        % (len(res["lapses"]), res["refresh_cycles"], json.dumps(res["lapses_by_cause"]), res["lapse_seconds"]))
    for x in res["lapses"]:
        log("  %s: %s lapsed %.2fs (%d reads): %s" % (x["profile"], "+".join(x["outputs"]), x["duration"],
                                                     x["reads"], x["why"]))
    if "secret_scan_s" in res:
        log("secret scan of the logs: clean (%.1fs)" % res["secret_scan_s"])
    for f in res["failures"]:
        log("FAIL: %s" % f)


def say(text):
    print(text, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--profiles", type=int, default=30)
    ap.add_argument("--lifetime", type=int, default=8, help="access-token lifetime (s)")
    ap.add_argument("--rate", type=float, default=0.3, help="share of token requests faulted")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--idps", type=int, default=1, help="identity providers to spread profiles over")
    ap.add_argument("--http-timeout", type=int, default=2)
    ap.add_argument("--build", help="build directory (default $AKSSPARK_BUILD_DIR or ./build)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    t0 = time.time()
    res = run(args.minutes, args.profiles, args.lifetime, args.rate, args.seed, args.idps,
              args.http_timeout, log=say, build=args.build)
    res["wall_s"] = round(time.time() - t0, 1)
    report(res, log=say)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
