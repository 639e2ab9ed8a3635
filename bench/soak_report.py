#!/usr/bin/env python3
"""The figures of a bench/soak-hour.sh run, from its output directory, and the plot.

  soak_report.py OUT [--plot bench/soak-hour.svg]

Prints a Markdown table: the achieved EndpointSlice change rate (the churn writer's count and
the server's "manifests changed" deltas), the query load (dnsperf's segments: sent, answered,
lost; the client's), RSS and its least-squares slope after the first 5 minutes (MiB per hour),
file descriptors and threads (first / min / max / last), and the programming latency p50/p99 of
the first and last 10 minutes, both from the churn writer's own probe (exact) and from the
clusterdns_kubernetes_dns_programming_duration_seconds histogram (deltas, interpolated within
the doubling buckets as Prometheus's histogram_quantile does). The plot: RSS, fds, the client's
p50/p99 per minute and the programming latency p50/p99 per minute, against time.
"""

import argparse
import math
import os
import re
import statistics
import sys
from collections import defaultdict


def read(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def pct(vals, p):
    if not vals:
        return float("nan")
    vals = sorted(vals)
    return vals[max(0, min(len(vals) - 1, math.ceil(len(vals) * p) - 1))]


def slope_per_hour(points):
    """Least-squares slope of (t seconds, y) in y units per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    num = sum((t - mt) * (y - my) for t, y in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return num / den * 3600 if den else float("nan")


def hist_quantile(buckets, q):
    """buckets: sorted [(le, cumulative count)] deltas; Prometheus's linear interpolation."""
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return buckets[-1][0]


def programming_histograms(path):
    """{scrape time: {le: cumulative count}} summed over service kinds (a second scraped twice
    keeps its last scrape)."""
    series = defaultdict(dict)
    pat = re.compile(r'^(\d+) clusterdns_kubernetes_dns_programming_duration_seconds_bucket\{(.*)\} (\S+)')
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            series[int(m.group(1))][m.group(2)] = float(m.group(3))
    out = {}
    for t, values in series.items():
        h = defaultdict(float)
        for labels, v in values.items():
            h[float(re.search(r'le="([^"]+)"', labels).group(1))] += v
        out[t] = h
    return out


def delta_quantiles(hists, t_from, t_to, qs):
    times = sorted(hists)
    a = [t for t in times if t <= t_from]
    b = [t for t in times if t <= t_to]
    if not b:
        return [float("nan")] * len(qs), 0
    ha = hists[a[-1]] if a else {}
    hb = hists[b[-1]]
    buckets = sorted((le, hb[le] - ha.get(le, 0.0)) for le in hb)
    return [hist_quantile(buckets, q) for q in qs], int(buckets[-1][1]) if buckets else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--plot")
    args = p.parse_args()
    out = args.out
    params = dict(kv.split("=") for kv in open(os.path.join(out, "params.txt")).read().split())
    start = int(open(os.path.join(out, "start.txt")).read())

    samples = [(float(r[0]) - start, int(r[1]) / 1024.0, int(r[2]), int(r[3]), int(r[4])) for r in read(os.path.join(out, "samples.txt")) if len(r) == 5 and float(r[0]) >= start]
    end = samples[-1][0] if samples else 0
    rss_fit = [(t, rss) for t, rss, *_ in samples if t >= 300]
    slope = slope_per_hour(rss_fit)
    rss = [s[1] for s in samples]
    fds = [s[2] for s in samples]
    thr = [s[4] for s in samples]

    churn = read(os.path.join(out, "churn.log"))
    churn_t = [(float(r[0]) - start, None if r[1] == "timeout" else float(r[1])) for r in churn]
    churn_out = open(os.path.join(out, "churn.out")).read().strip() if os.path.exists(os.path.join(out, "churn.out")) else ""
    server_changes = open(os.path.join(out, "server-changes.txt")).read().strip() if os.path.exists(os.path.join(out, "server-changes.txt")) else ""
    writes = len(churn_t)
    slices = int(params["slices"])
    churn_secs = (churn_t[-1][0] - churn_t[0][0]) if writes > 1 else float("nan")
    timeouts = sum(1 for _, v in churn_t if v is None)

    duration = end
    first10 = (0, min(600, duration / 2))
    last10 = (max(duration - 600, duration / 2), duration)

    def probe_q(lo, hi):
        v = [x for t, x in churn_t if lo <= t < hi and x is not None]
        return pct(v, 0.5), pct(v, 0.99), max(v) if v else float("nan"), len(v)

    pf = probe_q(*first10)
    pl = probe_q(*last10)
    hists = programming_histograms(os.path.join(out, "metrics.txt"))
    (hf50, hf99), nf = delta_quantiles(hists, start + first10[0], start + first10[1], [0.5, 0.99])
    (hl50, hl99), nl = delta_quantiles(hists, start + last10[0], start + last10[1] + 60, [0.5, 0.99])

    segs = read(os.path.join(out, "segments.txt"))
    q_sent = sum(int(r[2]) for r in segs if len(r) >= 5)
    q_done = sum(int(r[3]) for r in segs if len(r) >= 5)
    q_lost = sum(int(r[4]) for r in segs if len(r) >= 5)
    seg_lat = [(int(r[0]) - start, float(r[5]) * 1000) for r in segs if len(r) >= 6]
    client_summary = open(os.path.join(out, "client.out")).read().split()
    iv = read(os.path.join(out, "client.log.intervals"))
    iv_pts = [(float(r[0]) - start, float(r[4]), float(r[5])) for r in iv if len(r) >= 6 and r[4] != "nan"]

    # Programming latency per minute (probe).
    per_min = defaultdict(list)
    for t, v in churn_t:
        if v is not None:
            per_min[int(t // 60)].append(v)
    prog_pts = [(m * 60 + 30, pct(v, 0.5), pct(v, 0.99)) for m, v in sorted(per_min.items())]

    print(f"Run: {duration / 60:.1f} minutes; {params}")
    print()
    print("| figure | value | bar |")
    print("|---|---:|---|")
    print(f"| EndpointSlice changes (writer: {writes} rewrites × {slices} slices over {churn_secs:.0f} s) | "
          f"**{writes * slices / churn_secs:.0f} /s** ({churn_out.split('late_ticks=')[-1].split()[0] if 'late_ticks=' in churn_out else '?'} late ticks); server: {server_changes} | 1,000 /s |")
    print(f"| query load (dnsperf -Q {params['qps']}, {len(segs)} segments): sent / answered / lost | {q_sent:,} / {q_done:,} / **{q_lost}** | 0 lost |")
    if len(client_summary) >= 6:
        print(f"| client (127.0.0.2): sent / answered / lost, p50 / p99 ms | {int(client_summary[0]):,} / {int(client_summary[1]):,} / **{client_summary[2]}**, {client_summary[3]} / {client_summary[4]} | 0 lost |")
    print(f"| RSS first / min / max / last (MiB) | {rss[0]:.1f} / {min(rss):.1f} / {max(rss):.1f} / {rss[-1]:.1f} | |")
    print(f"| **RSS slope after 5 min (least squares, {len(rss_fit)} samples)** | **{slope:+.2f} MiB/h** | ≤ 1 MiB/h |")
    print(f"| file descriptors first / min / max / last | {fds[0]} / {min(fds)} / {max(fds)} / {fds[-1]} | flat |")
    print(f"| threads first / min / max / last | {thr[0]} / {min(thr)} / {max(thr)} / {thr[-1]} | |")
    print(f"| programming latency, probe (write → new address answered), first 10 min: p50 / p99 / max ms ({pf[3]} writes) | {pf[0]:.1f} / **{pf[1]:.1f}** / {pf[2]:.1f} | |")
    print(f"| programming latency, probe, last 10 min: p50 / p99 / max ms ({pl[3]} writes) | {pl[0]:.1f} / **{pl[1]:.1f}** / {pl[2]:.1f} | p99 within 20% of the first |")
    print(f"| — last p99 / first p99 | **{pl[1] / pf[1]:.2f}** | ≤ 1.20 |")
    print(f"| programming latency, histogram deltas, first 10 min: p50 / p99 ms ({nf} observations) | {hf50 * 1000:.1f} / {hf99 * 1000:.1f} | |")
    print(f"| programming latency, histogram deltas, last 10 min: p50 / p99 ms ({nl} observations) | {hl50 * 1000:.1f} / {hl99 * 1000:.1f} | |")
    print(f"| probe writes not seen within the probe timeout | {timeouts} | |")
    if seg_lat:
        print(f"| dnsperf average latency per minute: min / max ms | {min(v for _, v in seg_lat):.3f} / {max(v for _, v in seg_lat):.3f} | |")
    if iv_pts:
        print(f"| client p99 per minute: min / median / max ms | {min(v[2] for v in iv_pts):.2f} / {statistics.median(v[2] for v in iv_pts):.2f} / {max(v[2] for v in iv_pts):.2f} | |")

    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("(no matplotlib: no plot)", file=sys.stderr)
            return
        fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
        tm = [s[0] / 60 for s in samples]
        ax1.plot(tm, rss, lw=0.8, label="RSS (MiB)")
        if rss_fit:
            t0 = rss_fit[0][0]
            my = sum(y for _, y in rss_fit) / len(rss_fit)
            mt = sum(t for t, _ in rss_fit) / len(rss_fit)
            ax1.plot([t0 / 60, end / 60], [my + slope / 3600 * (t0 - mt), my + slope / 3600 * (end - mt)], "r--", lw=1,
                     label=f"least squares after 5 min: {slope:+.2f} MiB/h")
        ax1.set_ylabel("RSS (MiB)")
        ax1b = ax1.twinx()
        ax1b.plot(tm, fds, color="grey", lw=0.8, label="open fds")
        ax1b.set_ylabel("file descriptors")
        ax1b.set_ylim(0, max(fds) * 2 + 1)
        ax1.legend(loc="lower right", fontsize=8)
        ax1.set_title(f"clusterdns soak: {writes * slices / churn_secs:.0f} EndpointSlice changes/s, {params['qps']} q/s "
                      f"({duration / 60:.0f} min)", fontsize=10)
        if iv_pts:
            ax2.plot([v[0] / 60 for v in iv_pts], [v[1] for v in iv_pts], label="client p50", marker=".")
            ax2.plot([v[0] / 60 for v in iv_pts], [v[2] for v in iv_pts], label="client p99", marker=".")
        if seg_lat:
            ax2.plot([v[0] / 60 for v in seg_lat], [v[1] for v in seg_lat], label="dnsperf mean", marker=".")
        ax2.set_ylabel("query latency (ms)")
        ax2.legend(loc="upper right", fontsize=8)
        ax3.plot([v[0] / 60 for v in prog_pts], [v[1] for v in prog_pts], label="probe p50")
        ax3.plot([v[0] / 60 for v in prog_pts], [v[2] for v in prog_pts], label="probe p99")
        ax3.set_ylabel("programming latency (ms)")
        ax3.set_xlabel("minutes")
        ax3.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"\nPlot: {args.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
