"""dnspython-probe: one raw UDP query without EDNS to the cluster DNS, the reply parsed with
dns.message.from_wire, which is strict: bytes after the last record the header counts raise
TrailingJunk. Run by tests/e2e/clients.sh inside its network namespace.

    python3 dnspython-probe.py SERVER NAME TYPE

Prints "len=L tc=0|1 answer=N additional=M ok" and exits 0, or the exception and exits 1.
"""
import socket
import sys

import dns.flags
import dns.message
import dns.rdatatype

server, name, rtype = sys.argv[1], sys.argv[2], sys.argv[3]
query = dns.message.make_query(name, dns.rdatatype.from_text(rtype), use_edns=False)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(5)
    s.sendto(query.to_wire(), (server, 53))
    while True:
        wire, _ = s.recvfrom(65535)
        if wire[:2] == query.to_wire()[:2]:
            break
tc = (wire[2] >> 1) & 1
try:
    reply = dns.message.from_wire(wire)
except dns.message.TrailingJunk:
    print(f"len={len(wire)} tc={tc} TrailingJunk")
    sys.exit(1)
except Exception as e:  # any other parse failure is a failure too
    print(f"len={len(wire)} tc={tc} {type(e).__name__}: {e}")
    sys.exit(1)
answer = sum(len(r) for r in reply.answer)
additional = sum(len(r) for r in reply.additional)
print(f"len={len(wire)} tc={int(bool(reply.flags & dns.flags.TC))} answer={answer} additional={additional} ok")
