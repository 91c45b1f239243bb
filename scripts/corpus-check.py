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
4. prints one line per file (OK / DIFF / FAILURE) with indented reasons under a DIFF, each
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
from collections import defaultdict

DEFAULT_BIN = "/work/main/target/release/allowscope"
DEFAULT_CORPUS = "/work/shared/corpus"
FOLDERS = ("zeek", "suricata-verify", "ndpi")
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".pcap.zst")

# Files whose differences we expect, by base name: the reason printed with [known] labels.
KNOWN_FILES = {
    "tunnels__gre-sample.pcap": "GRE (IP protocol 47) is not decapsulated by allowscope: its "
    "packets count as other_proto and the inner SSH/DNS/NTP/ICMP connections are not seen",
    "tunnels__vxlan-encapsulated-http.pcap": "VXLAN (UDP 4789) is not decapsulated by allowscope: "
    "only the outer UDP flow is seen, not the inner HTTP connection",
    "tunnels__Teredo.pcap": "Teredo (IPv6 in UDP 3544) is not decapsulated by allowscope: the "
    "inner IPv6 connections (ICMPv6, HTTP to ipv6.google.com) are not seen",
}
# UDP ports that carry a tunnel allowscope does not decode, to label files not in KNOWN_FILES.
TUNNEL_PORTS = {4789: "VXLAN", 3544: "Teredo", 6081: "Geneve", 2152: "GTP-U", 4500: "IPsec NAT-T"}

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
                 "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"]


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
        fno, ip4s, ip6s, ip4d, ip6d, tsp, tdp, usp, udp_ = vals
        if len(ip4s) + len(ip6s) != 1:
            nested += len(ip4s) + len(ip6s) > 1
            portless += len(ip4s) + len(ip6s) == 0
            continue
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
        if not os.path.exists(path):
            issues.append((FAILURE, "listed in the manifest but missing on disk"))
            res = {"failures": [], "flows": [], "summary": None}
        else:
            res = run_allowscope(args.bin, path, args.timeout)
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
