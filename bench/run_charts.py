#!/usr/bin/env python3
"""The charts of a bench/run: hand-written SVG, the standard library only.

  run_charts.py DATA OUTDIR [--title TEXT]

DATA: bench/run's run-data.tsv, one line per server, scale and transport:
"services<TAB>server<TAB>udp|tcp<TAB>queries per CPU-s<TAB>p50 ms<TAB>p99 ms".
Writes OUTDIR/run-queries-per-cpu.svg (queries per server CPU-second, grouped by scale, one
panel per transport) and OUTDIR/run-latency.svg (dnsperf's per-query p50 and p99, one panel
each, per transport).
"""

import argparse
import math
import os
from xml.sax.saxutils import escape

ORDER = ["clusterdns", "Knot", "NSD", "limit"]
COLOURS = {"clusterdns": "#1f77b4", "Knot": "#ff7f0e", "NSD": "#2ca02c", "limit": "#7f7f7f"}


def kind(server):
    return next((k for k in ORDER if server.startswith(k)), server)


def scale_name(services):
    n = int(services)
    return f"{n // 1000}k Services" if n % 1000 == 0 else f"{n} Services"


def nice_max(v):
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v * 1.08:
            return m * e
    return 10 * e


def fmt(v, unit):
    if unit == "q/CPU-s":
        return f"{v / 1000:.0f}k"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 10 else f"{v:.1f}"


def panel(x, y, w, h, title, groups, series, values, unit):
    """One grouped bar chart; values[(group, series)] -> number or None."""
    out = []
    left, bottom, top = 62, 34, 26
    pw, ph = w - left - 10, h - bottom - top
    vmax = nice_max(max([v for v in values.values() if v is not None] or [1]))
    out.append(f'<text x="{x + w / 2:.1f}" y="{y + 16}" text-anchor="middle" font-weight="bold">{escape(title)}</text>')
    ox, oy = x + left, y + top + ph
    for i in range(6):
        v = vmax * i / 5
        ty = oy - ph * i / 5
        out.append(f'<line x1="{ox}" y1="{ty:.1f}" x2="{ox + pw}" y2="{ty:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ox - 4}" y="{ty + 4:.1f}" text-anchor="end" font-size="11">{fmt(v, unit) if v else "0"}</text>')
    out.append(f'<text x="{x + 12}" y="{y + top + ph / 2:.1f}" font-size="11" text-anchor="middle" transform="rotate(-90 {x + 12} {y + top + ph / 2:.1f})">{escape(unit)}</text>')
    gw = pw / max(1, len(groups))
    bw = gw * 0.8 / max(1, len(series))
    for gi, g in enumerate(groups):
        gx = ox + gi * gw + gw * 0.1
        for si, s in enumerate(series):
            v = values.get((g, s))
            bx = gx + si * bw
            if v is None:
                out.append(f'<text x="{bx + bw / 2:.1f}" y="{oy - 4}" text-anchor="middle" font-size="10" fill="#999">n/a</text>')
                continue
            bh = ph * v / vmax
            out.append(f'<rect x="{bx + 1:.1f}" y="{oy - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" fill="{COLOURS.get(kind(s), "#9467bd")}"><title>{escape(s)}, {escape(g)}: {v:g} {escape(unit)}</title></rect>')
            out.append(f'<text x="{bx + bw / 2:.1f}" y="{oy - bh - 3:.1f}" text-anchor="middle" font-size="10">{fmt(v, unit)}</text>')
        out.append(f'<text x="{gx + gw * 0.4:.1f}" y="{oy + 16}" text-anchor="middle" font-size="12">{escape(g)}</text>')
    out.append(f'<line x1="{ox}" y1="{oy}" x2="{ox + pw}" y2="{oy}" stroke="#333"/>')
    return out


def svg(path, width, height, title, series, panels):
    body = [f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>']
    for i, s in enumerate(series):  # legend
        lx = 20 + i * 190
        s = "limit (bench/limit.c, UDP only)" if s == "limit" else s
        body.append(f'<rect x="{lx}" y="{height - 18}" width="12" height="12" fill="{COLOURS.get(kind(s), "#9467bd")}"/>')
        body.append(f'<text x="{lx + 16}" y="{height - 8}" font-size="12">{escape(s)}</text>')
    for p in panels:
        body.extend(p)
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n')
        f.write(f'<rect width="{width}" height="{height}" fill="white"/>\n')
        f.write("\n".join(body))
        f.write("\n</svg>\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("outdir")
    p.add_argument("--title", default="bench/run")
    args = p.parse_args()
    rows = []
    with open(args.data) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 6:
                rows.append((parts[0], parts[1], parts[2], float(parts[3]), float(parts[4]), float(parts[5])))
    servers = sorted({r[1] for r in rows}, key=lambda s: (ORDER.index(kind(s)) if kind(s) in ORDER else 99, s))
    scales = sorted({r[0] for r in rows}, key=int)
    groups = [scale_name(s) for s in scales]
    protos = [t for t in ("udp", "tcp") if any(r[2] == t for r in rows)]

    def values(proto, col):
        return {(scale_name(r[0]), r[1]): r[col] for r in rows if r[2] == proto}

    w = 460
    qpc = [panel(i * w, 24, w, 330, f"{t.upper()}: queries per server CPU-second", groups, servers, values(t, 3), "q/CPU-s") for i, t in enumerate(protos)]
    svg(os.path.join(args.outdir, "run-queries-per-cpu.svg"), w * len(protos), 390, args.title, servers, qpc)
    lat = []
    for i, t in enumerate(protos):
        for j, (col, name) in enumerate(((4, "p50"), (5, "p99"))):
            lat.append(panel(j * w, 24 + i * 340, w, 330, f"{t.upper()}: {name} latency (dnsperf, per query)", groups, servers, values(t, col), "ms"))
    svg(os.path.join(args.outdir, "run-latency.svg"), 2 * w, 24 + 340 * len(protos) + 36, args.title, servers, lat)


if __name__ == "__main__":
    main()
