#!/usr/bin/env python3
"""Turns bench/run's raw results (RESULTS/*.jsonl) into BENCHMARKS.md.

Usage: summarize.py RESULTS_DIR BENCHMARKS_MD RDKAFKA_VERSION_FILE

Each section lives between <!-- section:NAME --> and <!-- /section:NAME --> markers; sections not
run this time are kept from the existing file, so `bench/run producer` refreshes only that part.
Each section carries its headline rows as <!-- headline: {...} --> comments, from which the
summary table at the top is rebuilt.
"""

import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys

ORDER = ["producer", "consumer", "rate", "latency", "verifier", "memory", "cost", "startup"]
# Sections that run against a broker (the others run without one).
BROKER_SECTIONS = {"producer", "consumer", "rate", "latency", "cost", "startup"}
# The first line of a broker section kept from a run on Tansu, before bench/run moved to Apache Kafka.
TANSU_NOTE = "**Broker: Tansu 0.6.0 (memory storage): kept from an earlier run, not yet rerun on Apache Kafka.**"
TITLES = {
    "producer": "Producer throughput",
    "consumer": "Consumer throughput (with full verification)",
    "rate": "Rate accuracy",
    "latency": "Latency honesty: a stalled broker",
    "verifier": "Verifier hot path (criterion)",
    "memory": "Verifier memory: 100 million events, 100 origins",
    "cost": "Cost per event (instructions, callgrind)",
    "startup": "Start to first acknowledged event",
}


def load(results, name):
    path = os.path.join(results, name + ".jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=0, unit=""):
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def spread(values, digits=0):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{fmt(min(values), digits)} – {fmt(max(values), digits)}"


def headline(target, result, met, detail=""):
    row = {"target": target, "result": result, "met": met, "detail": detail}
    return f"<!-- headline: {json.dumps(row)} -->"


def loads_of(rows):
    values = [r.get("load") for r in rows if r.get("load")]
    return f"{values[0]} … {values[-1]}" if values else "n/a"


def meta_load(meta, section):
    for m in meta:
        if m.get("section") == section:
            return m.get("load_before", "n/a"), m.get("started", "")
    return "n/a", ""


def rdp_summary(summary, produce):
    if not summary:
        return None, None, None
    if produce:
        m = re.search(r"(\d+) delivered .* in (\d+)ms: (\d+) msgs/s", summary)
        return (int(m[1]), int(m[2]) / 1e3, int(m[3])) if m else (None, None, None)
    m = re.search(r"(\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s", summary)
    return (int(m[1]), int(m[3]) / 1e3, int(m[4])) if m else (None, None, None)


# --- sections ---------------------------------------------------------------------------------


def producer(rows, meta):
    size = next((r for r in rows if r.get("who") == "size"), {})
    ours = [r for r in rows if r.get("who") == "ours"]
    theirs = [r for r in rows if r.get("who") == "theirs"]
    out = []
    lb, started = meta_load(meta, "producer")
    out.append(f"Started {started}; load average before: {lb}. One Apache Kafka node, each run to a fresh "
               "topic of 5 partitions (ours: created by the producer itself, before its clock starts; "
               "theirs: Kafka's `TopicCommand`), 1 000 000 records, acks=all, idempotence on, "
               "linger.ms=5 (librdkafka's default, which ours uses; rdkafka_performance's own default "
               "is 1000, so it is set explicitly), the same `kta-run` header on every record. Rounds "
               "alternate who goes first.\n")
    out.append(f"Record size: our events' mean value size, measured by reading 1 000 000 of them back "
               f"with `rdkafka_performance -C`: **{fmt(size.get('bytes'))} bytes** "
               f"(`{size.get('summary', '').strip()}`); rdkafka_performance sends that size (`-s`).\n")
    out.append("| round | ours records/s | ours wall s | rdkafka_performance records/s | its wall s | ratio | load (1/5/15 min) |")
    out.append("|---|---|---|---|---|---|---|")
    rounds = sorted({int(r["round"]) for r in ours + theirs})
    o_rates, t_rates, o_walls, t_walls, ratios, problems = [], [], [], [], [], []
    for rnd in rounds:
        o = next((r for r in ours if int(r["round"]) == rnd), {})
        t = next((r for r in theirs if int(r["round"]) == rnd), {})
        rep = o.get("report") or {}
        o_rate = rep.get("acked_per_s", rep.get("rate")) if rep.get("acked") == 1_000_000 else None
        if rep.get("acked") != 1_000_000:
            problems.append(f"round {rnd}: ours acked {rep.get('acked')} ({o.get('report_raw', '')[:200]})")
        delivered, _, t_rate = rdp_summary(t.get("summary"), True)
        if delivered != 1_000_000:
            problems.append(f"round {rnd}: rdkafka_performance delivered {delivered}: {t.get('summary')}")
            t_rate = None
        o_rates.append(o_rate); t_rates.append(t_rate)
        o_walls.append(o.get("wall_s")); t_walls.append(t.get("wall_s"))
        ratio = o_rate / t_rate if o_rate and t_rate else None
        ratios.append(ratio)
        out.append(f"| {rnd} | {fmt(o_rate)} | {fmt(o.get('wall_s'), 2)} | {fmt(t_rate)} | {fmt(t.get('wall_s'), 2)} | "
                   f"{fmt(ratio, 2)} | {o.get('load', '')} |")
    mo, mt = med(o_rates), med(t_rates)
    ratio = mo / mt if mo and mt else None
    out.append("")
    out.append(f"- **ours: median {fmt(mo)} records/s** (min–max {spread(o_rates)}); measured by the tool "
               "itself: `acked_per_s` of its report = acked / (first send → last ack).")
    out.append(f"- **rdkafka_performance: median {fmt(mt)} records/s** (min–max {spread(t_rates)}); its own "
               "figure: delivered / (first produce → last delivery report).")
    out.append(f"- **ratio of medians: {fmt(ratio, 2)}** (per-round ratios {spread(ratios, 2)}).")
    wo = med([1e6 / w for w in o_walls if w]); wt = med([1e6 / w for w in t_walls if w])
    out.append(f"- Whole process (start → exit, 1 000 000 / wall time): ours {fmt(wo)}/s, rdkafka_performance "
               f"{fmt(wt)}/s (ours includes connecting and creating the topic; theirs starts on an existing topic).")
    for p in problems:
        out.append(f"- problem: {p}")
    out.append("")
    out.append("Commands (port of that run):\n")
    out.append("```sh")
    if ours:
        out.append(ours[0]["cmd"])
    if theirs:
        out.append(theirs[0]["cmd"])
    out.append("```")
    out.append(headline("producer ≥ 0.9 × rdkafka_performance records/s",
                        f"{fmt(mo)} vs {fmt(mt)} records/s: {fmt(ratio, 2)}×", bool(ratio and ratio >= 0.9)))
    return out


def consumer(rows, meta):
    ours = [r for r in rows if r.get("who") == "ours"]
    theirs = [r for r in rows if r.get("who") == "theirs"]
    notes = [r["note"] for r in rows if "note" in r]  # noqa
    lb, started = meta_load(meta, "consumer")
    out = [f"Started {started}; load average before: {lb}. One Apache Kafka node; the topic holds "
           "1 000 000 of our events (written once by our producer), 5 partitions; every run reads all of it "
           "from the beginning. Ours: a new consumer group per run (subscribe, group join, earliest "
           "offset), every event decoded and tallied, offsets stored and committed; "
           "rdkafka_performance `-C`: the simple (assign) consumer on partitions 0–4, counting only.\n"]
    out.append("| round | ours verdict | ours: first record → exit, records/s | ours: whole process, records/s | "
               "rdkafka_performance: its figure (first → last message), records/s | its whole process, records/s | load |")
    out.append("|---|---|---|---|---|---|---|")
    rounds = sorted({int(r["round"]) for r in ours + theirs})
    o_first, o_whole, t_own, t_whole = [], [], [], []
    for rnd in rounds:
        o = next((r for r in ours if int(r["round"]) == rnd), {})
        t = next((r for r in theirs if int(r["round"]) == rnd), {})
        rep = o.get("report") or {}
        ok = rep.get("consumed") == 1_000_000 and rep.get("verdict") == "pass"
        first = 1e6 / (o["t1"] - o["first_record"]) if ok and isinstance(o.get("first_record"), float) else None
        whole = 1e6 / (o["t1"] - o["t0"]) if ok else None
        n, _, rate = rdp_summary(t.get("summary"), False)
        trate = rate if n == 1_000_000 else None
        twhole = 1e6 / (t["t1"] - t["t0"]) if trate else None
        o_first.append(first); o_whole.append(whole); t_own.append(trate); t_whole.append(twhole)
        out.append(f"| {rnd} | {rep.get('verdict', 'n/a')} ({fmt(rep.get('consumed'))}) | {fmt(first)} | {fmt(whole)} | "
                   f"{fmt(trate)} | {fmt(twhole)} | {o.get('load', '')} |")
    r_first = med(o_first) / med(t_own) if med(o_first) and med(t_own) else None
    r_whole = med(o_whole) / med(t_whole) if med(o_whole) and med(t_whole) else None
    out.append("")
    out.append(f"- **first record → done: ours median {fmt(med(o_first))}/s (min–max {spread(o_first)}), "
               f"rdkafka_performance {fmt(med(t_own))}/s ({spread(t_own)}): ratio {fmt(r_first, 2)}**. Ours is "
               "measured from the log time of its first record to process exit (so it includes the final commit "
               "and leaving the group), theirs is its own figure (first → last message).")
    out.append(f"- whole process (start → exit): ours {fmt(med(o_whole))}/s ({spread(o_whole)}), rdkafka_performance "
               f"{fmt(med(t_whole))}/s ({spread(t_whole)}): ratio {fmt(r_whole, 2)} (ours joins a group; theirs "
               "assigns partitions directly).")
    for n in notes:
        out.append(f"- note: {n}")
    out.append("\nCommands:\n\n```sh")
    if ours:
        out.append(ours[0]["cmd"])
    if theirs:
        out.append(theirs[0]["cmd"])
    out.append("```")
    out.append(headline("consumer (full verification) ≥ 0.9 × rdkafka_performance -C",
                        f"{fmt(med(o_first))} vs {fmt(med(t_own))} records/s: {fmt(r_first, 2)}×",
                        bool(r_first and r_first >= 0.9), "first record → done"))
    return out


def rate(rows, meta):
    notes = [r["note"] for r in rows if "note" in r]
    rows = [r for r in rows if "note" not in r]
    lb, started = meta_load(meta, "rate")
    out = [f"Started {started}; load average before: {lb}. `produce --rate R --duration 20s` to a fresh topic "
           "each, then `bench/tools` `read-schedule` reads the topic back and works from the events' own "
           "`timestamp` fields (taken right before each send; event n is due at start + n/R, start = "
           "min(timestamp_n − n/R)):\n",
           "- achieved rate = (events − 1) / (last timestamp − first timestamp);",
           "- worst 1 s window = largest |events in [start + k, start + k + 1) − R| / R over the 20 whole "
           "seconds of the schedule;",
           "- deviation = timestamp_n − (start + n/R): how late each send was against its schedule.\n",
           "| target /s | events (expected) | achieved /s | error | worst 1 s window | windows min–max | "
           "deviation p50 / p99 / p99.9 / max ms | producer report: rate, ack p50 / p99 / max ms | load |",
           "|---|---|---|---|---|---|---|---|---|"]
    worst_err, worst_win = 0.0, 0.0
    ok = bool(rows)
    for r in rows:
        s = r.get("schedule") or {}
        rep = r.get("report") or {}
        if not s:
            ok = False
            out.append(f"| {fmt(r['rate'])} | reader failed | | | | | | | {r.get('load')} |")
            continue
        d = s["deviation_ms"]
        lat = rep.get("ack_latency_ms", {})
        complete = s["events"] == s["expected"] and s["missing"] == 0 and s["duplicates"] == 0
        ok = ok and complete
        worst_err = max(worst_err, abs(s["rate_error_pct"]))
        worst_win = max(worst_win, s["worst_window_pct"])
        out.append(f"| {fmt(r['rate'])} | {fmt(s['events'])} ({fmt(s['expected'])}) | {fmt(s['achieved_rate'], 2)} | "
                   f"{s['rate_error_pct']:+.4f} % | {s['worst_window_pct']:.3f} % | {fmt(s['window_min'])} – {fmt(s['window_max'])} | "
                   f"{d['p50']:.3f} / {d['p99']:.3f} / {d['p999']:.3f} / {d['max']:.3f} | "
                   f"{fmt(rep.get('rate'), 1)}, {fmt(lat.get('p50'), 1)} / {fmt(lat.get('p99'), 1)} / {fmt(lat.get('max'), 1)} | {r.get('load')} |")
    for n in notes:
        out.append(f"\nNote: {n}.")
    out.append("\nCommands:\n\n```sh")
    for r in rows[:1]:
        out.append(r["cmd"])
    out.append("```")
    out.append(headline("achieved rate within 0.5 % of target (10, 1000, 10 000, 100 000 /s)",
                        f"worst {worst_err:.4f} %", ok and worst_err <= 0.5))
    out.append(headline("worst 1 s window within 2 %", f"worst {worst_win:.3f} %", ok and worst_win <= 2.0))
    return out


def latency(rows, meta):
    notes = [r["note"] for r in rows if "note" in r]
    rows = [r for r in rows if "note" not in r]
    lb, started = meta_load(meta, "latency")
    out = [f"Started {started}; load average before: {lb}. `produce --rate 1000 --duration 20s`; in the "
           "stalled runs the broker gets SIGSTOP 8 s into the run and SIGCONT 2 s later. Ack latency is the "
           "producer's own report, measured from each event's scheduled send time; the schedule columns come "
           "from reading the topic back (as in Rate accuracy).\n",
           "| run | sent / acked / failed | ack latency p50 / p99 / p99.9 / max ms | achieved /s (from timestamps) | "
           "send deviation p99 / max ms | load |",
           "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["kind"], r["round"])):
        rep = r.get("report") or {}
        lat = rep.get("ack_latency_ms", {})
        s = r.get("schedule") or {}
        d = s.get("deviation_ms", {})
        out.append(f"| {r['kind']} #{int(r['round'])} | {fmt(rep.get('sent'))} / {fmt(rep.get('acked'))} / {fmt(rep.get('failed'))} | "
                   f"{fmt(lat.get('p50'), 1)} / {fmt(lat.get('p99'), 1)} / {fmt(lat.get('p999'), 1)} / {fmt(lat.get('max'), 1)} | "
                   f"{fmt(s.get('achieved_rate'), 2)} | {fmt(d.get('p99'), 3)} / {fmt(d.get('max'), 3)} | {r.get('load')} |")
    for n in notes:
        out.append(f"\nNote: {n}.")
    calm = [r["report"]["ack_latency_ms"] for r in rows if r["kind"] == "calm" and r.get("report")]
    stalled = [r["report"]["ack_latency_ms"] for r in rows if r["kind"] == "stalled" and r.get("report")]
    out.append("\nCommands:\n\n```sh")
    seen = set()
    for r in rows:
        if r["kind"] not in seen:
            seen.add(r["kind"])
            out.append(r["cmd"])
    out.append("```")
    if calm and stalled:
        c_max, s_max = med([c["max"] for c in calm]), med([s["max"] for s in stalled])
        c_999, s_999 = med([c["p999"] for c in calm]), med([s["p999"] for s in stalled])
        shows = s_max >= 1500 and s_max > 3 * c_max
        out.append(headline("a 2 s broker stall shows in ack p99.9/max; an undisturbed run does not",
                            f"max {fmt(c_max, 0)} ms calm vs {fmt(s_max, 0)} ms stalled; p99.9 {fmt(c_999, 0)} vs {fmt(s_999, 0)} ms",
                            shows))
    return out


def verifier(rows, meta):
    lb, started = meta_load(meta, "verifier")
    if any(r.get("skipped") for r in rows):
        return ["Skipped: " + rows[0]["skipped"] + " (see bench/README.md for the lines to add).",
                headline("verifier hot path ≥ 2 M events/s on one core", "not run", False)]
    out = [f"Started {started}; load average before: {lb}. `benches/verifier.rs`, pinned to one core "
           "(`taskset -c 1`), 100 000 real encoded events per iteration, a fresh `Tally` per iteration "
           "(not timed), so every event takes the counted path: "
           "`Tally::record(Some(&bytes), Some(run), partition, now)` = decode (exact-shape fast path, serde_json for anything else) + per-origin tally + "
           "latency histograms. `decode` and `encode` alone for comparison.\n",
           "| benchmark | median ns / event | 95 % CI ns / event | events/s (median) |", "|---|---|---|---|"]
    rec = None
    for r in rows:
        per = r["per_iter_ns"]["median"] / r["events_per_iter"]
        lo, hi = (x / r["events_per_iter"] for x in r["ci_ns"])
        eps = 1e9 / per
        if r["bench"].endswith("tally_record/1_origins"):
            rec = eps
        out.append(f"| {r['bench']} | {per:.1f} | {lo:.1f} – {hi:.1f} | {eps / 1e6:.2f} M |")
    out.append("\nCommand: `taskset -c 1 target/release/deps/verifier-* --bench --noplot --warm-up-time 2 "
               "--measurement-time 6 --sample-size 20` (built by `cargo bench --bench verifier --no-run`).")
    out.append(headline("verifier hot path (decode + tally) ≥ 2 M events/s on one core",
                        f"{rec / 1e6:.2f} M events/s" if rec else "n/a", bool(rec and rec >= 2e6)))
    return out


def memory(rows, meta):
    lb, started = meta_load(meta, "memory")
    out = [f"Started {started}; load average before: {lb}. `bench/tools` `tally-mem` feeds one `Tally` "
           "100 000 000 events (1 000 000 from each of 100 origins, interleaved, round-robin over 5 "
           "partitions, no gaps) encoded by `EventEncoder`, then checks the report: pass, every count exact, "
           "nothing missing. No broker.\n"]
    ok = False
    for r in rows:
        rep = r.get("report") or {}
        rss = r.get("max_rss_kib")
        ok = rep.get("verdict") == "pass" and rss is not None and rss / 1024 < 64
        out.append(f"- verdict **{rep.get('verdict')}**, {fmt(rep.get('events'))} events in {fmt(rep.get('elapsed_s'), 1)} s "
                   f"({fmt(rep.get('events_per_s'))} events/s including encoding them), "
                   f"**max RSS {fmt(rss / 1024 if rss else None, 1)} MiB** (`/usr/bin/time -v`; VmHWM "
                   f"{fmt(rep.get('vm_hwm_kib', 0) / 1024, 1)} MiB, RSS before feeding {fmt(rep.get('vm_rss_before_kib', 0) / 1024, 1)} MiB); load {r.get('load')}.")
        out.append(f"\nCommand: `{r['cmd']}`")
        out.append(headline("memory for 100 M events from 100 origins, no gaps < 64 MiB",
                            f"{fmt(rss / 1024 if rss else None, 1)} MiB max RSS", ok))
    return out


def cost(rows, meta, results):
    lb, started = meta_load(meta, "cost")
    out = [f"Started {started}; load average before: {lb}. Instructions counted by `valgrind --tool=callgrind --fair-sched=yes` "
           "(every thread of the process, librdkafka's included), for a small and a large run against one "
           "Apache Kafka node (scripts/kafka); the marginal cost per event is (Ir(large) − Ir(small)) / (large − small), which "
           "cancels start-up and shutdown. Repeatable whatever else the machine does; a regression shows "
           "as a larger number here. Ours produces and verifies real events; rdkafka_performance sends "
           "149-byte filler with the same `kta-run` header and consumes without looking.\n",
           "| what | who | Ir, small run | Ir, large run | **instructions / event** | verdicts (small, large) |",
           "|---|---|---|---|---|---|"]
    per = {}
    # Our runs must pass: a run that lost or timed out deliveries counts the wrong work.
    failed_runs = [f"{r['what']} ({r.get('verdicts') or 'none'})" for r in rows
                   if r.get("who") == "ours" and r.get("verdicts") != "pass pass"]
    for r in rows:
        try:
            v = (float(r["ir_large"]) - float(r["ir_small"])) / (r["large"] - r["small"])
        except (TypeError, ValueError, KeyError):
            v = None
        per[(r["what"], r["who"])] = v
        out.append(f"| {r['what']} | {'kafka-test-app' if r['who'] == 'ours' else 'rdkafka_performance'} "
                   f"({fmt(r.get('small'))} / {fmt(r.get('large'))} events) | {fmt(float(r['ir_small'])) if r.get('ir_small') else 'n/a'} | "
                   f"{fmt(float(r['ir_large'])) if r.get('ir_large') else 'n/a'} | **{fmt(v)}** | "
                   f"{r.get('verdicts') or 'n/a'} |")
    for what in ("produce", "consume"):
        o, t = per.get((what, "ours")), per.get((what, "theirs"))
        if o and t:
            out.append(f"\n{what}: ours costs {o / t:.2f}× rdkafka_performance's instructions per event.")
    for what in ("produce", "consume"):
        for who, name in (("ours", "kafka-test-app"), ("theirs", "rdkafka_performance")):
            path = os.path.join(results, f"cg-{who}-{what}-split.txt")
            if os.path.exists(path) and os.path.getsize(path):
                out.append(f"\n**{name} {what}: where the instructions per event go** (`bench/cg-split`: "
                           "marginal self cost, large run minus small run, per event):\n")
                out.extend(line.rstrip()[:200] for line in open(path))
    out.append("\nCommands: `valgrind --tool=callgrind --fair-sched=yes kafka-test-app produce --rate 0 --num-messages N` / "
               "`consume --expect N`, `rdkafka_performance -P -s 149 -c N -X enable.idempotence=true -X acks=all "
               "-X linger.ms=5` / `-C -p 0 … -p 4 -o beginning -c N`, N = 20 000 and 120 000.")
    # The guard: ours within these multiples of rdkafka_performance's instructions per event, and
    # every run of ours under callgrind passed.
    limits = {"produce": 1.2, "consume": 2.0}
    ratios = {w: per[(w, "ours")] / per[(w, "theirs")] for w in limits
              if per.get((w, "ours")) and per.get((w, "theirs"))}
    if len(ratios) == len(limits):
        within = all(ratios[w] <= limits[w] for w in limits)
        detail = "; ".join(f"{w} {ratios[w]:.2f}× (≤ {limits[w]}×)" for w in limits)
        if failed_runs:
            detail += f"; runs under callgrind that did not pass: {', '.join(failed_runs)}"
        out.append(headline("instructions per event on Apache Kafka: produce ≤ 1.2×, consume with full "
                            "verification ≤ 2× rdkafka_performance's",
                            f"produce {fmt(per[('produce', 'ours')])} vs {fmt(per[('produce', 'theirs')])}, "
                            f"consume {fmt(per[('consume', 'ours')])} vs {fmt(per[('consume', 'theirs')])}",
                            within and not failed_runs, detail))
    return out


def startup(rows, meta):
    lb, started = meta_load(meta, "startup")
    out = [f"Started {started}; load average before: {lb}. `produce --num-messages 1 --rate 0`, 10 runs each "
           "to an existing topic and to a new one (the producer creates it). Whole process = fork/exec to "
           "exit (includes the final flush and librdkafka's shutdown); start → sending = the `producing` "
           "log line's time − process start; first ack ≈ start → sending + the event's ack latency (from "
           "the report).\n",
           "| topic | whole process ms, median (min–max) | start → sending ms | ack latency ms | "
           "**start → first ack ms** |", "|---|---|---|---|---|"]
    result = None
    for kind in ("existing", "new"):
        rs = [r for r in rows if r["kind"] == kind and (r.get("report") or {}).get("acked") == 1]
        whole = [(r["t1"] - r["t0"]) * 1e3 for r in rs]
        sending = [(r["producing"] - r["t0"]) * 1e3 for r in rs if isinstance(r.get("producing"), float)]
        ack = [r["report"]["ack_latency_ms"]["max"] for r in rs]
        first = [(r["producing"] - r["t0"]) * 1e3 + r["report"]["ack_latency_ms"]["max"]
                 for r in rs if isinstance(r.get("producing"), float)]
        if kind == "existing":
            result = med(first)
        out.append(f"| {kind} ({len(rs)} runs acked) | {fmt(med(whole), 1)} ({spread(whole, 1)}) | {fmt(med(sending), 1)} "
                   f"({spread(sending, 1)}) | {fmt(med(ack), 1)} ({spread(ack, 1)}) | **{fmt(med(first), 1)}** ({spread(first, 1)}) |")
    out.append("\nCommand:\n\n```sh")
    if rows:
        out.append(rows[0]["cmd"])
    out.append("```")
    out.append(headline("start to first ack < 100 ms (existing topic)", f"{fmt(result, 1)} ms",
                        bool(result and result < 100)))
    return out


# --- assembly ---------------------------------------------------------------------------------


def machine():
    def cmd(c):
        try:
            return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "n/a"
    cpu = cmd("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = cmd("free -h | awk '/^Mem:/{print $2}'")
    return (f"{cmd('nproc')} cores ({cpu}), {mem} memory, kernel {platform.release()}, "
            f"{cmd('rustc --version')}")


def main():
    results, target, version_file = sys.argv[1:4]
    meta = load(results, "meta")
    fresh = {}
    for name in ORDER:
        rows = load(results, name)
        if not rows and not any(m.get("section") == name for m in meta):
            continue
        body = cost(rows, meta, results) if name == "cost" else globals()[name](rows, meta)
        fresh[name] = "\n".join(body)
    old = open(target).read() if os.path.exists(target) else ""
    sections = {}
    for name in ORDER:
        if name in fresh:
            sections[name] = fresh[name]
        else:
            m = re.search(rf"<!-- section:{name} -->\n(.*?)\n<!-- /section:{name} -->", old, re.S)
            if m:
                sections[name] = m[1]
                # A kept section measured on the broker used before Apache Kafka says which.
                if name in BROKER_SECTIONS and "Apache Kafka" not in m[1] and TANSU_NOTE not in m[1]:
                    sections[name] = TANSU_NOTE + "\n\n" + m[1]
    last = next((m for m in reversed(meta) if "total_s" in m), {})
    version = open(version_file).read().strip() if os.path.exists(version_file) else "?"
    rows = []
    for name in ORDER:
        for h in re.findall(r"<!-- headline: (.*?) -->", sections.get(name, "")):
            rows.append(json.loads(h))
    lines = [
        "# Benchmarks",
        "",
        "Written by `bench/run` (see `bench/README.md`); do not edit by hand. Every figure below is "
        "reproduced by `bench/run` on a fresh machine; `bench/run SECTION…` refreshes only those sections.",
        "",
        f"- Machine: {machine()}.",
        f"- Last run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `{last.get('command', 'bench/run')}` "
        f"(sections: {last.get('sections', '?')}; {fmt(last.get('rounds'))} rounds; {fmt(last.get('total_s', 0) / 60, 1)} minutes), "
        f"kafka-test-app at commit {last.get('commit', '?')}.",
        f"- Broker: Apache Kafka (scripts/kafka: one KRaft node on 127.0.0.1, a fresh one per section), "
        f"on the same 2 cores as the clients; a section not rerun since the move from Tansu 0.6.0 "
        f"says so in its first line. Reference client: `rdkafka_performance` built from the librdkafka bundled in "
        f"rdkafka-sys {version} (the same librdkafka the tool links).",
        "- Other work may share the machine; each section notes the load average before it starts and each "
        "run its own, and comparisons alternate rounds and report medians.",
        "",
        "## Targets",
        "",
        "| target | result | met |",
        "|---|---|---|",
    ]
    for r in rows:
        detail = f" ({r['detail']})" if r.get("detail") else ""
        lines.append(f"| {r['target']} | {r['result']}{detail} | {'yes' if r['met'] else '**no**'} |")
    lines.append("")
    lines.append("Where a target is missed, *Analysis* at the end says why, with the profile.")
    lines.append("")
    for name in ORDER:
        if name in sections:
            lines += [f"## {TITLES[name]}", "", f"<!-- section:{name} -->", sections[name],
                      f"<!-- /section:{name} -->", ""]
    notes = re.search(r"<!-- notes -->\n(.*?)\n<!-- /notes -->", old, re.S)
    if notes:
        lines += ["<!-- notes -->", notes[1], "<!-- /notes -->", ""]
    open(target, "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
