#!/usr/bin/env python3
"""Auth logs of attack shapes the shared generator does not draw, with ground truth.

usage: gen_shapes.py LINES OUTPUT [--seed N] [--start 'YYYY-mm-dd HH:MM:SS']
                     [--flavor debian|rhel|freebsd|keys|mixed] [--slow N] [--slow-pace MIN-MAX]
                     [--slow-names list|random|same]
                     [--stuffing N] [--stuffing-hours H] [--tries MIN-MAX]
                     [--shared-share F] [--near-miss F] [--users N]

Python 3 standard library only; deterministic for a seed. Truth goes to OUTPUT.truth.json:
  fast     : brute-force bursts from one address (a few per day)
  slow     : low-and-slow sources, one try every --slow-pace minutes (default 6-12) for 1-8
             hours, a different (often nonexistent) account name each time (--slow-names
             same: one account every time)
  stuffing : a credential-stuffing campaign against accounts that exist: --stuffing
             addresses (default 1000), --tries wrong passwords each (default 1-3), spread
             over --stuffing-hours (default 36),
             --shared-share of them (default 0.4) from five shared /24 networks,
             --near-miss of the names (default 0.15) one edit away from a real account
  benign_ips : every address of normal traffic: users at home, users who mistype once or
             twice a day and then log in, users who forget a password and try four times
             before they get it, travellers logging in from abroad (some mistype there
             first), users on a new device or network who mistype before they get in, an
             office behind one NAT address, monitoring hosts that open and close connections
             all day, scanners; --users accounts (default 48)
The line forms follow --flavor: Debian/Ubuntu OpenSSH with PAM, RHEL (sshd-session, PAM
errors inside sshd, keyboard-interactive), FreeBSD (`error: PAM:` lines), a server without
passwords (keys: `PasswordAuthentication no` and `LogLevel VERBOSE`, so an attempt leaves no
`Failed password` line, only the account it named and the connection's end, and users' clients
offer keys that are refused before the right one), or a mix of the first three. Exactly
LINES lines are written, sorted by time; the span grows with LINES (about 0.5 s a line).
"""
import argparse
import datetime as dt
import json
import random

FIRST = ("anna ben carla dario elif farid greta hugo ines jonas kira lars mona nils olga "
         "pavel quinn rosa sven tara umar vera walt xena yusuf zora adil bea cem dana "
         "emil fay gus hana ivo jana kemal lea milo nora oskar pia rami sara timo uma").split()
INVALID = ("admin test user ubuntu oracle postgres git guest pi support mysql deploy "
           "jenkins hadoop nagios ansible centos dev tomcat ftp backup elastic www "
           "operator sysadmin webmaster info sales office scanner").split()


def public_ip(rng, used, net=None):
    tries = 0
    while True:
        tries += 1
        if net and tries > 2000:  # the network is full: anywhere else
            net = None
        if net:
            ip = f"{net}.{rng.randint(2, 254)}"
        else:
            a = rng.randint(1, 223)
            if a in (10, 100, 127, 169, 172, 192, 198, 203):
                continue
            ip = f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if ip not in used:
            used.add(ip)
            return ip


def near_miss(rng, name):
    kind = rng.randrange(4)
    if kind == 0:
        return name + str(rng.randint(1, 99))
    if kind == 1 and len(name) > 3:
        i = rng.randrange(len(name) - 1)
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if kind == 2:
        return name[0] + "." + name[1:]
    return name.capitalize()


class Log:
    def __init__(self, rng, flavor, start):
        self.rng = rng
        self.flavor = flavor
        self.start = start
        self.lines = []
        self.pid = 2000

    def newpid(self):
        self.pid = self.pid + self.rng.randint(1, 30) if self.pid < 4_000_000 else 2000
        return self.pid

    def emit(self, t, program, pid, message):
        self.lines.append((t, program, pid, message))

    def style(self):
        if self.flavor == "mixed":
            return self.rng.choice(["debian", "rhel", "freebsd"])
        return self.flavor

    def failure(self, t, user, ip, exists, method="password"):
        """One wrong password (or key) for `user` from `ip`, as the flavour logs it."""
        pid, port, style = self.newpid(), self.rng.randint(1024, 65535), self.style()
        if style == "keys":
            self.key_failure(t, pid, port, user, ip, exists)
            return
        prog = "sshd-session" if style == "rhel" else "sshd"
        invalid = "" if exists else "invalid user "
        if not exists:
            self.emit(t, prog, pid, f"Invalid user {user} from {ip} port {port}")
        if style == "freebsd":
            who = user if exists else f"illegal user {user}"
            self.emit(t + 0.2, prog, pid, f"error: PAM: Authentication error for {who} from {ip}")
            self.emit(t + 0.3, prog, pid,
                      f"Failed keyboard-interactive/pam for {invalid}{user} from {ip} port {port} ssh2")
        else:
            if exists and style == "debian":
                self.emit(t + 0.1, prog, pid,
                          f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                          f"tty=ssh ruser= rhost={ip}  user={user}")
            self.emit(t + 0.2, prog, pid,
                      f"Failed {method} for {invalid}{user} from {ip} port {port} ssh2")
        self.emit(t + 0.5, prog, pid,
                  f"Connection closed by {'authenticating' if exists else 'invalid'} user "
                  f"{user} {ip} port {port} [preauth]")

    def key(self):
        return "SHA256:" + "".join(self.rng.choice("ABCDEFabcdef0123456789") for _ in range(20))

    def key_failure(self, t, pid, port, user, ip, exists):
        """A try on a server without passwords: the account named, keys refused, the end."""
        if not exists:
            self.emit(t, "sshd", pid, f"Invalid user {user} from {ip} port {port}")
            self.emit(t + 0.3, "sshd", pid, f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]")
            self.emit(t + 0.3, "sshd", pid, f"Disconnected from invalid user {user} {ip} port {port} [preauth]")
            return
        for i in range(self.rng.randint(0, 2)):
            self.emit(t + 0.1 * i, "sshd", pid,
                      f"Failed publickey for {user} from {ip} port {port} ssh2: RSA {self.key()}")
        end = self.rng.choice(["Connection closed by", "Disconnected from"])
        self.emit(t + 0.5, "sshd", pid, f"{end} authenticating user {user} {ip} port {port} [preauth]")

    def success(self, t, user, ip, method=None):
        pid, port = self.newpid(), self.rng.randint(1024, 65535)
        if self.flavor == "keys":
            method = "publickey"
            # The client offers the keys it holds until one opens the account.
            for i in range(self.rng.choice([0, 0, 1, 2, 3])):
                self.emit(t - 0.2 + 0.05 * i, "sshd", pid,
                          f"Failed publickey for {user} from {ip} port {port} ssh2: ECDSA {self.key()}")
        method = method or self.rng.choice(["publickey", "password"])
        key = " ED25519 SHA256:" + "".join(self.rng.choice("ABCDEFabcdef0123456789") for _ in range(20))
        self.emit(t, "sshd", pid, f"Accepted {method} for {user} from {ip} port {port} ssh2"
                  + (":" + key if method == "publickey" else ""))
        self.emit(t + 0.1, "sshd", pid,
                  f"pam_unix(sshd:session): session opened for user {user}(uid=1000) by (uid=0)")
        end = t + self.rng.uniform(60, 3600)
        self.emit(end, "sshd", pid, f"Disconnected from user {user} {ip} port {port}")
        self.emit(end + 0.1, "sshd", pid, f"pam_unix(sshd:session): session closed for user {user}")

    def probe(self, t, ip):
        pid, port = self.newpid(), self.rng.randint(1024, 65535)
        self.emit(t, "sshd", pid, f"Connection closed by {ip} port {port} [preauth]")

    def filler(self, t):
        pid = self.newpid()
        choice = self.rng.randrange(3)
        if choice == 0:
            self.emit(t, "CRON", pid, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
            self.emit(t + 1, "CRON", pid, "pam_unix(cron:session): session closed for user root")
        elif choice == 1:
            self.emit(t, "systemd-logind", None, f"New session {pid} of user {self.rng.choice(FIRST)}.")
        else:
            self.emit(t, "sudo", None, f"{self.rng.choice(FIRST)} : TTY=pts/0 ; PWD=/home ; USER=root ; COMMAND=/usr/bin/apt update")

    def write(self, path, host, limit):
        self.lines.sort(key=lambda x: x[0])
        with open(path, "w") as out:
            for t, prog, pid, msg in self.lines[:limit]:
                stamp = (self.start + dt.timedelta(seconds=t)).strftime("%b %e %H:%M:%S")
                tag = f"{prog}[{pid}]" if pid is not None else prog
                out.write(f"{stamp} {host} {tag}: {msg}\n")
        return min(limit, len(self.lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("lines", type=int)
    p.add_argument("output")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", default="2026-05-04 00:00:00")
    p.add_argument("--flavor", default="mixed", choices=["debian", "rhel", "freebsd", "keys", "mixed"])
    p.add_argument("--slow", type=int, default=60)
    p.add_argument("--slow-pace", default="6-12")
    p.add_argument("--slow-names", default="list", choices=["list", "random", "same"],
                   help="names low-and-slow sources try: common attack names, made up, or "
                        "one account (root or a user of the host) every time")
    p.add_argument("--stuffing", type=int, default=1000)
    p.add_argument("--stuffing-hours", type=float, default=36)
    p.add_argument("--tries", default="1-3")
    p.add_argument("--users", type=int, default=len(FIRST))
    p.add_argument("--shared-share", type=float, default=0.4)
    p.add_argument("--near-miss", type=float, default=0.15)
    a = p.parse_args()
    if a.lines < 50_000:
        p.error("LINES must be at least 50000 (the attacks need room)")
    rng = random.Random(a.seed)
    start = dt.datetime.strptime(a.start, "%Y-%m-%d %H:%M:%S")
    span = a.lines * 0.5
    log = Log(rng, a.flavor, start)
    used = set()
    truth = {"fast": [], "slow": [], "stuffing": [], "benign_ips": [], "flavor": a.flavor,
             "seed": a.seed}

    # Accounts and their owners' addresses.
    names = FIRST[:a.users] + [f"{rng.choice(FIRST)}.{rng.choice(FIRST)}{rng.randint(1, 99)}"
                               for _ in range(max(0, a.users - len(FIRST)))]
    users = [f"{n}{rng.randint(1, 9)}" if rng.random() < 0.3 else n for n in names]
    users = list(dict.fromkeys(users))
    homes = {u: [public_ip(rng, used) for _ in range(rng.randint(1, 2))] for u in users}
    office = public_ip(rng, used)
    office_users = set(rng.sample(users, len(users) // 3))
    monitors = [public_ip(rng, used) for _ in range(2)]
    truth["benign_ips"] += [ip for ips in homes.values() for ip in ips] + [office] + monitors

    # Normal days: logins, a mistype or two, a forgetful user, travellers, monitoring.
    day = 86400.0
    t = 0.0
    while t < span:
        for u in users:
            for _ in range(rng.randint(1, 4)):
                when = t + rng.uniform(7 * 3600, 20 * 3600)
                ip = office if u in office_users and rng.random() < 0.6 else rng.choice(homes[u])
                if rng.random() < 0.15:
                    for k in range(rng.randint(1, 2)):
                        log.failure(when - 30 + 10 * k, u, ip, True)
                log.success(when, u, ip, "password")
        forgetful = rng.choice(users)
        when = t + rng.uniform(8 * 3600, 18 * 3600)
        ip = rng.choice(homes[forgetful])
        for k in range(4):
            log.failure(when + 20 * k, forgetful, ip, True)
        log.success(when + 200, forgetful, ip, "password")
        for _ in range(max(1, len(users) // 40)):
            traveller = rng.choice(users)
            abroad = public_ip(rng, used)
            truth["benign_ips"].append(abroad)
            when = t + rng.uniform(9 * 3600, 22 * 3600)
            if rng.random() < 0.3:
                log.failure(when - 40, traveller, abroad, True)
            log.success(when, traveller, abroad, "password")
        # A new phone, a cafe, a hotel: a new address, a slip or two, then in.
        for _ in range(max(1, len(users) // 16)):
            u = rng.choice(users)
            fresh = public_ip(rng, used)
            truth["benign_ips"].append(fresh)
            when = t + rng.uniform(7 * 3600, 23 * 3600)
            for k in range(rng.randint(1, 3)):
                name = near_miss(rng, u) if rng.random() < 0.2 else u
                log.failure(when + 15 * k, name, fresh, name == u)
            log.success(when + rng.uniform(60, 900), u, fresh, "password")
        for m in monitors:
            k = t
            while k < t + day and k < span:
                log.probe(k + rng.uniform(0, 5), m)
                k += 300
        t += day

    # Fast brute force: a few bursts a day.
    for _ in range(max(3, int(span / day * 4))):
        ip = public_ip(rng, used)
        truth["fast"].append(ip)
        when = rng.uniform(0, span - 3600)
        for k in range(rng.randint(20, 120)):
            exists = rng.random() < 0.3
            user = rng.choice(users) if exists else rng.choice(INVALID + ["root"])
            log.failure(when + k * rng.uniform(1, 5), user, ip, exists or user == "root")

    # Low and slow: one try every 6-12 minutes for 1-8 hours, a new name each time.
    low, high = (float(x) for x in a.slow_pace.split("-"))
    for _ in range(a.slow):
        ip = public_ip(rng, used)
        truth["slow"].append(ip)
        pace = rng.uniform(low, high) * 60
        hours = rng.uniform(1, 8)
        when = rng.uniform(0, max(1, span - hours * 3600))
        tries = max(6, int(hours * 3600 / pace))
        if a.slow_names == "same":
            names = [rng.choice(["root"] + users)] * tries
        elif a.slow_names == "random":
            syllables = ["ka", "lo", "mi", "ren", "tor", "vi", "san", "dre", "el", "om", "bu"]
            names = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
                     + (str(rng.randint(1, 999)) if rng.random() < 0.3 else "")
                     for _ in range(tries)]
        else:
            names = rng.sample(INVALID * 3 + users, min(tries, len(INVALID) * 3 + len(users)))
        for k, user in enumerate(names):
            exists = user in homes
            log.failure(when + k * pace + rng.uniform(-20, 20), user, ip, exists)

    # Credential stuffing of real accounts: many addresses, each 1-3 tries, over 36 hours.
    nets = [".".join(public_ip(rng, used).split(".")[:3]) for _ in range(5)]
    length = a.stuffing_hours * 3600
    begin = rng.uniform(0, max(1, span - length))
    fewest, most = (int(x) for x in a.tries.split("-"))
    for i in range(a.stuffing):
        net = rng.choice(nets) if rng.random() < a.shared_share else None
        ip = public_ip(rng, used, net)
        truth["stuffing"].append(ip)
        for _ in range(rng.randint(fewest, most)):
            victim = rng.choice(users)
            if rng.random() < a.near_miss:
                log.failure(begin + rng.uniform(0, length), near_miss(rng, victim), ip, False)
            else:
                log.failure(begin + rng.uniform(0, length), victim, ip, True)

    # Scanners and background noise until the line count is reached.
    while len(log.lines) < a.lines:
        when = rng.uniform(0, span)
        if rng.random() < 0.05:
            scanner = public_ip(rng, used)
            truth["benign_ips"].append(scanner)
            log.emit(when, "sshd", log.newpid(), f"Did not receive identification string from {scanner} port {rng.randint(1024, 65535)}")
        else:
            log.filler(when)

    written = log.write(a.output, "gw01", a.lines)
    with open(a.output + ".truth.json", "w") as out:
        json.dump(truth, out)
    print(f"{written} lines; fast {len(truth['fast'])}, slow {len(truth['slow'])}, "
          f"stuffing {len(truth['stuffing'])}, benign addresses {len(truth['benign_ips'])}")


if __name__ == "__main__":
    main()
