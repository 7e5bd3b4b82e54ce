#!/usr/bin/env python3
"""Scores a blocklist against the ground truth of gen_authlog.py or bench/gen_shapes.py.

usage: score.py TRUTH.json BLOCKLIST.txt [ALERTS.json]
Prints recall per attacker class the truth has (fast, slow, botnet, stuffing), precision
(listed addresses that are attackers), benign addresses listed, and, given the alerts, how many
anomalous logins were alerted on, how many benign accounts got a history alert, and which
rules name the addresses of each attacker class.
"""
import json
import sys

truth = json.load(open(sys.argv[1]))
listed = {line.strip() for line in open(sys.argv[2]) if line.strip()}
attackers = set()
for cls in ("fast", "slow", "botnet", "stuffing"):
    if cls not in truth:
        continue
    ips = set(truth[cls])
    attackers |= ips
    found = len(ips & listed)
    print(f"recall {cls:7s} {found / max(1, len(ips)):.3f}  ({found}/{len(ips)})")
true_pos = len(listed & attackers)
print(f"precision      {true_pos / max(1, len(listed)):.3f}  ({true_pos}/{len(listed)} listed)")
benign = set(truth["benign_ips"]) | {a["ip"] for a in truth.get("anomalous_login", [])}
print(f"benign listed  {len(listed & benign)}")
if len(sys.argv) > 3:
    alerts = json.load(open(sys.argv[3]))["alerts"]
    by_rule = {}
    for a in alerts:
        by_rule.setdefault(a["rule"], []).append(a)
    anomalous_users = {a["user"] for a in truth.get("anomalous_login", [])}
    for rule in ("new-country", "impossible-travel", "unusual-hour"):
        users = {a["entity"] for a in by_rule.get(rule, [])}
        print(f"{rule:18s} alerts {len(users):4d}, on accounts with an anomalous login "
              f"{len(users & anomalous_users)}/{len(anomalous_users)}")
    brute = {a["entity"] for r in ("brute-force", "root-login-attempts", "password-spraying")
             for a in by_rule.get(r, [])}
    print(f"benign addresses with a brute-force alert {len(brute & benign)}")
    # Which rules name each class's addresses (as the alert's entity, campaigns aside).
    for cls in ("fast", "slow", "botnet", "stuffing"):
        if cls not in truth:
            continue
        ips = set(truth[cls])
        named = {rule: len(ips & {a["entity"] for a in found}) for rule, found in by_rule.items()}
        named = {rule: n for rule, n in sorted(named.items()) if n}
        print(f"{cls} addresses named by rule: " + (", ".join(f"{r} {n}" for r, n in named.items()) or "none"))
