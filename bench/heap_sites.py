#!/usr/bin/env python3
"""Per-object bytes by allocation site: (sites of A − sites of B) / N, from two
`heaptrack_print -m 0 --print-leaks 1` outputs (`bench/heap.sh` writes them as leaks-full.txt).

Usage: heap_sites.py A B N [DEPTH [MIN]]: a site is its DEPTH (default 2) innermost frames in
clusterdns's own source; sites under MIN (default 2) bytes per object are left out.
Columns: bytes per object as glibc blocks, as requested, the site. Chunk = glibc's block for the average request
(8-byte header, 16-byte granularity, 32-byte minimum); sites whose live bytes average under 2
per call are temporaries (their live blocks are not counted)."""
import re, sys, collections
UNITS = {'B': 1, 'K': 1000, 'M': 1000**2, 'G': 1000**3}
def size(s):
    m = re.match(r'([\d.]+)([BKMG])', s); return float(m.group(1)) * UNITS[m.group(2)]
def chunk(n): return max(32, (int(round(n)) + 8 + 15) & ~15)
def load(path, depth):
    agg = collections.defaultdict(lambda: [0.0, 0.0])
    cur = None
    entries = []
    for line in open(path):
        m = re.match(r'^(\S+) leaked over (\d+) calls from', line)
        if m:
            cur = [size(m.group(1)), int(m.group(2)), []]; entries.append(cur); continue
        if cur is None: continue
        m = re.match(r'^\s+at (\S+):(\d+)', line)
        if m and cur[2]:
            cur[2][-1][1] = f'{m.group(1)}:{m.group(2)}'; continue
        m = re.match(r'^  (\S.*)$', line)
        if m: cur[2].append([m.group(1).strip(), ''])
    for b, n, frames in entries:
        src = [f for f in frames if f[1].startswith('src/')]
        key = ' < '.join(f'{f[1]}' for f in src[:depth]) or '(outside clusterdns)'
        avg = b / n if n else 0
        c = n * chunk(avg) if avg >= 2 else b
        agg[key][0] += b; agg[key][1] += c
    return agg
a, b, n = sys.argv[1], sys.argv[2], float(sys.argv[3])
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 2
A, B = load(a, depth), load(b, depth)
rows = []
for k in set(A) | set(B):
    dr = (A[k][0] - B[k][0]) / n; dc = (A[k][1] - B[k][1]) / n
    rows.append((dc, dr, k))
rows.sort(reverse=True)
print(f'total: {sum(r[0] for r in rows):.1f} B chunks, {sum(r[1] for r in rows):.1f} B requested per object')
for dc, dr, k in rows:
    if abs(dc) >= float(sys.argv[5] if len(sys.argv) > 5 else 2):
        print(f'{dc:8.1f} {dr:8.1f}  {k}')
