#!/usr/bin/env python3
"""Checks what bench/soak recorded: the engine's invariants and the resource drift.

Usage: bench/soak-check.py SOAK_DIR   (the directory bench/soak ran in; standard library only)

Reads meta.env, releases.tsv (every release written, good or bad), drops.tsv, samples.tsv,
proxy.out (every message the fake proxy received), agent.log, status-final.json, github.err
and the install/work directories. Prints the samples, the drift, each invariant with its
verdict, and PASS or FAIL; exits 0 on PASS, 1 on FAIL.
"""
import json
import os
import re
import sys


def semver_key(tag):
    return tuple(int(x) for x in tag.lstrip("vV").split("."))


def read_tsv(path):
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    head, rows = lines[0], lines[1:]
    return [dict(zip(head, r)) for r in rows]


def main():
    d = sys.argv[1]
    meta = {}
    with open(os.path.join(d, "meta.env")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    releases = read_tsv(os.path.join(d, "releases.tsv"))
    drops = read_tsv(os.path.join(d, "drops.tsv"))
    samples = read_tsv(os.path.join(d, "samples.tsv"))
    with open(os.path.join(d, "proxy.out"), errors="replace") as f:
        proxy_lines = f.read().splitlines()
    with open(os.path.join(d, "agent.log"), errors="replace") as f:
        agent_log = f.read()
    with open(os.path.join(d, "github.err"), errors="replace") as f:
        github_err = f.read()
    try:
        with open(os.path.join(d, "status-final.json")) as f:
            status = json.load(f)
    except (OSError, ValueError):
        status = {}

    results = []  # (ok, name, detail)

    def check(ok, name, detail=""):
        results.append((bool(ok), name, detail))

    good = {}  # (component, tag) -> bool
    announced = {}  # component -> [tags in order]
    for r in releases:
        good[(r["component"], r["tag"])] = r["good"] == "1"
        announced.setdefault(r["component"], []).append(r["tag"])
    comps = sorted(announced)

    # ---- messages the proxy received (telemetry de-duplicated by id, as a proxy does) ----
    msgs = []
    for i, line in enumerate(proxy_lines):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if isinstance(m, dict):
            msgs.append((i, m))
    hellos = [i for i, m in msgs if m.get("type") == "hello"]
    seen_ids = set()
    telemetry = []
    duplicates = 0
    for i, m in msgs:
        if m.get("type") != "telemetry":
            continue
        if m.get("id") in seen_ids:
            duplicates += 1
            continue
        seen_ids.add(m.get("id"))
        telemetry.append((m.get("at", ""), i, m))
    telemetry.sort(key=lambda t: (t[0], t[1]))
    per_comp = {c: [m for _, _, m in telemetry if m.get("component") == c] for c in comps}

    # ---- samples and drift ----
    print("\nsamples (t = seconds since the release stream started):")
    print("   %-9s %6s %10s %5s %8s" % ("label", "t_s", "VmRSS KiB", "fds", "threads"))
    for s in samples:
        print("   %-9s %6s %10s %5s %8s" % (s["label"], s["t_s"], s["rss_kib"], s["fds"], s["threads"]))
    baseline_s = int(meta["baseline_s"])
    base = next((s for s in samples if s["label"].startswith("t+") and int(s["t_s"]) >= baseline_s), None)
    end = next((s for s in samples if s["label"] == "end"), None)
    rss_tol = int(meta["rss_tolerance_kib"])
    fd_tol = int(meta["fd_tolerance"])
    drift_ok = False
    if base and end and int(end["rss_kib"]) > 0:
        drss = int(end["rss_kib"]) - int(base["rss_kib"])
        dfd = int(end["fds"]) - int(base["fds"])
        dthr = int(end["threads"]) - int(base["threads"])
        span_min = max(1e-9, (int(end["t_s"]) - int(base["t_s"])) / 60.0)
        print("\ndrift from t=%ss to end (t=%ss): VmRSS %+d KiB (%+.1f KiB/min), fds %+d, threads %+d"
              % (base["t_s"], end["t_s"], drss, drss / span_min, dfd, dthr))
        rss_ok = drss < rss_tol
        fd_ok = abs(dfd) <= fd_tol
        drift_ok = rss_ok and fd_ok
        check(rss_ok, "RSS drift < %d KiB" % rss_tol, "%+d KiB" % drss)
        check(fd_ok, "fd drift within +-%d" % fd_tol, "%+d (%s -> %s)" % (dfd, base["fds"], end["fds"]))
    else:
        check(False, "drift measured", "missing baseline or end sample")

    # ---- liveness ----
    check(meta["alive_end"] == "1", "agent alive after the stream")
    check(meta["settled"] == "1", "agent idle after the stream (all components idle, nothing pending)",
          "%s ms" % meta["settle_ms"])
    check(meta["probe_ok"] == "1", "agent still answering: probe release deployed",
          "%s %s in %s ms" % (comps[0] if comps else "?", meta["probe_tag"], meta["probe_ms"]))
    check(meta["status_rc"] == "0", "--status answers", "exit %s" % meta["status_rc"])
    check(meta["agent_rc"] == "0", "clean stop on SIGTERM", "exit %s after %s ms" % (meta["agent_rc"], meta["stop_ms"]))
    check(status.get("proxy") == "connected" and status.get("telemetry_pending") == 0,
          "status: proxy connected, no telemetry pending",
          "proxy=%s pending=%s" % (status.get("proxy"), status.get("telemetry_pending")))

    # ---- reconnects ----
    missed = [int(x["proxy_out_lines"]) for x in drops
              if not any(h >= int(x["proxy_out_lines"]) for h in hellos)]
    check(not missed and len(hellos) >= len(drops) + 1,
          "a new hello after each proxy drop",
          "%d drops, %d hellos%s" % (len(drops), len(hellos), "; none after line(s) %s" % missed if missed else ""))

    # ---- per-component telemetry sequences ----
    seq_problems, bad_ok, rollback_problems, good_failed_hard = [], [], [], []
    transient = []
    counts = {"apply_started": 0, "apply_succeeded": 0, "apply_failed": 0}
    bad_failed = 0
    final_from_telemetry = {}
    for c in comps:
        cur, open_tag = None, None
        for m in per_comp[c]:
            ev, tag = m.get("event"), m.get("tag")
            counts[ev] = counts.get(ev, 0) + 1
            if ev == "apply_started":
                if open_tag is not None:
                    seq_problems.append("%s: %s started while %s in flight" % (c, tag, open_tag))
                if m.get("from_tag") != cur:
                    seq_problems.append("%s: %s started from %s, but current was %s"
                                        % (c, tag, m.get("from_tag"), cur))
                open_tag = tag
                continue
            if open_tag != tag:
                seq_problems.append("%s: %s %s without a matching apply_started (open: %s)"
                                    % (c, ev, tag, open_tag))
            open_tag = None
            is_good = good.get((c, tag))
            if is_good is None:
                seq_problems.append("%s: %s for unknown tag %s" % (c, ev, tag))
            if ev == "apply_succeeded":
                if is_good is False:
                    bad_ok.append("%s %s" % (c, tag))
                cur = tag
            elif ev == "apply_failed":
                if not m.get("rollback_ok") or m.get("rolled_back_to") != m.get("from_tag"):
                    rollback_problems.append("%s %s: rollback_ok=%s rolled_back_to=%s from_tag=%s error=%s"
                                             % (c, tag, m.get("rollback_ok"), m.get("rolled_back_to"),
                                                m.get("from_tag"), m.get("error")))
                if is_good is False:
                    bad_failed += 1
                    if m.get("phase") != "verify":
                        transient.append("%s %s (bad) failed in %s: %s" % (c, tag, m.get("phase"), m.get("error")))
                elif m.get("phase") == "download":
                    transient.append("%s %s failed in download: %s" % (c, tag, m.get("error")))
                else:
                    good_failed_hard.append("%s %s failed in %s: %s" % (c, tag, m.get("phase"), m.get("error")))
                cur = m.get("rolled_back_to")
        if open_tag is not None:
            seq_problems.append("%s: %s still in flight at the end" % (c, open_tag))
        final_from_telemetry[c] = cur
    check(not seq_problems, "telemetry: started/ended alternate per component, from_tag chains",
          "; ".join(seq_problems[:8]) + (" ..." if len(seq_problems) > 8 else ""))
    check(not bad_ok, "no bad release reported as succeeded", ", ".join(bad_ok[:8]))
    check(not good_failed_hard, "no good release failed install/verify", "; ".join(good_failed_hard[:5]))
    check(not rollback_problems and bad_failed > 0,
          "every apply_failed rolled back to from_tag (rollback_ok)",
          "%d failures of bad releases%s" % (bad_failed, "; " + "; ".join(rollback_problems[:5]) if rollback_problems else ""))

    # ---- final state: newest good == status current == on disk ----
    st_comps = {c.get("name"): c for c in status.get("components", [])}
    final_problems = []
    failed_problems = []
    leftovers = []
    install_root = meta["install_root"]
    keep = int(meta["keep"])
    for c in comps:
        goods = [t for t in announced[c] if good[(c, t)]]
        newest_good = max(goods, key=semver_key) if goods else None
        sc = st_comps.get(c, {})
        link = None
        try:
            link = os.readlink(os.path.join(install_root, c, "current"))
        except OSError:
            pass
        disk = link[len("releases/"):] if link and link.startswith("releases/") else link
        if not (newest_good == sc.get("current") == disk == final_from_telemetry.get(c)):
            final_problems.append("%s: newest good %s, status %s, disk %s, telemetry %s"
                                  % (c, newest_good, sc.get("current"), link, final_from_telemetry.get(c)))
        if disk and not os.path.isfile(os.path.join(install_root, c, "releases", disk, "bin", "health")):
            final_problems.append("%s: current -> %s is not a complete release" % (c, link))
        if sc.get("degraded") or sc.get("phase") != "idle" or sc.get("candidates") or sc.get("in_flight"):
            final_problems.append("%s: phase=%s in_flight=%s candidates=%s degraded=%s"
                                  % (c, sc.get("phase"), sc.get("in_flight"), sc.get("candidates"), sc.get("degraded")))
        for t in sc.get("failed", []):
            if good.get((c, t)) is not False:
                failed_problems.append("%s %s" % (c, t))
        rel_dir = os.path.join(install_root, c, "releases")
        entries = sorted(os.listdir(rel_dir)) if os.path.isdir(rel_dir) else []
        partial = [e for e in entries if e.startswith(".")]
        done = [e for e in entries if not e.startswith(".")]
        if partial:
            leftovers.append("%s: partial extractions %s" % (c, partial))
        if len(done) > keep:
            leftovers.append("%s: %d releases kept (> keep=%d): %s" % (c, len(done), keep, done))
        for e in done:
            if good.get((c, e)) is not True:
                leftovers.append("%s: releases/%s is not a good release" % (c, e))
        extra = [e for e in os.listdir(os.path.join(install_root, c)) if e not in ("releases", "current")]
        if extra:
            leftovers.append("%s: stray entries in install_dir: %s" % (c, extra))
    check(not final_problems, "final: newest good tag == status current == install_dir/current, idle",
          "; ".join(final_problems[:6]))
    check(not failed_problems, "status failed lists hold bad tags only",
          ", ".join(failed_problems[:8]) or "%d bad tags listed" % sum(len(st_comps.get(c, {}).get("failed", [])) for c in comps))

    # work_dir: a download that failed keeps its .part for a resume; anything else is a leak.
    download_failures = sum(1 for c in comps for m in per_comp[c]
                            if m.get("event") == "apply_failed" and m.get("phase") == "download")
    parts, files = [], []
    for root, _, fs in os.walk(os.path.join(meta["work_dir"], "downloads")):
        for f in fs:
            (parts if f.endswith(".part") else files).append(os.path.join(root, f))
    if len(parts) > download_failures:
        leftovers.append("%d *.part in work_dir/downloads (bound: %d download failures)" % (len(parts), download_failures))
    if len(files) > 2 * download_failures:
        leftovers.append("%d files in work_dir/downloads: %s" % (len(files), files[:4]))
    check(not leftovers, "no leftovers (partial extractions, *.part, stray releases) beyond bounds",
          "; ".join(leftovers[:6]) or "%d *.part, %d other download files" % (len(parts), len(files)))

    # ---- secrets and log ----
    leaks = [n for n, text in (("agent log", agent_log), ("proxy messages", "\n".join(proxy_lines)),
                               ("fake-github log", github_err))
             if meta["github_token"] in text or meta["proxy_token"] in text]
    check(not leaks, "no token in the agent log or messages", ", ".join(leaks))
    log_lines = agent_log.splitlines()
    errors = [l for l in log_lines if re.match(r"^\S+ (Error|Critical|Fatal) ", l)]
    check(not errors, "no error-level lines in the agent log", " | ".join(errors[:5]))

    # ---- summary figures ----
    throttles = len(re.findall(r"^fake-github: throttle #", github_err, re.M))
    limited = len([l for l in log_lines if re.search(r"HTTP (403|429)", l)])
    goods_announced = sum(1 for r in releases if r["good"] == "1")
    bads_announced = len(releases) - goods_announced
    print("\nfigures: %d releases written (%d good, %d bad) over %s s, %d proxy drops, %d hellos, "
          "%d rate limits scripted, %d rate-limit lines in the agent log"
          % (len(releases), goods_announced, bads_announced, meta["duration_s"], len(drops), len(hellos),
             throttles, limited))
    print("         telemetry: %d started, %d succeeded, %d failed (%d bad releases rolled back), "
          "%d resent duplicates; transient failures: %d; agent log %d lines; total run %s s"
          % (counts["apply_started"], counts["apply_succeeded"], counts["apply_failed"], bad_failed,
             duplicates, len(transient), len(log_lines), meta["total_s"]))
    for t in transient[:10]:
        print("         transient: " + t)
    # Reported, not judged: a log line Poco could not format.
    errfmt = [l for l in log_lines if "[ERRFMT]" in l]
    if errfmt:
        print("note: %d agent log line(s) with a Poco format error ([ERRFMT]), e.g.: %s"
              % (len(errfmt), errfmt[0]))

    print("\ninvariants:")
    for ok, name, detail in results:
        print("   [%s] %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail else ""))
    passed = all(ok for ok, _, _ in results)
    print("\nsoak %s: %d/%d checks passed%s" % ("PASS" if passed else "FAIL",
                                                sum(1 for r in results if r[0]), len(results),
                                                "" if drift_ok else " (drift out of tolerance)"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
