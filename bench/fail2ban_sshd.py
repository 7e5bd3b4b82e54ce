#!/usr/bin/env python3
"""How securify reads the lines fail2ban's own sshd test log annotates.

usage: fail2ban_sshd.py FAIL2BAN_SSHD_LOG [BIN] [-v]
  FAIL2BAN_SSHD_LOG: fail2ban's `fail2ban/tests/files/logs/sshd` (read in place; it is not part
                     of this repository)
  BIN: the securify binary (default target/release/securify)

Every log line after a `# failJSON: {...}` comment is annotated: `"match": true` with the
`host` a failure comes from, or `"match": false`. The whole file goes through `securify explain
--json` in order (lines of one sshd process are read together), and each annotated line is
checked: stored as a failure from that host; a failure or a scanner's notice from it; and, for
lines fail2ban says are no failure, whether they count as an attempt (`count` not 0).
Python 3 standard library only.
"""
import json
import subprocess
import sys
import tempfile

args = [a for a in sys.argv[1:] if a != "-v"]
verbose = "-v" in sys.argv
if not args:
    sys.exit(__doc__)
log = args[0]
binary = args[1] if len(args) > 1 else "target/release/securify"

lines, notes, pending = [], [], None
for line in open(log, encoding="utf-8", errors="replace").read().split("\n"):
    if line.startswith("# failJSON:"):
        pending = json.loads(line[len("# failJSON:"):])
    elif line.strip() and not line.startswith("#"):
        lines.append(line)
        notes.append(pending)
        pending = None

with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
    f.write("\n".join(lines) + "\n")
    f.flush()
    out = subprocess.run([binary, "explain", "--json", "--year", "2005", f.name],
                         capture_output=True, text=True, check=True).stdout
read = {r["line"]: r for r in map(json.loads, out.splitlines())}

annotated = failure = failure_or_scan = counted = negatives = wrongly = 0
for number, note in enumerate(notes, start=1):
    if note is None:
        continue
    r = read.get(number, {})
    fields = r.get("fields", {})
    client = fields.get("source_ip") or fields.get("remote_host")
    is_failure = r.get("outcome") == "failure"
    attempt = is_failure and fields.get("count", 1) > 0
    scan = r.get("event_type") in ("NO_IDENTIFICATION", "NEGOTIATION_FAILED")
    if note.get("match") and note.get("host"):
        annotated += 1
        same = client == note["host"]
        failure += is_failure and same
        failure_or_scan += (is_failure or scan) and same
        counted += attempt and same
        if verbose and not ((is_failure or scan) and same):
            print(f"not read as a failure from {note['host']}: {lines[number - 1]} "
                  f"-> {r.get('event_type')} {r.get('outcome')} {client}")
    elif not note.get("match"):
        negatives += 1
        wrongly += attempt
        if verbose and attempt:
            print(f"counted, fail2ban says no failure: {lines[number - 1]}")

print(f"lines annotated as a failure from a host: {annotated}")
print(f"  stored as a failure from that host:                 {failure}")
print(f"  a failure or a scanner's notice from that host:     {failure_or_scan}")
print(f"  counted there as an attempt (not told again):       {counted}")
print(f"lines annotated as no failure: {negatives}, counted as an attempt: {wrongly}")
