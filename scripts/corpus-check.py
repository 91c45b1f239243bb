#!/usr/bin/env python3
"""Cross-check `allowscope flows` against the peer corpus in /work/shared/corpus.

For every capture of the corpus (zeek/, suricata-verify/, ndpi/, plus any capture on disk that
a MANIFEST.json does not list) this script:

1. runs `allowscope flows --format ndjson -q FILE` (and `--format json -q` for the file
   summary), recording the exit code and stderr. A non-zero exit, a signal, a Rust panic
   message, unparsable output or a file summary with an `error` is a FAILURE;
2. where the manifest asserts `expected.conn_states` (Zeek conn.log), compares per connection
   key: the number of connections, the orientation (our src/dst against Zeek's orig/resp),
   the outcome (through the table below) and, loosely, the history letters;
3. compares packet counts per direction: exactly against tshark's per-4-tuple counts when
   tshark is installed (frames with one IP header only), as a lower bound against the
   manifest's `tshark.tcp_packet_events` (consecutive repeats are collapsed there, so only
   "at least" is derivable), and checks that the file summary accounts for every packet;
4. runs `allowscope dns --format ndjson -q FILE` (a crash or non-zero exit is a FAILURE too) and
   compares application facts with the manifest's `expected` values where asserted (not null),
   and with the manifest's tshark views (see "Application facts" below);
5. prints one line per file (OK / DIFF / FAILURE) with indented reasons under a DIFF, each
   marked [known] (explained, expected difference) or [check] (needs a human), then a summary.
   The exit status is 1 only if there was a FAILURE.

Zeek conn_state -> allowscope outcome
-------------------------------------
Rules are tried top to bottom; "history" is Zeek's history string in Zeek's orientation.

TCP:
  | Zeek state / condition              | allowscope outcome   | reasoning
  | any state, no 'S' in history        | midstream            | the originator's SYN is not in the capture, which is allowscope's definition of midstream (covers OTH, SH, SHR, RSTRH and role-flipped SF/S1 such as '^hADdFaf')
  | S0                                  | no-answer            | SYN(s) seen, nothing came back
  | REJ                                 | refused              | the SYN was answered by a RST
  | RSTOS0                              | no-answer            | the originator gave up with a RST; the responder sent no SYN-ACK (a bare ACK, as in 'SaR', is not an acceptance)
  | SH (with 'S')                       | no-answer            | SYN then the originator's FIN, never a SYN-ACK
  | OTH (with 'S', no 'h')              | no-answer            | SYN seen but no SYN-ACK or RST answered it ('SaFR'): the handshake never completed
  | S1 S2 S3 SF RSTO RSTR (+ other      | established          | when the responder sent payload ('d'): only far-end payload makes a flow established
  |   states with 'S'), 'd' in history  |                      |
  |   same, 'D' but no 'd', responder   | reset-after-hello    | client spoke, server sent nothing and closed (its 'f' or 'r'; e.g. RSTR, S3, SF)
  |   closed ('f' or 'r')               |                      |
  |   same, 'D' but no 'd', no close    | request-unanswered   | client spoke, server silent and did not close (e.g. S1, S2, RSTO)
  |   by the responder                  |                      |
  |   same, no 'D' and no 'd'           | handshake-only       | handshake completed, no payload either way
UDP:
  | S0                                  | no-answer (or icmp-unreachable) | only the originator sent; allowscope says icmp-unreachable if an ICMP error quoted it
  | SF                                  | established          | both sides sent: a reply came back
  | SHR                                 | (not compared)       | only the responder sent (Zeek flipped roles by port, '^d'); allowscope has no outcome for a reply without a request, the orientation check covers it
  | OTH                                 | (not compared)       | nothing was active in Zeek's view
ICMP:
  | OTH (always)                        | (not compared)       | Zeek gives every ICMP "connection" OTH; allowscope's echo outcomes have no Zeek equivalent

History comparison (loose): both strings are reduced to the set of letters S H A D F R I, keeping
case (upper = originator/client, lower = responder/server); T/t (retransmission), W/w (zero
window), ^ and the Zeek-only letters C/c (bad checksum) and G/g (content gap) are dropped, and
Zeek's Q/q (SYN with FIN or RST) is folded into I/i, which is what allowscope's I means. When our
flow is oriented the other way round from Zeek's key, the case of our letters is swapped first.
Differences are reported as DIFF lines, never as failures.

Connection counts: Zeek can log several connections for one 4-tuple (pop3: one per SYN/RST pair;
its close timers and dns_session_timeout also split), while allowscope starts a new flow only for
a new SYN with a new ISN after a close, or after its idle timers. Counts per key are reported;
when they differ, outcomes are checked as sets (every Zeek entry must allow one of our outcomes
and every one of our outcomes must be allowed by some Zeek entry).

Application facts
-----------------
All names are compared lower-cased (Zeek lower-cases, tshark keeps the wire case).
  | manifest value                 | allowscope side                          | comparison
  | expected.sni                   | flows' `sni` (TCP, also inside CONNECT)  | multiset; the manifest's acceptable_alternatives also pass (ndpi/tls_missing_ch_frag: no SNI, or the SNI of the truncated ClientHello)
  | expected.quic_sni              | flows' `quic.sni`                        | multiset
  | expected.connect_targets       | flows' `connect_target`                  | multiset
  | expected.http_hosts            | flows' `http.host` (not CONNECT)         | multiset; if that differs, per connection (Zeek http.log conn, or tshark frames), because allowscope keeps one request (the first) per flow while the references list every request
  | expected.dns (dns.log rows)    | `allowscope dns` lookups                 | rows paired on the question (then on conn + transaction id); compared: question, qtype (Zeek '-' = not compared), rcode (number; none = unanswered), answers that are addresses or names (Zeek's 'RRSIG 5 ...', 'TXT 33 ...', update sections and tshark's bare type names are skipped), transport
  | tshark.tls_clienthellos        | per connection: `sni`, `tls.client_hello`| SNI set per connection, and that allowscope saw a ClientHello where tshark shows one
  | tshark.quic_clienthellos       | per connection: `quic`                   | SNI, version and ALPN
  | tshark.http_requests           | per connection: `http`, `connect_target` | first request's method, target and Host (CONNECT: target)
  | tshark.dns_messages            | `allowscope dns` lookups                 | one row per response, plus unanswered query copies; as for dns.log
tshark views are skipped where the expected value is itself tshark's (expected_source 'tshark...').
The frame -> connection map comes from the tshark run for packet counts (without the view's
tshark_options); frames that are nested or map to the wrong transport are tunnelled.

[known]: a tunnel allowscope does not decapsulate (GRE, VXLAN, Teredo: inner facts missing);
mDNS/LLMNR/NetBIOS-NS dns.log rows (ports 5353/5355/137, not parsed as DNS); and the corpus
README's "Where the references disagree": Zeek's UPDATE owner name vs the Zone section, Zeek's
query '-' for an unsolicited response, tshark's 4-bit header rcode vs the EDNS0 extended rcode,
and Zeek logging no HTTP for a connection that starts mid-stream.

Standard library only; tshark is optional.
"""

import argparse
import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict

DEFAULT_BIN = "/work/main/target/release/allowscope"
DEFAULT_CORPUS = "/work/shared/corpus"
FOLDERS = ("zeek", "suricata-verify", "ndpi")
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".pcap.zst")

# Files whose differences we expect, by base name: the reason printed with [known] labels.
KNOWN_FILES = {}
# UDP ports that carry a tunnel allowscope does not decode, to label files not in KNOWN_FILES
# (VXLAN, Geneve, GTP-U and Teredo are decapsulated since issue 16; IPsec is encrypted).
TUNNEL_PORTS = {4500: "IPsec NAT-T"}

FAILURE, CHECK, KNOWN = "FAILURE", "check", "known"


# ----------------------------------------------------------------------------------------------
# small helpers

def norm_ip(s):
    s = s.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(s))
    except ValueError:
        return s


def norm_proto(p):
    p = (p or "").lower()
    return "icmp" if p in ("icmp", "icmpv6", "icmp6") else p


def tuple_key(proto, ip1, port1, ip2, port2):
    """Unordered 5-tuple key; ICMP is keyed by addresses only (Zeek puts type/code in the ports)."""
    proto = norm_proto(proto)
    a, b = (norm_ip(ip1), int(port1 or 0)), (norm_ip(ip2), int(port2 or 0))
    if proto == "icmp":
        a, b = (a[0], 0), (b[0], 0)
    return (proto,) + tuple(sorted([a, b]))


def ep_str(ep):
    ip, port = ep
    return ("[%s]" % ip if ":" in ip else ip) + ":%d" % port


def flow_eps(f):
    """(client endpoint, server endpoint) of one of our flows."""
    return (norm_ip(f["src_ip"]), int(f.get("src_port") or 0)), \
           (norm_ip(f["dst_ip"]), int(f.get("dst_port") or 0))


def fkey(f):
    c, s = flow_eps(f)
    return tuple_key(f["proto"], c[0], c[1], s[0], s[1])


def fdesc(f):
    c, s = flow_eps(f)
    return "%s %s>%s %s %s" % (f["proto"], ep_str(c), ep_str(s), f.get("outcome"), f.get("history"))


KEY_RE = re.compile(r"^\s*(.+):(\d+)\s*>\s*(.+):(\d+)/(\w+)\s*$")


def parse_zeek_key(k):
    m = KEY_RE.match(k)
    if not m:
        return None
    oip, op, rip, rp, proto = m.groups()
    return norm_proto(proto), (norm_ip(oip), int(op)), (norm_ip(rip), int(rp))


def hist_set(h):
    if not h:
        return set()
    out = set()
    for ch in h:
        if ch in "Qq":
            ch = "I" if ch == "Q" else "i"
        if ch.upper() in "SHADFRI":
            out.add(ch)
    return out


def fmt_set(s):
    return "".join(sorted(s, key=lambda c: ("SHADFRIshadfri".index(c), c))) or "-"


# ----------------------------------------------------------------------------------------------
# Zeek conn_state -> allowscope outcome (see the table in the module docstring)

def expected_outcomes(proto, state, history):
    """Return (set of acceptable allowscope outcomes or None if not compared, reason)."""
    proto = norm_proto(proto)
    h = history or ""
    if proto == "icmp":
        return None, "ICMP conn_state is always OTH in Zeek"
    if proto == "udp":
        if state == "S0":
            return {"no-answer", "icmp-unreachable"}, "UDP S0: only the originator sent"
        if state == "SF":
            return {"established"}, "UDP SF: both sides sent"
        return None, "UDP %s: only the responder or nobody active; orientation check only" % state
    if proto != "tcp":
        return None, "protocol %s not compared" % proto
    if "S" not in h:
        return {"midstream"}, "no originator SYN in Zeek's history"
    if state == "S0":
        return {"no-answer"}, "S0"
    if state == "REJ":
        return {"refused"}, "REJ"
    if state in ("RSTOS0", "SH"):
        return {"no-answer"}, "%s: no SYN-ACK" % state
    if "h" not in h and "r" not in h:
        return {"no-answer"}, "%s: SYN never answered by SYN-ACK or RST" % state
    if "d" in h:
        return {"established"}, "%s with responder payload" % state
    if "D" in h:
        if "f" in h or "r" in h:
            return {"reset-after-hello"}, "%s: client payload, responder closed" % state
        return {"request-unanswered"}, "%s: client payload, responder silent" % state
    return {"handshake-only"}, "%s: no payload" % state


# ----------------------------------------------------------------------------------------------
# running allowscope

def run_allowscope(binary, path, timeout):
    res = {"failures": [], "flows": [], "summary": None, "rc": None, "stderr": ""}
    for fmt in ("ndjson", "json"):
        try:
            p = subprocess.run([binary, "flows", "--format", fmt, "-q", path],
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            res["failures"].append("timeout after %ds (--format %s)" % (timeout, fmt))
            return res
        except OSError as e:
            res["failures"].append("cannot run %s: %s" % (binary, e))
            return res
        err = p.stderr.decode("utf-8", "replace")
        out = p.stdout.decode("utf-8", "replace")
        if fmt == "ndjson":
            res["rc"], res["stderr"] = p.returncode, err
        first_err = (err.strip().splitlines() or [""])[0][:200]
        if "panicked" in err:
            line = next(l for l in err.splitlines() if "panicked" in l)
            res["failures"].append("panic (exit %d, --format %s): %s" % (p.returncode, fmt, line.strip()[:200]))
        elif p.returncode < 0:
            res["failures"].append("killed by signal %d (--format %s)" % (-p.returncode, fmt))
        elif p.returncode != 0:
            res["failures"].append("exit code %d (--format %s): %s" % (p.returncode, fmt, first_err))
        if res["failures"]:
            return res
        if fmt == "ndjson":
            for n, line in enumerate(out.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    res["failures"].append("ndjson line %d is not JSON" % n)
                    break
                if isinstance(obj, dict) and "proto" in obj and "src_ip" in obj:
                    res["flows"].append(obj)
        else:
            try:
                doc = json.loads(out)
                res["summary"] = (doc.get("files") or [None])[0]
                if len(doc.get("flows", [])) != len(res["flows"]):
                    res["failures"].append("json and ndjson disagree on the number of flows "
                                           "(%d vs %d)" % (len(doc.get("flows", [])), len(res["flows"])))
            except (ValueError, AttributeError):
                res["failures"].append("--format json output is not a JSON document")
    s = res["summary"]
    if s and s.get("error"):
        res["failures"].append("file summary error: %s" % s["error"])
    if res["stderr"].strip() and not any(f.startswith("panic") for f in res["failures"]):
        res["stderr_note"] = res["stderr"].strip().splitlines()[0][:200]
    return res


# ----------------------------------------------------------------------------------------------
# tshark's exact per-direction counts

TSHARK_FIELDS = ["frame.number", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
                 "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "icmp.type", "icmpv6.type"]


def tshark_counts(tshark, path, timeout):
    """{tuple key: {endpoint: frames sent}}, nested (tunnel/ICMP error) frames, portless frames."""
    cmd = [tshark, "-n", "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", "aggregator=,"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "tshark did not run: %s" % e
    if p.returncode != 0:
        return None, "tshark exit %d" % p.returncode
    counts = defaultdict(lambda: defaultdict(int))
    frames = {}
    nested = portless = 0
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        cols = line.split("\t")
        cols += [""] * (len(TSHARK_FIELDS) - len(cols))
        vals = [[v for v in c.split(",") if v] for c in cols]
        fno, ip4s, ip6s, ip4d, ip6d, tsp, tdp, usp, udp_, icmp4, icmp6 = vals
        if len(ip4s) + len(ip6s) == 0:
            portless += 1
            continue
        if len(ip4s) + len(ip6s) > 1:
            # An ICMP error quoting a packet is credited to the quoted flow, not counted here.
            # A tunnel (GRE, VXLAN, Geneve, Teredo, IP-in-IP) is decapsulated by allowscope:
            # the frame counts for its innermost packet (IPv4 before IPv6 in tshark's lists, so
            # the last address is the innermost for 6in4 and Teredo).
            if icmp4 or icmp6:
                nested += 1
                continue
            src, dst = (ip4s + ip6s)[-1], (ip4d + ip6d)[-1]
            if tsp and tdp:
                proto, sp, dp = "tcp", tsp[-1], tdp[-1]
            elif usp and udp_:
                proto, sp, dp = "udp", usp[-1], udp_[-1]
            else:
                nested += 1
                continue
        else:
            src, dst = (ip4s + ip6s)[0], (ip4d + ip6d)[0]
            if len(tsp) == 1 and len(tdp) == 1 and not usp:
                proto, sp, dp = "tcp", tsp[0], tdp[0]
            elif len(usp) == 1 and len(udp_) == 1 and not tsp:
                proto, sp, dp = "udp", usp[0], udp_[0]
            else:
                portless += 1
                continue
        k = tuple_key(proto, src, sp, dst, dp)
        counts[k][(norm_ip(src), int(sp))] += 1
        if fno:
            frames[int(fno[0])] = k
    return {"counts": counts, "nested": nested, "portless": portless, "frames": frames}, None


# ----------------------------------------------------------------------------------------------
# comparisons

def flows_by_key(flows):
    d = defaultdict(list)
    for f in flows:
        d[fkey(f)].append(f)
    for v in d.values():
        v.sort(key=lambda f: f.get("first_seen") or "")
    return d


def per_endpoint_counts(flows):
    d = defaultdict(int)
    for f in flows:
        c, s = flow_eps(f)
        pk = f.get("packets") or {}
        d[c] += int(pk.get("from_client") or 0)
        d[s] += int(pk.get("from_server") or 0)
    return d


def tunnel_reason(base, flows, summary):
    if base in KNOWN_FILES:
        return KNOWN_FILES[base]
    ports = set()
    for f in flows:
        if f["proto"] == "udp":
            ports.update(p for p in (f.get("src_port"), f.get("dst_port")) if p in TUNNEL_PORTS)
    if ports:
        return "tunnel not decapsulated by allowscope: " + ", ".join(
            sorted("%s (UDP %d)" % (TUNNEL_PORTS[p], p) for p in ports))
    if summary and (summary.get("flow_table") or {}).get("other_proto"):
        return "packets of another IP protocol (other_proto, e.g. GRE/IP-in-IP) are not decoded"
    return None


def outer_pairs(flows):
    """The outer address pairs (both ways) of the tunnels allowscope's flows came through."""
    pairs = set()
    for f in flows:
        for l in f.get("encap") or []:
            if l.get("src") and l.get("dst"):
                a, b = norm_ip(l["src"]), norm_ip(l["dst"])
                pairs.update({(a, b), (b, a)})
    return pairs


def compare_zeek(conn_states, flows, tunnel, issues, stats):
    ours = flows_by_key(flows)
    used = set()
    for zkey, entries in conn_states.items():
        parsed = parse_zeek_key(zkey)
        if not parsed:
            issues.append((CHECK, "cannot parse Zeek key %r" % zkey))
            continue
        proto, orig, resp = parsed
        k = tuple_key(proto, orig[0], orig[1], resp[0], resp[1])
        mine = ours.get(k, [])
        stats["zeek_keys"] += 1
        zstates = ",".join("%s(%s)" % (e.get("state"), e.get("history") or "-") for e in entries)
        if not mine:
            if tunnel:
                issues.append((KNOWN, "Zeek %s %s not seen by allowscope (inside the tunnel, see above)"
                               % (zkey, zstates)))
            elif proto == "udp" and (orig[0], resp[0]) in outer_pairs(flows):
                issues.append((KNOWN, "Zeek %s %s is a tunnel's outer connection: allowscope keeps the "
                               "flows inside it (their encap names it)" % (zkey, zstates)))
            else:
                issues.append((CHECK, "Zeek %s %s: no allowscope flow" % (zkey, zstates)))
            continue
        used.add(k)
        key_issues = []
        # orientation
        for f in mine:
            c, s = flow_eps(f)
            if proto == "icmp":
                same = c[0] == orig[0]
            else:
                same = (c, s) == (orig, resp)
            f["_reversed"] = not same
            if not same:
                key_issues.append((CHECK, "orientation: Zeek %s, allowscope %s>%s (%s %s)"
                                   % (zkey, ep_str(c), ep_str(s), f.get("outcome"), f.get("history"))))
        # counts
        if len(entries) != len(mine):
            key_issues.append(count_note(zkey, entries, mine))
        # outcomes
        exp = [expected_outcomes(proto, e.get("state"), e.get("history")) for e in entries]
        if len(entries) == len(mine):
            pairs = best_pairing(entries, exp, mine)
            for e, (oks, why), f in pairs:
                if oks is not None and f.get("outcome") not in oks:
                    key_issues.append((CHECK, "outcome: Zeek %s %s(%s) -> expected %s, allowscope %s (%s)"
                                       % (zkey, e.get("state"), e.get("history"), "/".join(sorted(oks)),
                                          f.get("outcome"), f.get("history"))))
                hd = hist_diff(e, f)
                if hd:
                    key_issues.append((CHECK, "history: Zeek %s %s vs allowscope %s%s"
                                       % (zkey, e.get("history"), f.get("history"), hd)))
        else:
            allowed = set()
            for oks, _ in exp:
                if oks is None:
                    allowed = None
                    break
                allowed |= oks
            if allowed is not None:
                got = {f.get("outcome") for f in mine}
                unmatched_ours = got - allowed
                unmatched_zeek = [e.get("state") for e, (oks, _) in zip(entries, exp) if not (oks & got)]
                if unmatched_ours or unmatched_zeek:
                    key_issues.append((CHECK, "outcome: Zeek %s states %s allow %s, allowscope has %s"
                                       % (zkey, [e.get("state") for e in entries],
                                          "/".join(sorted(allowed)), sorted(got))))
            zl = set().union(*[hist_set(e.get("history")) for e in entries])
            ol = set().union(*[oriented_hist(f) for f in mine])
            if zeek_has_history(entries) and zl != ol:
                key_issues.append((CHECK, "history (all connections of the key): Zeek letters %s, allowscope %s"
                                   % (fmt_set(zl), fmt_set(ol))))
        issues.extend(key_issues)
        if not key_issues:
            stats["zeek_agree"] += 1
        elif all(lab == KNOWN for lab, _ in key_issues):
            stats["zeek_known"] += 1
    extra = [f for k, v in ours.items() if k not in used for f in v]
    if extra:
        issues.append((CHECK, "%d allowscope flow(s) not in Zeek's conn.log: %s"
                       % (len(extra), "; ".join(fdesc(f) for f in extra[:4])
                          + (" ..." if len(extra) > 4 else ""))))


def zeek_has_history(entries):
    return any(e.get("history") for e in entries)


def oriented_hist(f):
    hs = hist_set(f.get("history"))
    if f.get("_reversed"):
        hs = {c.swapcase() for c in hs}
    return hs


def hist_diff(e, f):
    if not e.get("history"):
        return ""
    z, o = hist_set(e.get("history")), oriented_hist(f)
    if z == o:
        return ""
    parts = []
    if z - o:
        parts.append("only Zeek: %s" % fmt_set(z - o))
    if o - z:
        parts.append("only allowscope: %s" % fmt_set(o - z))
    return " (%s%s)" % ("; ".join(parts), ", allowscope case swapped to Zeek's roles" if f.get("_reversed") else "")


def best_pairing(entries, exp, mine):
    """Pair Zeek entries with our flows (same count) maximising outcome and history agreement."""
    def score(perm):
        s = 0
        for (e, (oks, _)), f in zip(zip(entries, exp), perm):
            s += 2 if (oks is None or f.get("outcome") in oks) else 0
            s += 1 if not hist_diff(e, f) else 0
        return s
    if len(mine) <= 6:
        best = max(itertools.permutations(mine), key=score)
    else:
        best = mine
    return [(e, x, f) for (e, x), f in zip(zip(entries, exp), best)]


def count_note(zkey, entries, mine):
    proto = parse_zeek_key(zkey)[0]
    n_z, n_o = len(entries), len(mine)
    msg = "count: Zeek logs %d connection(s) for %s, allowscope %d flow(s)" % (n_z, zkey, n_o)
    attempts = sum(int(f.get("attempts") or 0) for f in mine)
    if proto == "tcp" and n_z > n_o and all(e.get("state") == "REJ" for e in entries) and attempts == n_z:
        return (KNOWN, msg + " with %d attempts: the SYN retries reuse one ISN, so allowscope counts "
                "them as attempts of one refused flow while Zeek logs each SYN/RST pair" % attempts)
    if proto == "tcp" and n_z > n_o and sum(1 for e in entries if "S" in (e.get("history") or "")) \
            == sum(1 for f in mine if "S" in (f.get("history") or "")):
        return (KNOWN, msg + ": no extra SYN; Zeek expired a half-closed/reset connection on its close "
                "timers and logged later stragglers as new partial connections")
    if proto == "udp" and n_z > n_o and all((e.get("service") or "") == "dns" for e in entries):
        return (KNOWN, msg + ": Zeek's dns_session_timeout (10 s) splits DNS 4-tuples; allowscope's "
                "UDP idle timeout is 120 s")
    return (CHECK, msg)


def compare_tshark_exact(tsh, flows, issues, stats, tunnel):
    ours = flows_by_key(f for f in flows if f["proto"] in ("tcp", "udp"))
    for k, theirs in sorted(tsh["counts"].items()):
        mine = ours.get(k)
        if not mine:
            lab = KNOWN if tunnel else CHECK
            issues.append((lab, "tshark sees %s %s<->%s (%s) with no allowscope flow"
                           % (k[0], ep_str(k[1]), ep_str(k[2]),
                              ", ".join("%s:%d" % (ep_str(e), n) for e, n in theirs.items()))))
            continue
        got = per_endpoint_counts(mine)
        stats["tshark_tuples"] += 1
        if any(got.get(e, 0) != theirs.get(e, 0) for e in (k[1], k[2])):
            issues.append((CHECK, "packets %s %s<->%s: tshark %d/%d, allowscope %d/%d (sent by each side)"
                           % (k[0], ep_str(k[1]), ep_str(k[2]), theirs.get(k[1], 0), theirs.get(k[2], 0),
                              got.get(k[1], 0), got.get(k[2], 0))))
        else:
            stats["tshark_agree"] += 1
    if tsh["nested"] == 0:
        missing = [f for k, v in ours.items() if k not in tsh["counts"] for f in v]
        if missing:
            issues.append((CHECK, "allowscope flows tshark does not see as TCP/UDP: "
                           + "; ".join(fdesc(f) for f in missing[:4])))


EP_RE = re.compile(r"first packet from (.+):(\d+)\)")


def compare_packet_events(events, flows, issues, stats):
    """Lower bounds from the manifest's collapsed per-stream events; orientation from the SYN."""
    tcp = [f for f in flows if f["proto"] == "tcp"]
    keys = sorted({fkey(f) for f in tcp})
    streams = []
    for name, seq in events.items():
        m = EP_RE.search(name)
        if not m:
            continue
        first = (norm_ip(m.group(1)), int(m.group(2)))
        evs = [t.split(":", 1) for t in seq.split()]
        cands = [k for k in keys if first in (k[1], k[2])]
        streams.append({"name": name, "first": first, "evs": evs, "cands": cands})
    # resolve ambiguous streams by elimination
    taken = set()
    changed = True
    while changed:
        changed = False
        for s in streams:
            left = [k for k in s["cands"] if k not in taken or s.get("key") == k]
            if "key" not in s and len(left) == 1:
                s["key"] = left[0]
                taken.add(left[0])
                changed = True
            s["cands"] = left if "key" not in s else [s["key"]]
    per_key = defaultdict(lambda: defaultdict(int))
    for s in streams:
        if "key" not in s:
            if not s["cands"]:
                stats["events_unmatched"] += 1
            continue
        k = s["key"]
        other = k[2] if k[1] == s["first"] else k[1]
        for who, _ in s["evs"]:
            per_key[k][s["first"] if who == "O" else other] += 1
        # orientation against the SYN
        if s["evs"]:
            who, ev = s["evs"][0]
            syn_sender = None
            if ev == "S":
                syn_sender = s["first"] if who == "O" else other
            elif ev == "SA":
                syn_sender = other if who == "O" else s["first"]
            if syn_sender is not None:
                for f in tcp:
                    if fkey(f) == k and flow_eps(f)[0] != syn_sender and "S" in (f.get("history") or "").upper():
                        issues.append((CHECK, "orientation: %s starts with %s:%s but allowscope's client is %s"
                                       % (s["name"], who, ev, ep_str(flow_eps(f)[0]))))
                        break
    ours = flows_by_key(tcp)
    for k, lower in per_key.items():
        got = per_endpoint_counts(ours[k])
        stats["events_tuples"] += 1
        short = [(e, lower[e], got.get(e, 0)) for e in lower if got.get(e, 0) < lower[e]]
        stats["events_ok"] += not short
        if short:
            issues.append((CHECK, "packets %s<->%s below tshark's event count: %s"
                           % (ep_str(k[1]), ep_str(k[2]),
                              ", ".join("%s sent >=%d, allowscope %d" % (ep_str(e), lo, g) for e, lo, g in short))))


# ----------------------------------------------------------------------------------------------
# application facts: TLS SNI, QUIC SNI, DNS lookups, HTTP Host, CONNECT targets

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 11: "DSOTYPENI",
          16: "BADVERS", 17: "BADKEY", 18: "BADTIME", 19: "BADMODE", 20: "BADNAME", 21: "BADALG",
          22: "BADTRUNC", 23: "BADCOOKIE"}
RCODE_NUM = {v: k for k, v in RCODES.items()}
# Numeric QTYPEs tshark prints for types it has no name for (only the ones a reference may use).
QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 30: "NXT",
          32: "NIMLOC", 33: "SRV", 43: "DS", 46: "RRSIG", 249: "TKEY", 250: "TSIG", 255: "ANY"}
# Answer types whose value both sides render as a bare name or address.
NAME_RR_TYPES = {"A", "AAAA", "CNAME", "PTR", "NS", "DNAME"}
# Name protocols on other ports that Zeek logs in dns.log and allowscope does not parse as DNS.
NAME_PROTO_PORTS = {5353: "mDNS", 5355: "LLMNR", 137: "NetBIOS-NS"}
DNS_GAP = "allowscope parses DNS on port 53 only, not mDNS/LLMNR/NetBIOS-NS"
TUNNEL_GAP = "inside a tunnel allowscope does not decapsulate (see above)"


def run_allowscope_dns(binary, path, timeout):
    """`allowscope dns --format ndjson -q`: (lookups, failures)."""
    try:
        p = subprocess.run([binary, "dns", "--format", "ndjson", "-q", path],
                           capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], ["timeout after %ds (dns)" % timeout]
    except OSError as e:
        return [], ["cannot run %s dns: %s" % (binary, e)]
    err = p.stderr.decode("utf-8", "replace")
    if "panicked" in err:
        line = next(l for l in err.splitlines() if "panicked" in l)
        return [], ["panic (exit %d, dns): %s" % (p.returncode, line.strip()[:200])]
    if p.returncode < 0:
        return [], ["killed by signal %d (dns)" % -p.returncode]
    if p.returncode != 0:
        return [], ["exit code %d (dns): %s" % (p.returncode, (err.strip().splitlines() or [""])[0][:200])]
    out = []
    for n, line in enumerate(p.stdout.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            return out, ["dns ndjson line %d is not JSON" % n]
        if isinstance(obj, dict) and "qname" in obj:
            out.append(obj)
    return out, []


def low(s):
    return s.lower().rstrip(".") if isinstance(s, str) else s


def src_label(entry, key, default):
    s = (entry.get("expected_source") or {}).get(key) or default
    return s.split(" (")[0].split(";")[0].strip()


def tshark_sourced(entry, key):
    return ((entry.get("expected_source") or {}).get(key) or "").startswith("tshark")


def fact_stat(stats, cat, agree, total):
    a, t = stats["facts"].get(cat, (0, 0))
    stats["facts"][cat] = (a + agree, t + total)


def fmt_counter(c):
    return ", ".join("%s%s" % (v, " x%d" % n if n > 1 else "") for v, n in sorted(c.items(), key=str)) or "-"


def parse_ep(s):
    """'1.2.3.4:53' or '[::1]:53' -> (ip, port)."""
    ip, _, port = (s or "").rpartition(":")
    return norm_ip(ip), int(port or 0)


def is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def norm_qtype(t):
    if t is None:
        return None
    t = str(t).strip().upper()
    if t == "*":
        return "ANY"
    if t.isdigit():
        return QTYPES.get(int(t), "TYPE" + t)
    return t


def ref_answer_tokens(answers):
    """Comparable answers of a reference row: addresses and names. Zeek renders CNAME/PTR/NS
    targets as a bare name and other records with spaces ('RRSIG 5 cmu.edu', 'TXT 33 ...', update
    sections 'pre: ...'): those are skipped. tshark's view writes 'CNAME name' and a bare type
    name ('RRSIG', 'TXT') for records it does not render."""
    out = []
    for a in answers or []:
        parts = str(a).split()
        if len(parts) == 1:
            if is_ip(parts[0]):
                out.append(norm_ip(parts[0]))
            elif not re.match(r"^[A-Z][A-Z0-9-]*$", parts[0]):
                out.append(low(parts[0]))
        elif len(parts) == 2 and parts[0] in NAME_RR_TYPES:
            out.append(norm_ip(parts[1]) if is_ip(parts[1]) else low(parts[1]))
    return Counter(out)


def our_answer_tokens(answers):
    out = []
    for a in answers or []:
        v, t = a.get("value"), (a.get("type") or "").upper()
        if v is None or t not in NAME_RR_TYPES or re.search(r"\s", str(v)):
            continue
        out.append(norm_ip(v) if t in ("A", "AAAA") else low(v))
    return Counter(out)


def our_dns_rows(lookups):
    rows = []
    for l in lookups:
        c, s = parse_ep(l.get("client")), parse_ep(l.get("server"))
        tr = (l.get("transport") or "").lower()
        rc = l.get("rcode")
        rows.append({"query": low(l.get("qname")), "qtype": norm_qtype(l.get("qtype")),
                     "answered": bool(l.get("answered")), "rcode": RCODE_NUM.get(rc, rc) if rc else None,
                     "rcode_name": rc, "answers": our_answer_tokens(l.get("answers")),
                     "transport": tr, "key": tuple_key(tr, c[0], c[1], s[0], s[1]),
                     "id": l.get("id"), "query_seen": l.get("query_seen", True),
                     "desc": "%s>%s" % (l.get("client"), l.get("server"))})
    return rows


def zeek_dns_rows(rows, source):
    out = []
    for r in rows:
        key = ports = None
        if r.get("conn"):
            parsed = parse_zeek_key(r["conn"])
            if parsed:
                proto, o, rr = parsed
                key, ports = tuple_key(proto, o[0], o[1], rr[0], rr[1]), (o[1], rr[1])
        out.append({"query": low(r.get("query")), "qtype": norm_qtype(r.get("qtype")),
                    "rcode": r.get("rcode"), "answers": ref_answer_tokens(r.get("answers")),
                    "transport": (r.get("transport") or "").lower() or None, "key": key, "ports": ports,
                    "id": r.get("trans_id"), "opcode": r.get("opcode"), "source": source,
                    "desc": r.get("conn") or ""})
    return out


def tshark_dns_rows(messages):
    """One row per response, plus one unanswered row per query copy beyond the responses."""
    out = []
    queries, responses = defaultdict(list), defaultdict(int)
    for m in messages:
        tid = int(str(m.get("id") or "0"), 16) if str(m.get("id") or "").startswith("0x") else m.get("id")
        k = (tid, m.get("transport"), low(m.get("query")), norm_qtype(m.get("qtype")))
        if m.get("response"):
            responses[k] += 1
            rc = m.get("rcode")
            out.append({"query": low(m.get("query")), "qtype": norm_qtype(m.get("qtype")),
                        "rcode": int(rc) if rc not in (None, "") else None,
                        "answers": ref_answer_tokens(m.get("answers")), "transport": m.get("transport"),
                        "key": None, "ports": None, "id": tid, "opcode": m.get("opcode"),
                        "source": "tshark", "desc": "frame %s" % m.get("frame")})
        else:
            queries[k].append(m)
    for k, ms in queries.items():
        for m in ms[responses.get(k, 0):]:
            out.append({"query": k[2], "qtype": k[3], "rcode": None, "answers": Counter(),
                        "transport": k[1], "key": None, "ports": None, "id": k[0], "opcode": m.get("opcode"),
                        "source": "tshark", "desc": "frame %s, unanswered" % m.get("frame")})
    return out


def match_dns(refs, ours):
    """Pair reference rows with our lookups: first on the same question, then (for rows whose
    question differs) on the same connection and transaction id."""
    used, pairs, unmatched = set(), {}, []

    def score(r, o):
        return (4 * (r["qtype"] in (None, o["qtype"])) + 2 * (r["rcode"] == o["rcode"])
                + 2 * ((r["rcode"] is None) == (not o["answered"])) + (r["answers"] == o["answers"]))

    for strict in (True, False):
        for i, r in enumerate(refs):
            if i in pairs:
                continue
            best = None
            for j, o in enumerate(ours):
                if j in used:
                    continue
                if r["key"] is not None and r["key"] != o["key"]:
                    continue
                if r["id"] is not None and r["id"] != o["id"]:
                    continue
                if r["transport"] and o["transport"] and r["transport"] != o["transport"]:
                    continue
                if strict and (r["query"] is None or r["query"] != o["query"]):
                    continue
                if not strict and r["key"] is None and r["id"] is None:
                    continue
                sc = score(r, o)
                if best is None or sc > best[0]:
                    best = (sc, j)
            if best is not None:
                pairs[i] = best[1]
                used.add(best[1])
    unmatched = [r for i, r in enumerate(refs) if i not in pairs]
    return [(refs[i], ours[j]) for i, j in sorted(pairs.items())], unmatched, \
        [o for j, o in enumerate(ours) if j not in used]


def dns_row_diffs(r, o):
    """Differences between a reference row and our lookup: list of (label, text)."""
    out = []
    if r["query"] != o["query"]:
        if r["query"] is None and not o["query_seen"]:
            out.append((KNOWN, "question: Zeek logs this unsolicited response with query '-', allowscope "
                        "reports the response's question %s %s (README: references disagree; tshark agrees "
                        "with allowscope)" % (o["query"], o["qtype"])))
        elif (r.get("opcode") or "") in ("dynamic-update", "update", "5"):
            out.append((KNOWN, "question: for an UPDATE Zeek logs the updated owner name %s, allowscope "
                        "the Zone section %s %s (README: references disagree; tshark agrees with allowscope)"
                        % (r["query"], o["query"], o["qtype"])))
        else:
            out.append((CHECK, "question: reference %s, allowscope %s" % (r["query"], o["query"])))
    if r["qtype"] is not None and r["qtype"] != o["qtype"]:
        out.append((CHECK, "qtype: reference %s, allowscope %s" % (r["qtype"], o["qtype"])))
    if r["rcode"] is None and o["answered"]:
        out.append((CHECK, "reference saw no response, allowscope has one (rcode %s)" % o["rcode_name"]))
    elif r["rcode"] is not None and not o["answered"]:
        out.append((CHECK, "reference has a response (rcode %s), allowscope none" % r["rcode"]))
    elif r["rcode"] is not None and r["rcode"] != o["rcode"]:
        if isinstance(o["rcode"], int) and o["rcode"] > 15 and o["rcode"] & 0xF == r["rcode"] \
                and r["source"] == "tshark":
            out.append((KNOWN, "rcode: tshark's dns.flags.rcode %d is the header's 4 bits; with the EDNS0 "
                        "extended bits the rcode is %d %s, as Zeek says (README: references disagree)"
                        % (r["rcode"], o["rcode"], o["rcode_name"])))
        else:
            out.append((CHECK, "rcode: reference %s %s, allowscope %s" % (
                r["rcode"], RCODES.get(r["rcode"], ""), o["rcode_name"])))
    if r["rcode"] is not None and o["answered"] and r["answers"] != o["answers"]:
        out.append((CHECK, "answers: only reference %s; only allowscope %s" % (
            fmt_counter(r["answers"] - o["answers"]), fmt_counter(o["answers"] - r["answers"]))))
    if r["transport"] and o["transport"] and r["transport"] != o["transport"]:
        out.append((CHECK, "transport: reference %s, allowscope %s" % (r["transport"], o["transport"])))
    return out


def compare_dns(label, cat, refs, lookups, tunnel, issues, stats):
    ours = our_dns_rows(lookups)
    pairs, miss, extra = match_dns(refs, ours)
    agree = 0
    for r, o in pairs:
        diffs = dns_row_diffs(r, o)
        if not diffs:
            agree += 1
            continue
        for lab, msg in diffs:
            issues.append((lab, "%s [%s] %s %s (%s): %s" % (cat, label, r["query"] or "-", r["qtype"] or "-",
                                                            r["desc"] or o["desc"], msg)))
    gaps = defaultdict(list)
    for r in miss:
        proto = None
        if r["ports"] and 53 not in r["ports"]:
            proto = next((NAME_PROTO_PORTS[p] for p in r["ports"] if p in NAME_PROTO_PORTS), None)
        if proto:
            gaps["%s (%s)" % (DNS_GAP, proto)].append(r)
        elif tunnel:
            gaps[TUNNEL_GAP].append(r)
        else:
            issues.append((CHECK, "%s [%s] %s %s rcode %s (%s): no allowscope lookup" % (
                cat, label, r["query"] or "-", r["qtype"] or "-", r["rcode"], r["desc"])))
    for why, rows in sorted(gaps.items()):
        qs = Counter("%s %s" % (r["query"] or "-", r["qtype"] or "-") for r in rows)
        issues.append((KNOWN, "%s [%s] %d row(s) without allowscope lookup, %s: %s"
                       % (cat, label, len(rows), why, fmt_counter(qs))))
    for o in extra:
        issues.append((CHECK, "%s [%s] allowscope lookup %s %s (%s, %s) not in the reference" % (
            cat, label, o["query"], o["qtype"], o["desc"], o["rcode_name"] or "unanswered")))
    fact_stat(stats, cat, agree, max(len(refs), len(ours)))


def compare_values(cat, label, expected, ours, issues, stats, tunnel, alternatives=None, flow_note=None):
    """Multiset comparison of reference values with ours [(value, flow)]."""
    exp = Counter(low(v) for v in expected)
    got = Counter(low(v) for v, _ in ours)
    if exp == got:
        fact_stat(stats, cat, sum(exp.values()), sum(exp.values()))
        return
    for alt in alternatives or []:
        if Counter(low(v) for v in alt) == got:
            fact_stat(stats, cat, sum(got.values()), sum(got.values()))
            stats["facts_alt"].append("%s: manifest's acceptable alternative %s" % (cat, fmt_counter(got)))
            return
    fact_stat(stats, cat, sum((exp & got).values()), max(sum(exp.values()), sum(got.values())))
    only_ref, only_ours = exp - got, got - exp
    if only_ref:
        issues.append((KNOWN if tunnel else CHECK, "%s [%s] only in the reference: %s%s" % (
            cat, label, fmt_counter(only_ref), " (%s)" % TUNNEL_GAP if tunnel else "")))
    if only_ours:
        descs = []
        for v, n in sorted(only_ours.items()):
            fl = [f for val, f in ours if low(val) == v]
            descs.append("%s%s on %s" % (v, " (%d more than the reference)" % n if exp[v] else
                                         " x%d" % n if n > 1 else "",
                                         " / ".join(fdesc(f) + (flow_note(f) if flow_note else "") for f in fl)))
        issues.append((CHECK, "%s [%s] only in allowscope: %s" % (cat, label, "; ".join(descs))))


def hello_note(f):
    t = f.get("tls") or {}
    if t.get("client_hello") == "truncated":
        return " (from a truncated ClientHello, %s of %s bytes)" % (t.get("truncated_have"), t.get("truncated_need"))
    return ""


def frames_by_key(view, frames, proto):
    """Group a tshark view (entries with 'frame') by our tuple key. Entries tshark saw only inside
    a tunnel or an ICMP error have no key, and so have those whose frame maps to the wrong
    transport: the frame map is made without the view's tshark_options, so a Teredo-carried HTTP
    request maps to its outer UDP datagram."""
    per, nokey = defaultdict(list), []
    for v in sorted(view, key=lambda v: v.get("frame") or 0):
        k = frames.get(v.get("frame"))
        (per[k].append(v) if k and k[0] == proto else nokey.append(v))
    return per, nokey


def compare_tshark_hellos(kind, view, frames, flows, issues, stats, tunnel, options):
    """Per connection: tshark's ClientHello SNI(s) against the flow's (TLS or QUIC)."""
    cat = "tshark %s" % ("tls_clienthellos" if kind == "tls" else "quic_clienthellos")
    ours = flows_by_key(flows)
    per, nokey = frames_by_key(view, frames, "tcp" if kind == "tls" else "udp")
    opt = " (tshark with %s)" % options if options else ""
    agree = 0
    for v in nokey:
        issues.append((KNOWN if tunnel else CHECK, "%s: frame %s (SNI %s) is not a plain %s frame%s"
                       % (cat, v.get("frame"), v.get("sni"), "TCP" if kind == "tls" else "UDP",
                          ": " + TUNNEL_GAP if tunnel else "")))
    for k, hs in per.items():
        where = "%s %s<->%s" % (k[0], ep_str(k[1]), ep_str(k[2]))
        fr = ",".join(str(h.get("frame")) for h in hs)
        mine = ours.get(k, [])
        if not mine:
            issues.append((KNOWN if tunnel else CHECK, "%s: frame %s on %s: no allowscope flow" % (cat, fr, where)))
            continue
        ref = {low(h["sni"]) for h in hs if h.get("sni")}
        if kind == "tls":
            got = {low(f["sni"]) for f in mine if f.get("sni")}
            seen = [f for f in mine if (f.get("tls") or {}).get("client_hello") in ("complete", "truncated")]
            what = "tls.client_hello %s" % "/".join(sorted({str((f.get("tls") or {}).get("client_hello"))
                                                             for f in mine}))
        else:
            got = {low((f.get("quic") or {}).get("sni")) for f in mine if (f.get("quic") or {}).get("sni")}
            seen = [f for f in mine if f.get("quic")]
            what = "quic %s" % ("present" if seen else "null")
        bad = []
        if ref != got:
            bad.append("SNI tshark %s, allowscope %s" % (sorted(ref) or "none", sorted(got) or "none"))
        elif not seen:
            bad.append("tshark shows a ClientHello%s, allowscope has none on this flow (%s, outcome %s)"
                       % (opt, what, "/".join(f.get("outcome") or "-" for f in mine)))
        if kind == "quic" and seen:
            q = seen[0]["quic"]
            h = hs[0]
            tv = h.get("quic_version")
            if tv and q.get("version") is not None and int(tv, 16) != q.get("version"):
                bad.append("version tshark %s, allowscope %#x" % (tv, q["version"]))
            if h.get("alpn") and h["alpn"].split("|") != (q.get("alpn") or []):
                bad.append("ALPN tshark %s, allowscope %s" % (h["alpn"].split("|"), q.get("alpn")))
        if bad:
            issues.append((CHECK, "%s: frame %s on %s: %s" % (cat, fr, where, "; ".join(bad))))
        else:
            agree += 1
    for k, mine in ours.items():
        if k in per:
            continue
        for f in mine:
            s = f.get("sni") if kind == "tls" else (f.get("quic") or {}).get("sni")
            if s:
                issues.append((CHECK, "%s: allowscope SNI %s on %s where tshark shows no ClientHello%s"
                               % (cat, s, fdesc(f), hello_note(f) if kind == "tls" else "")))
    fact_stat(stats, cat, agree, len(per) + len(nokey))


def compare_tshark_http(view, frames, flows, issues, stats, tunnel, options):
    """Per connection: tshark's first HTTP request against the flow's http / CONNECT facts."""
    cat = "tshark http_requests"
    ours = flows_by_key(flows)
    per, nokey = frames_by_key(view, frames, "tcp")
    agree = 0
    for v in nokey:
        issues.append((KNOWN if tunnel else CHECK, "%s: frame %s (%s %s) is not a plain TCP frame%s" % (
            cat, v.get("frame"), v.get("method"), v.get("host"), ": " + TUNNEL_GAP if tunnel else "")))
    for k, reqs in per.items():
        where = "%s %s<->%s" % (k[0], ep_str(k[1]), ep_str(k[2]))
        mine = ours.get(k, [])
        if not mine:
            issues.append((KNOWN if tunnel else CHECK, "%s: frame %s on %s: no allowscope flow%s" % (
                cat, reqs[0].get("frame"), where, ": " + TUNNEL_GAP if tunnel else "")))
            continue
        first = reqs[0]
        bad = []
        if (first.get("method") or "").upper() == "CONNECT":
            want = low(first.get("uri") or first.get("host"))
            got = [low(f.get("connect_target")) for f in mine]
            if want not in got:
                bad.append("CONNECT target tshark %s, allowscope %s" % (want, got))
        else:
            hs = [f.get("http") or {} for f in mine]
            cand = [h for h in hs if (h.get("method"), h.get("target")) == (first.get("method"), first.get("uri"))]
            if not cand:
                bad.append("first request tshark %s %s, allowscope %s" % (
                    first.get("method"), first.get("uri"),
                    "; ".join("%s %s" % (h.get("method"), h.get("target")) for h in hs) or "no http facts"))
            elif low(cand[0].get("host")) != low(first.get("host")):
                bad.append("Host tshark %s, allowscope %s" % (first.get("host"), cand[0].get("host")))
            got_hosts = {low(h.get("host")) for h in hs}
            later = {low(r.get("host")) for r in reqs[1:] if (r.get("method") or "").upper() != "CONNECT"} - got_hosts
            if later:
                bad.append("later requests name other hosts %s (allowscope keeps each flow's first request)"
                           % sorted(later))
        if bad:
            issues.append((CHECK, "%s: frame %s on %s%s: %s" % (
                cat, first.get("frame"), where, " (tshark with %s)" % options if options else "", "; ".join(bad))))
        else:
            agree += 1
    for k, mine in ours.items():
        if k in per:
            continue
        for f in mine:
            h = (f.get("http") or {}).get("host") or f.get("connect_target")
            if h:
                issues.append((CHECK, "%s: allowscope has HTTP facts (%s) on %s where tshark shows no request"
                               % (cat, h, fdesc(f))))
    fact_stat(stats, cat, agree, len(per) + len(nokey))


def compare_http_hosts(entry, expected, flows, tsh_frames, issues, stats, tunnel):
    label = src_label(entry, "http_hosts", "reference")
    ours = [(low(f["http"]["host"]), f) for f in flows
            if (f.get("http") or {}).get("host") and (f["http"].get("method") or "").upper() != "CONNECT"]
    exp, got = Counter(low(h) for h in expected), Counter(h for h, _ in ours)
    if exp == got:
        fact_stat(stats, "http_hosts", sum(exp.values()), sum(exp.values()))
        return
    # Zeek and tshark list one Host per request, allowscope one per flow (its first request):
    # compare per connection when the reference says which connection each request was on.
    per_key = None
    zlog = (entry.get("zeek_details") or {}).get("zeek_http_log")
    treqs = (entry.get("tshark") or {}).get("http_requests")
    if zlog and label.startswith("zeek"):
        per_key = defaultdict(list)
        for r in zlog:
            p = parse_zeek_key(r.get("conn") or "")
            if p and (r.get("method") or "").upper() != "CONNECT" and r.get("host"):
                per_key[tuple_key(p[0], p[1][0], p[1][1], p[2][0], p[2][1])].append(low(r["host"]))
    elif treqs and tsh_frames is not None:
        per_key = defaultdict(list)
        for k, rs in frames_by_key(treqs, tsh_frames, "tcp")[0].items():
            per_key[k] += [low(r["host"]) for r in rs if r.get("host") and (r.get("method") or "").upper() != "CONNECT"]
    if per_key is not None and Counter(h for hs in per_key.values() for h in hs) != exp:
        per_key = None  # the per-connection rows do not restate the expected list: compare values
    if per_key is None:
        compare_values("http_hosts", label, expected, ours, issues, stats, tunnel)
        return
    by_key = defaultdict(set)
    for h, f in ours:
        by_key[fkey(f)].add(h)
    keys = {fkey(f) for f in flows}
    agree = 0
    for k, hosts in per_key.items():
        where = "%s %s<->%s" % (k[0], ep_str(k[1]), ep_str(k[2]))
        if set(hosts) == by_key.get(k, set()):
            agree += 1
        elif k not in keys:
            issues.append((KNOWN if tunnel else CHECK, "http_hosts [%s] %s on %s: no allowscope flow%s"
                           % (label, fmt_counter(Counter(hosts)), where, " (%s)" % TUNNEL_GAP if tunnel else "")))
        else:
            issues.append((CHECK, "http_hosts [%s] on %s: reference %s, allowscope %s"
                           % (label, where, fmt_counter(Counter(hosts)), sorted(by_key.get(k, set())) or "none")))
    tshark_hosts = {low(r.get("host")) for r in treqs or []}
    for h, f in ours:
        if fkey(f) in per_key:
            continue
        if f.get("outcome") == "midstream" and label.startswith("zeek") and h in tshark_hosts:
            issues.append((KNOWN, "http_hosts [%s] %s on %s: Zeek logs no HTTP for a connection that starts "
                           "mid-stream, tshark and allowscope do (README: references disagree)" % (label, h, fdesc(f))))
        else:
            issues.append((CHECK, "http_hosts [%s] only in allowscope: %s on %s" % (label, h, fdesc(f))))
    fact_stat(stats, "http_hosts", agree, len(per_key) + sum(1 for h, f in ours if fkey(f) not in per_key))
    if sum(exp.values()) > len(per_key):
        stats["facts_alt"].append("http_hosts: %d requests on %d connections, compared per connection "
                                  "(allowscope keeps each flow's first request)" % (sum(exp.values()), len(per_key)))


def compare_facts(entry, flows, lookups, tsh, tunnel, issues, stats):
    exp = entry.get("expected") or {}
    tv = entry.get("tshark") or {}
    frames = tsh["frames"] if tsh else None
    options = tv.get("tshark_options")
    alts = entry.get("acceptable_alternatives") or {}
    tcp_tls = [f for f in flows if f.get("proto") == "tcp"]
    if exp.get("sni") is not None:
        compare_values("sni", src_label(entry, "sni", "reference"), exp["sni"],
                       [(f["sni"], f) for f in tcp_tls if f.get("sni")], issues, stats, tunnel,
                       alts.get("sni"), hello_note)
    if exp.get("quic_sni") is not None:
        compare_values("quic_sni", src_label(entry, "quic_sni", "reference"), exp["quic_sni"],
                       [(f["quic"]["sni"], f) for f in flows if (f.get("quic") or {}).get("sni")],
                       issues, stats, tunnel, alts.get("quic_sni"))
    if exp.get("connect_targets") is not None:
        compare_values("connect_targets", src_label(entry, "connect_targets", "reference"), exp["connect_targets"],
                       [(f["connect_target"], f) for f in flows if f.get("connect_target")],
                       issues, stats, tunnel, alts.get("connect_targets"))
    if exp.get("http_hosts") is not None:
        compare_http_hosts(entry, exp["http_hosts"], flows, frames, issues, stats, tunnel)
    if exp.get("dns") is not None:
        label = src_label(entry, "dns", "reference")
        compare_dns(label, "dns", zeek_dns_rows(exp["dns"], "tshark" if label.startswith("tshark") else label),
                    lookups, tunnel, issues, stats)
    # tshark's own views (skipped where the expected value above already is tshark's)
    if tv.get("dns_messages") is not None and not tshark_sourced(entry, "dns"):
        compare_dns("tshark", "tshark dns_messages", tshark_dns_rows(tv["dns_messages"]), lookups, tunnel,
                    issues, stats)
    for kind, view in (("tls", "tls_clienthellos"), ("quic", "quic_clienthellos")):
        if tv.get(view) is None:
            continue
        if frames is not None:
            compare_tshark_hellos(kind, tv[view], frames, flows, issues, stats, tunnel, options)
        elif not tshark_sourced(entry, "sni" if kind == "tls" else "quic_sni"):
            cat = "tshark " + view
            vals = [h["sni"] for h in tv[view] if h.get("sni")]
            ours = ([(f["sni"], f) for f in tcp_tls if f.get("sni")] if kind == "tls" else
                    [(f["quic"]["sni"], f) for f in flows if (f.get("quic") or {}).get("sni")])
            compare_values(cat, "tshark", vals, ours, issues, stats, tunnel)
            seen = [f for f in flows if (f.get("tls") or {}).get("client_hello") in ("complete", "truncated")] \
                if kind == "tls" else [f for f in flows if f.get("quic")]
            if tv[view] and not seen:
                issues.append((KNOWN if tunnel else CHECK, "%s: tshark shows %d ClientHello(s) (frame %s), "
                               "allowscope none" % (cat, len(tv[view]), tv[view][0].get("frame"))))
    if tv.get("http_requests") is not None and frames is not None:
        compare_tshark_http(tv["http_requests"], frames, flows, issues, stats, tunnel, options)


def check_accounting(summary, flows, manifest_packets, issues):
    if not summary:
        return
    total = int(summary.get("packets") or 0)
    if manifest_packets is not None and manifest_packets != total:
        issues.append((CHECK, "file summary reads %d packets, the manifest says %d" % (total, manifest_packets)))
    sk = summary.get("skipped") or {}
    ft = summary.get("flow_table") or {}
    fr = summary.get("fragments") or {}
    in_flows = sum(int((f.get("packets") or {}).get("from_client") or 0)
                   + int((f.get("packets") or {}).get("from_server") or 0) for f in flows)
    outside = (int(sk.get("not_ip") or 0) + sum((sk.get("malformed") or {}).values())
               + sum((sk.get("unsupported_linktype") or {}).values())
               + int(ft.get("other_proto") or 0) + int(ft.get("icmp_other") or 0)
               + int(ft.get("icmp_errors_unmatched") or 0) + int(ft.get("icmp_errors_unreadable") or 0)
               + int(fr.get("fragments") or 0) - int(fr.get("reassembled") or 0))
    icmp_attached = sum(int((f.get("icmp") or {}).get("count") or 0) for f in flows)
    if total not in (in_flows + outside, in_flows + outside + icmp_attached):
        issues.append((CHECK, "packet accounting: %d read, %d in flows + %d skipped/other/fragments"
                       % (total, in_flows, outside)))
    unsup = sk.get("unsupported_linktype") or {}
    if any(unsup.values()):
        issues.append((KNOWN, "unsupported link type(s) %s: packets skipped" % unsup))


# ----------------------------------------------------------------------------------------------

def load_entries(corpus):
    entries = []
    listed = set()
    for folder in FOLDERS:
        mpath = os.path.join(corpus, folder, "MANIFEST.json")
        if os.path.exists(mpath):
            with open(mpath) as fh:
                for e in json.load(fh).get("files", []):
                    entries.append(e)
                    listed.add(os.path.normpath(e["file"]))
        d = os.path.join(corpus, folder)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                rel = os.path.normpath(os.path.join(folder, name))
                if name.endswith(CAPTURE_SUFFIXES) and rel not in listed:
                    entries.append({"file": rel, "_unlisted": True})
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=DEFAULT_BIN, help="allowscope binary (default %(default)s)")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS, help="corpus root (default %(default)s)")
    ap.add_argument("--tshark", default=shutil.which("tshark"),
                    help="tshark binary for exact packet counts (default: from PATH)")
    ap.add_argument("--no-tshark", action="store_true", help="skip the live tshark comparison")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per command")
    ap.add_argument("--only", help="check only files whose path contains this string")
    args = ap.parse_args()

    if not os.access(args.bin, os.X_OK):
        print("FAILURE: allowscope binary %s is not executable (cargo build --release)" % args.bin)
        return 1
    tshark = None if args.no_tshark else args.tshark
    entries = [e for e in load_entries(args.corpus) if not args.only or args.only in e["file"]]
    totals = {"OK": 0, "DIFF": 0, "DIFF-known": 0, "FAILURE": 0}
    width = max([len(e["file"]) for e in entries] + [10])

    for e in entries:
        rel = e["file"]
        path = os.path.join(args.corpus, rel)
        base = os.path.basename(rel)
        issues = []
        stats = defaultdict(int)
        stats["facts"], stats["facts_alt"] = {}, []
        if not os.path.exists(path):
            issues.append((FAILURE, "listed in the manifest but missing on disk"))
            res = {"failures": [], "flows": [], "summary": None}
        else:
            res = run_allowscope(args.bin, path, args.timeout)
        lookups = []
        if os.path.exists(path) and not res["failures"]:
            lookups, dns_failures = run_allowscope_dns(args.bin, path, args.timeout)
            res["failures"] += dns_failures
        for msg in res["failures"]:
            issues.append((FAILURE, msg))
        if res.get("stderr_note"):
            issues.append((CHECK, "stderr with -q: %s" % res["stderr_note"]))
        flows, summary = res["flows"], res["summary"]
        if e.get("_unlisted"):
            issues.append((CHECK, "capture not listed in its MANIFEST.json"))

        if not any(lab == FAILURE for lab, _ in issues):
            tunnel = tunnel_reason(base, flows, summary)
            if tunnel:
                issues.append((KNOWN, tunnel))
            check_accounting(summary, flows, e.get("packets"), issues)
            cs = (e.get("expected") or {}).get("conn_states")
            if cs is not None:
                compare_zeek(cs, flows, tunnel, issues, stats)
            tsh = None
            if tshark:
                tsh, err = tshark_counts(tshark, path, args.timeout)
                if tsh is None:
                    issues.append((CHECK, "tshark comparison skipped: %s" % err))
                else:
                    compare_tshark_exact(tsh, flows, issues, stats, tunnel)
                    stats["nested"] = tsh["nested"]
                    stats["tshark_ran"] = 1
            events = (e.get("tshark") or {}).get("tcp_packet_events")
            if events:
                compare_packet_events(events, flows, issues, stats)
            compare_facts(e, flows, lookups, tsh, tunnel, issues, stats)

        labels = {lab for lab, _ in issues}
        if FAILURE in labels:
            status = "FAILURE"
        elif CHECK in labels:
            status = "DIFF"
        elif KNOWN in labels:
            status = "DIFF"
            totals["DIFF-known"] += 1
        else:
            status = "OK"
        totals[status] += 1
        info = ["%d flows" % len(flows)]
        if stats["zeek_keys"]:
            info.append("zeek %d/%d keys agree%s" % (
                stats["zeek_agree"], stats["zeek_keys"],
                " (+%d with known differences)" % stats["zeek_known"] if stats["zeek_known"] else ""))
        if stats["tshark_ran"] and stats["tshark_tuples"]:
            info.append("tshark counts %d/%d tuples agree" % (stats["tshark_agree"], stats["tshark_tuples"]))
        elif stats["tshark_ran"]:
            info.append("tshark: no plain TCP/UDP frames to count")
        if stats["nested"]:
            info.append("%d tunnelled/ICMP-quoting frames not counted" % stats["nested"])
        if stats["events_tuples"]:
            info.append("manifest tcp events: %d/%d tuples within bounds" % (stats["events_ok"], stats["events_tuples"]))
        if stats["facts"]:
            info.append("facts: " + ", ".join("%s %d/%d" % (c, a, t) for c, (a, t) in stats["facts"].items()))
        info += stats["facts_alt"]
        if status == "DIFF" and CHECK not in labels:
            info.append("known differences only")
        print("%-7s %-*s  %s" % (status, width, rel, "; ".join(info)))
        for lab, msg in issues:
            print("          [%s] %s" % (lab, msg))

    n = len(entries)
    print()
    print("summary: files %d, OK %d, DIFF %d (%d with known differences only), FAILURE %d"
          % (n, totals["OK"], totals["DIFF"], totals["DIFF-known"], totals["FAILURE"]))
    return 1 if totals["FAILURE"] else 0


if __name__ == "__main__":
    sys.exit(main())
