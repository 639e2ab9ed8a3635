#!/usr/bin/env python3
"""Seeds from real traffic for the fuzz corpora (run from the repository root):

    python3 fuzz/seed-traffic.py OUT [CLUSTERDNS_BINARY]

- OUT/queries: the query packets dig and kdig send for the names of
  examples/cluster/EXPECTED.md (every type the server answers, EDNS with DO, cookies, NSID,
  client subnet, padding, payload sizes, no EDNS, version 1, AD and CD), caught by a UDP
  listener on loopback that answers nothing;
- OUT/answers: clusterdns's answers to them over UDP and (some) TCP, serving the example
  cluster as EXPECTED.md runs it (needs the binary, default target/release/clusterdns);
- OUT/upstream: unbound's replies (two instances on loopback, local data: answers, NODATA
  with SOA, NXDOMAIN, REFUSED) to the four queries of the upstream_reply target, each
  behind the target's pick byte.

Then add them to the corpora and minimize (fuzz/README.md, "Corpus").
"""
import hashlib, os, shutil, socket, struct, subprocess, sys, tempfile, threading, time

out = sys.argv[1]
binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/clusterdns"
os.makedirs(out + "/queries", exist_ok=True); os.makedirs(out + "/answers", exist_ok=True)
import re
text = open("examples/cluster/EXPECTED.md").read()
names = sorted(set(re.findall(r"[A-Za-z0-9_.-]+\.cluster\.local|[0-9a-f.]+\.in-addr\.arpa|[0-9a-f.]+ip6\.arpa", text)))
names = [n for n in names if not n.startswith(".")]
names += ["cluster.local", "ns.dns.cluster.local", "example.com", "Web.Shop.SVC.cluster.local", "10-244-1-30.data.pod.cluster.local"]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
pkts = []
def rx():
    s.settimeout(3)
    while True:
        try: d, a = s.recvfrom(65535)
        except socket.timeout: return
        pkts.append(d)
t = threading.Thread(target=rx); t.start()
variants = [[], ["+dnssec"], ["+cookie"], ["+nsid"], ["+subnet=10.244.1.0/24"], ["+bufsize=512"], ["+noedns"], ["+bufsize=4096", "+cd"], ["+norec"], ["+edns=1"], ["+adflag"]]
types = ["A", "AAAA", "SRV", "PTR", "TXT", "SOA", "NS", "ANY", "CNAME", "MX", "AXFR", "IXFR=1", "CAA", "HTTPS"]
jobs = []
for i, n in enumerate(names):
    for j, ty in enumerate(types):
        if (i + j) % 3: continue
        v = variants[(i * 7 + j) % len(variants)]
        jobs.append(["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=1", "+notcp"] + v + [n, ty.split("=")[0]] if not ty.startswith("IXFR") else ["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=1", "+notcp", n, "IXFR=1"])
    jobs.append(["kdig", "@127.0.0.1", "-p", str(port), "+retry=0", "+time=1", "+notcp", "+cookie", "+padding", n, "A"])
    jobs.append(["kdig", "@127.0.0.1", "-p", str(port), "+retry=0", "+time=1", "+notcp", "+nsid", "+edns=0", n, "AAAA"])
procs = []
for j in jobs:
    procs.append(subprocess.Popen(j, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    if len(procs) >= 40:
        for p in procs: p.wait()
        procs = []
for p in procs: p.wait()
t.join()
print("captured", len(pkts))
# replay to clusterdns on 127.0.0.1:5399
srv = subprocess.Popen([binary, "--manifests", "examples/cluster", "--listen", "127.0.0.1:5399", "--no-forward", "--reverse-cidr", "10.96.0.0/12", "--reverse-cidr", "10.244.0.0/16", "--metrics-listen", "127.0.0.1:0"] , stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(2)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(1)
na = 0
for d in pkts:
    h = hashlib.sha1(d).hexdigest()[:16]
    open(f"{out}/queries/dig-{h}", "wb").write(d)
    try:
        c.sendto(d, ("127.0.0.1", 5399)); a, _ = c.recvfrom(65535)
        open(f"{out}/answers/ans-{hashlib.sha1(a).hexdigest()[:16]}", "wb").write(a); na += 1
    except socket.timeout: pass
# TCP answers for a few (bigger)
for d in pkts[::5]:
    try:
        k = socket.create_connection(("127.0.0.1", 5399), timeout=1)
        k.sendall(len(d).to_bytes(2, "big") + d); l = int.from_bytes(k.recv(2), "big"); a = b""
        while len(a) < l:
            x = k.recv(l - len(a))
            if not x: break
            a += x
        k.close(); open(f"{out}/answers/tcp-{hashlib.sha1(a).hexdigest()[:16]}", "wb").write(a); na += 1
    except Exception as e: pass
srv.terminate(); srv.wait()
print("answers", na)

# unbound on loopback: a.conf answers, b.conf gives NODATA, NXDOMAIN and REFUSED.
UNBOUND_A = r"""server:
  interface: 127.0.0.1
  port: 5398
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "/tmp/seed/ub"
  pidfile: "/tmp/seed/ub/a.pid"
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "example.com." static
  local-data: "example.com. 300 IN SOA ns1.example.com. host.example.com. 7 3600 600 86400 60"
  local-data: "example.com. 300 IN NS ns1.example.com."
  local-data: "example.com. 120 IN A 192.0.2.1"
  local-data: "example.com. 120 IN A 192.0.2.2"
  local-data: "example.com. 3600 IN TXT \"v=spf1 -all\""
  local-data: "example.com. 3600 IN TXT \"hello\" \"world\""
  local-data: "www.example.com. 60 IN AAAA 2001:db8::1"
  local-data: "www.example.com. 86400 IN AAAA 2001:db8::2"
  local-data: "_sip._udp.example.com. 600 IN SRV 10 60 5060 sip1.example.com."
  local-data: "_sip._udp.example.com. 600 IN SRV 20 40 5060 sip2.example.com."
  local-data: "sip1.example.com. 600 IN A 192.0.2.10"
"""
UNBOUND_B = r"""server:
  interface: 127.0.0.1
  port: 5397
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "/tmp/seed/ub"
  pidfile: "/tmp/seed/ub/b.pid"
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "example.com." static
  local-data: "example.com. 300 IN SOA ns1.example.com. host.example.com. 7 3600 600 86400 60"
  local-data: "example.com. 300 IN NS ns1.example.com."
  local-data: "sip1.example.com. 600 IN A 192.0.2.10"
  local-zone: "www.example.com." always_nxdomain
  local-zone: "_udp.example.com." always_refuse
"""
work = tempfile.mkdtemp()
os.makedirs(out + "/upstream", exist_ok=True)
servers = []
for i, conf in enumerate((UNBOUND_A, UNBOUND_B)):
    conf = conf.replace("/tmp/seed/ub", work)
    path = f"{work}/{i}.conf"
    open(path, "w").write(conf)
    servers.append(subprocess.Popen(["unbound", "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
time.sleep(3)
def name(n):
    b = b""
    for l in n.rstrip(".").split("."):
        b += bytes([len(l)]) + l.encode()
    return b + b"\0"
# upstream_queries in fuzz/src/lib.rs: (name, qtype, edns)
qs = [("example.com.", 1, (1232, False)), ("www.Example.com.", 28, None), ("example.com.", 16, (1232, True)), ("_sip._udp.example.com.", 33, (512, False))]
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(1)
n = 0
for port in (5398, 5397):
    for i, (nm, qt, edns) in enumerate(qs):
        p = struct.pack(">HHHHHH", 0x5eed, 0x0100, 1, 0, 0, 1 if edns else 0) + name(nm) + struct.pack(">HH", qt, 1)
        if edns:
            p += b"\0" + struct.pack(">HHBBHH", 41, edns[0], 0, 0, 0x8000 if edns[1] else 0, 0)
        c.sendto(p, ("127.0.0.1", port)); r, _ = c.recvfrom(65535)
        for extra in (0, 4, 8, 12):
            open(f"{out}/upstream/unbound-{port}-{i}-{extra}", "wb").write(bytes([i | extra]) + r); n += 1
print(n)
for s in servers:
    s.terminate()
    s.wait()
shutil.rmtree(work)
