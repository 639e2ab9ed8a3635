#!/usr/bin/env python3
"""Small DNS helpers for the bench scripts (standard library only, loopback only).

  dnstool.py upstream --port P [--delay-ms D] [--answer-suffix hot.test] [--seconds S] --stats FILE
      A slow upstream: answers every query after D ms, an A record (TTL 3600) for names under
      the answer suffix, NXDOMAIN (with an SOA, negative TTL 60) for the rest. Writes
      "received answered max_per_second max_in_flight" and one "second count" line per second to FILE.
  dnstool.py client --server ADDR:PORT [--bind IP] --rate R --seconds S --names FILE
                    [--timeout 2] [--rd] [--log FILE] [--interval N]
      A well-behaved client: one query at a time at a fixed rate from one socket (names from
      FILE, "name [type]" a line, in turn), each sent once and waited for up to --timeout.
      Prints "sent answered lost p50_ms p99_ms max_ms"; --log writes "send_epoch latency_ms
      rcode" a query (latency "lost" when unanswered); --interval N prints a line per N
      seconds (epoch sent answered lost p50 p99) on stderr and to FILE.intervals.
  dnstool.py query --server ADDR:PORT NAME [--type A] [--timeout 1]
      One query: prints "RCODE answers latency_ms", or "TIMEOUT".
  dnstool.py window LOG [--from EPOCH] [--to EPOCH] [--first]
      A client log's queries sent in [from, to): "sent answered lost p50_ms p99_ms max_ms"; with
      --first, "offset_s latency_ms" of the first query sent at or after --from.
  dnstool.py verify --server ADDR:PORT --names FILE [--count N] [--rate R] [--seconds S]
                    [--until FILE]
      Answers correct throughout a change that must not alter them (a relist): asks the first N
      names of FILE twice for the expected answers (rcode and answer section; names whose two
      answers differ are left out), then asks them in turn, one at a time at R a second, for S
      seconds or until FILE exists. Prints "names sent correct wrong lost"; the first wrong
      answers go to stderr.
  dnstool.py churn --dir D --slices N --interval S --seconds T --server ADDR:PORT --log FILE
      Rewrites D/churn.yaml (by rename) every S seconds: N headless Services' EndpointSlices,
      every slice a new address, stamped with endpoints.kubernetes.io/last-change-trigger-time
      (the write time, in ms). After each write it asks the server for churn-0's A record
      every 2 ms until the new address is served: the programming latency, logged as
      "write_epoch latency_ms" (a line per write). Prints the writes, the changes and the
      achieved changes per second.
"""

import argparse
import os
import random
import select
import socket
import struct
import sys
import time
from collections import deque

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33}


def addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query_packet(qid, name, qtype=1, rd=True):
    flags = 0x0100 if rd else 0
    return struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 0) + encode_name(name) + struct.pack(">HH", qtype, 1)


def question_end(pkt):
    i = 12
    while i < len(pkt):
        n = pkt[i]
        if n == 0:
            return i + 1
        if n & 0xC0:
            return i + 2
        i += n + 1
    return None


def qname_text(pkt, end):
    labels, i = [], 12
    while i < end - 1:
        n = pkt[i]
        labels.append(pkt[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    return ".".join(labels).lower()


def read_answers_a(pkt):
    """The A addresses of the answer section (enough for our own probes)."""
    an = struct.unpack(">H", pkt[6:8])[0]
    i = question_end(pkt)
    if i is None:
        return []
    i += 4
    out = []
    for _ in range(an):
        # owner name
        while i < len(pkt):
            n = pkt[i]
            if n == 0:
                i += 1
                break
            if n & 0xC0:
                i += 2
                break
            i += n + 1
        if i + 10 > len(pkt):
            break
        rtype, _, _, rdlen = struct.unpack(">HHIH", pkt[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(pkt[i:i + 4]))
        i += rdlen
    return out


# --- upstream ------------------------------------------------------------------------------

def upstream(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    sock.bind((args.listen, args.port))
    sock.setblocking(False)
    delay = args.delay_ms / 1000.0
    suffix = "." + args.answer_suffix.strip(".").lower()
    zone = args.nx_zone.strip(".")
    soa = (encode_name(zone) + struct.pack(">HHIH", 6, 1, 60, 0))
    soa_rdata = encode_name("ns." + zone) + encode_name("hostmaster." + zone) + struct.pack(">IIIII", 1, 3600, 600, 86400, 60)
    soa = soa[:-2] + struct.pack(">H", len(soa_rdata)) + soa_rdata
    pending = deque()  # (due, reply, peer)
    received = answered = max_pending = 0
    per_second = {}
    deadline = time.monotonic() + args.seconds
    stats_next = time.time()

    def reply_for(pkt):
        end = question_end(pkt)
        if end is None or len(pkt) < end + 4:
            return None
        name = qname_text(pkt, end)
        qtype = struct.unpack(">H", pkt[end:end + 2])[0]
        qid = pkt[:2]
        rd = pkt[2] & 0x01
        question = pkt[12:end + 4]
        if ("." + name).endswith(suffix) and qtype == 1:
            h = sum(name.encode()) % 250 + 1
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 3600, 4) + bytes([198, 51, 100, h])
            return qid + struct.pack(">BBHHHH", 0x84 | rd, 0x80, 1, 1, 0, 0) + question + ans
        rcode = 3 if not ("." + name).endswith(suffix) else 0
        return qid + struct.pack(">BBHHHH", 0x84 | rd, 0x80 | rcode, 1, 0, 1, 0) + question + soa

    while time.monotonic() < deadline:
        now = time.monotonic()
        timeout = 0.05
        if pending:
            timeout = max(0.0, min(timeout, pending[0][0] - now))
        r, _, _ = select.select([sock], [], [], timeout)
        if r:
            for _ in range(256):
                try:
                    pkt, peer = sock.recvfrom(4096)
                except BlockingIOError:
                    break
                received += 1
                sec = int(time.time())
                per_second[sec] = per_second.get(sec, 0) + 1
                rep = reply_for(pkt)
                if rep is not None:
                    pending.append((time.monotonic() + delay, rep, peer))
                    max_pending = max(max_pending, len(pending))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, rep, peer = pending.popleft()
            try:
                sock.sendto(rep, peer)
                answered += 1
            except (BlockingIOError, OSError):
                pass
        if args.stats and time.time() >= stats_next:
            stats_next = time.time() + 1
            write_stats(args.stats, received, answered, per_second, max_pending)
    write_stats(args.stats, received, answered, per_second, max_pending)


def write_stats(path, received, answered, per_second, max_pending):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{received} {answered} {max(per_second.values(), default=0)} {max_pending}\n")
        for sec in sorted(per_second):
            f.write(f"{sec} {per_second[sec]}\n")
    os.replace(tmp, path)


# --- client --------------------------------------------------------------------------------

def load_names(path):
    names = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts:
                names.append((parts[0], TYPES.get(parts[1].upper(), 1) if len(parts) > 1 else 1))
    return names


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = max(0, min(len(sorted_vals) - 1, int(len(sorted_vals) * p) - (1 if p < 1 else 0)))
    return sorted_vals[i]


def client(args):
    names = load_names(args.names)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.setblocking(False)
    server = addr(args.server)
    period = 1.0 / args.rate
    total = int(args.rate * args.seconds)
    log = open(args.log, "w") if args.log else None
    ivf = open((args.log or "/dev/null") + ".intervals", "w") if args.interval else None
    outstanding = {}  # qid -> (send_mono, send_epoch, index)
    latencies = []
    iv_lat, iv_sent, iv_lost = [], 0, 0
    iv_start = time.time()
    sent = lost = 0
    start = time.monotonic()
    next_send = start
    qid = random.randrange(65536)
    records = []

    def flush_interval(now_epoch):
        nonlocal iv_lat, iv_sent, iv_lost, iv_start
        iv_lat.sort()
        line = f"{iv_start:.0f} {iv_sent} {len(iv_lat)} {iv_lost} {pct(iv_lat, 0.5):.3f} {pct(iv_lat, 0.99):.3f}"
        print(line, file=sys.stderr, flush=True)
        ivf.write(line + "\n")
        ivf.flush()
        iv_lat, iv_sent, iv_lost, iv_start = [], 0, 0, now_epoch

    while sent < total or outstanding:
        now = time.monotonic()
        if sent < total and now >= next_send:
            name, qtype = names[sent % len(names)]
            qid = (qid + 1) & 0xFFFF
            while qid in outstanding:
                qid = (qid + 1) & 0xFFFF
            try:
                sock.sendto(query_packet(qid, name, qtype, args.rd), server)
            except BlockingIOError:
                pass
            outstanding[qid] = (time.monotonic(), time.time(), sent)
            sent += 1
            iv_sent += 1
            next_send += period
            if next_send < now - 1.0:  # fell behind by a second: do not burst
                next_send = now
        # expire
        for q, (t0, e0, _) in list(outstanding.items()):
            if now - t0 > args.timeout:
                del outstanding[q]
                lost += 1
                iv_lost += 1
                if log:
                    log.write(f"{e0:.6f} lost -\n")
        wait = max(0.0, min(next_send - time.monotonic(), 0.01)) if sent < total else 0.01
        r, _, _ = select.select([sock], [], [], wait)
        if r:
            while True:
                try:
                    pkt = sock.recv(4096)
                except BlockingIOError:
                    break
                t1 = time.monotonic()
                if len(pkt) < 12:
                    continue
                q = struct.unpack(">H", pkt[:2])[0]
                entry = outstanding.pop(q, None)
                if entry is None:
                    continue
                ms = (t1 - entry[0]) * 1000.0
                latencies.append(ms)
                iv_lat.append(ms)
                if log:
                    log.write(f"{entry[1]:.6f} {ms:.3f} {RCODES.get(pkt[3] & 0xF, pkt[3] & 0xF)}\n")
        if ivf and time.time() - iv_start >= args.interval:
            flush_interval(time.time())
    if ivf and (iv_sent or iv_lat):
        flush_interval(time.time())
    if log:
        log.close()
    latencies.sort()
    print(f"{sent} {len(latencies)} {lost} {pct(latencies, 0.5):.3f} {pct(latencies, 0.99):.3f} "
          f"{(latencies[-1] if latencies else float('nan')):.3f}")


def query(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if args.bind:
        sock.bind((args.bind, 0))
    sock.settimeout(args.timeout)
    qid = random.randrange(65536)
    t0 = time.monotonic()
    sock.sendto(query_packet(qid, args.name, TYPES.get(args.type.upper(), 1)), addr(args.server))
    try:
        while True:
            pkt = sock.recv(4096)
            if pkt[:2] == struct.pack(">H", qid):
                break
    except socket.timeout:
        print("TIMEOUT")
        return 1
    ms = (time.monotonic() - t0) * 1000.0
    an = struct.unpack(">H", pkt[6:8])[0]
    print(f"{RCODES.get(pkt[3] & 0xF, pkt[3] & 0xF)} {an} {ms:.3f}")
    return 0


# --- verify --------------------------------------------------------------------------------

def answer_section(pkt):
    """(rcode, the answer section's bytes): what must not change while the data does not."""
    an = struct.unpack(">H", pkt[6:8])[0]
    start = question_end(pkt)
    if start is None:
        return (pkt[3] & 0xF, b"")
    i = start + 4
    for _ in range(an):
        while i < len(pkt):
            n = pkt[i]
            if n == 0:
                i += 1
                break
            if n & 0xC0:
                i += 2
                break
            i += n + 1
        if i + 10 > len(pkt):
            break
        i += 10 + struct.unpack(">H", pkt[i + 8:i + 10])[0]
    return (pkt[3] & 0xF, pkt[start + 4:i])


def ask(sock, server, qid, name, qtype, timeout):
    """One query, waited for up to timeout: the reply's (rcode, answer section), or None."""
    sock.sendto(query_packet(qid, name, qtype, False), server)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return None
        pkt = sock.recv(65535)
        if len(pkt) >= 12 and pkt[:2] == struct.pack(">H", qid):
            return answer_section(pkt)


def verify(args):
    names = load_names(args.names)[:args.count]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server = addr(args.server)
    qid = random.randrange(65536)
    expected = []
    for name, qtype in names:
        seen = []
        for _ in range(2):
            qid = (qid + 1) & 0xFFFF
            seen.append(ask(sock, server, qid, name, qtype, 1.0))
        if seen[0] is not None and seen[0] == seen[1]:
            expected.append((name, qtype, seen[0]))
    period = 1.0 / args.rate
    start = time.monotonic()
    sent = correct = wrong = lost = 0
    while time.monotonic() - start < args.seconds:
        if args.until and os.path.exists(args.until):
            break
        name, qtype, want = expected[sent % len(expected)]
        qid = (qid + 1) & 0xFFFF
        got = ask(sock, server, qid, name, qtype, args.timeout)
        sent += 1
        if got is None:
            lost += 1
        elif got == want:
            correct += 1
        else:
            wrong += 1
            if wrong <= 5:
                print(f"verify: {name} {qtype}: rcode {got[0]} (expected {want[0]}), "
                      f"answer {'differs' if got[1] != want[1] else 'same'}", file=sys.stderr)
        pause = start + sent * period - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(f"{len(expected)} {sent} {correct} {wrong} {lost}")


# --- churn ---------------------------------------------------------------------------------

def churn_manifest(n, slices, stamp):
    out = []
    for i in range(slices):
        out.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: churn-{i}, namespace: default}}\n"
            f"spec: {{clusterIP: None, ports: [{{name: http, port: 8080}}]}}\n---\n")
        out.append(
            f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: churn-{i}-x\n"
            f"  namespace: default\n  labels: {{kubernetes.io/service-name: churn-{i}}}\n"
            f"  annotations: {{endpoints.kubernetes.io/last-change-trigger-time: \"{stamp}\"}}\n"
            f"addressType: IPv4\nports: [{{name: http, port: 8080, protocol: TCP}}]\n"
            f"endpoints:\n- addresses: [\"10.{200 + i // 250}.{i % 250}.1\", \"10.{100 + i // 250}.{i % 250}.{n % 250 + 2}\"]\n"
            f"  conditions: {{ready: true}}\n---\n")
    return "".join(out)


def rfc3339_ms(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def churn(args):
    path = os.path.join(args.dir, "churn.yaml")
    tmp = os.path.join(args.dir, ".churn.tmp")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    server = addr(args.server)
    log = open(args.log, "a") if args.log else None
    start = time.monotonic()
    deadline = start + args.seconds
    n = args.first
    writes = slow = 0
    next_tick = start
    qid = 0
    while time.monotonic() < deadline and (args.writes == 0 or writes < args.writes):
        n += 1
        epoch = time.time()
        with open(tmp, "w") as f:
            f.write(churn_manifest(n, args.slices, rfc3339_ms(epoch)))
        os.replace(tmp, path)
        t0 = time.monotonic()
        writes += 1
        want = f"10.100.0.{n % 250 + 2}"
        seen = None
        while time.monotonic() - t0 < args.probe_timeout:
            qid = (qid + 1) & 0xFFFF
            sock.sendto(query_packet(qid, "churn-0.default.svc.cluster.local"), server)
            r, _, _ = select.select([sock], [], [], 0.002)
            got = False
            while r:
                try:
                    pkt = sock.recv(4096)
                except BlockingIOError:
                    break
                if want in read_answers_a(pkt):
                    got = True
            if got:
                seen = (time.monotonic() - t0) * 1000.0
                break
            time.sleep(0.001)
        if log:
            log.write(f"{epoch:.3f} {seen:.3f}\n" if seen is not None else f"{epoch:.3f} timeout\n")
            log.flush()
        next_tick += args.interval
        now = time.monotonic()
        if next_tick < now:
            slow += 1
            next_tick = now
        else:
            time.sleep(next_tick - now)
    elapsed = time.monotonic() - start
    print(f"writes={writes} changes={writes * args.slices} seconds={elapsed:.1f} "
          f"changes_per_second={writes * args.slices / elapsed:.1f} late_ticks={slow} last={n}")


def window(args):
    """Summary of a client log's queries sent in [from, to): sent answered lost p50 p99 max,
    and with --first the offset and latency of the first query sent at or after --from."""
    vals, sent = [], 0
    first = None
    with open(args.log) as f:
        for line in f:
            t, lat = line.split()[:2]
            t = float(t)
            if t < args.start or t >= args.end:
                continue
            sent += 1
            if first is None:
                first = (t - args.start, lat)
            if lat != "lost":
                vals.append(float(lat))
    if args.first:
        print(f"{first[0]:.3f} {first[1]}" if first else "- -")
        return 0
    vals.sort()
    print(f"{sent} {len(vals)} {sent - len(vals)} {pct(vals, 0.5):.3f} {pct(vals, 0.99):.3f} "
          f"{(vals[-1] if vals else float('nan')):.3f}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("upstream")
    u.add_argument("--listen", default="127.0.0.1")
    u.add_argument("--port", type=int, required=True)
    u.add_argument("--delay-ms", type=float, default=5.0)
    u.add_argument("--answer-suffix", default="hot.test")
    u.add_argument("--nx-zone", default="example.test")
    u.add_argument("--seconds", type=float, default=600)
    u.add_argument("--stats")
    c = sub.add_parser("client")
    c.add_argument("--server", required=True)
    c.add_argument("--bind")
    c.add_argument("--rate", type=float, required=True)
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--names", required=True)
    c.add_argument("--timeout", type=float, default=2.0)
    c.add_argument("--rd", action="store_true")
    c.add_argument("--log")
    c.add_argument("--interval", type=float, default=0)
    q = sub.add_parser("query")
    q.add_argument("--server", required=True)
    q.add_argument("--bind")
    q.add_argument("name")
    q.add_argument("--type", default="A")
    q.add_argument("--timeout", type=float, default=1.0)
    h = sub.add_parser("churn")
    h.add_argument("--dir", required=True)
    h.add_argument("--slices", type=int, default=100)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--seconds", type=float, required=True)
    h.add_argument("--writes", type=int, default=0)
    h.add_argument("--first", type=int, default=0)
    h.add_argument("--server", required=True)
    h.add_argument("--probe-timeout", type=float, default=5.0)
    h.add_argument("--log")
    v = sub.add_parser("verify")
    v.add_argument("--server", required=True)
    v.add_argument("--names", required=True)
    v.add_argument("--count", type=int, default=1000)
    v.add_argument("--rate", type=float, default=500)
    v.add_argument("--seconds", type=float, default=60)
    v.add_argument("--until")
    v.add_argument("--timeout", type=float, default=1.0)
    w = sub.add_parser("window")
    w.add_argument("log")
    w.add_argument("--from", dest="start", type=float, default=0)
    w.add_argument("--to", dest="end", type=float, default=1e12)
    w.add_argument("--first", action="store_true")
    args = p.parse_args()
    return {"upstream": upstream, "client": client, "query": query, "churn": churn, "window": window,
            "verify": verify}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
