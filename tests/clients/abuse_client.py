#!/usr/bin/env python3
"""Password spraying against the IMAPS listener with Python's imaplib (tests/abuse_e2e.rs).

  abuse_client.py spray --imaps PORT --victim USER --password GOOD --other USER
                        --account-failures N --spray N --filter FILE --log FILE

From 127.0.0.1: N wrong passwords for the victim, then its right password; then one wrong
password for each of N made-up accounts (spraying), then the other user's right password.
From 127.0.0.2: the other user's right password. Finally the fail2ban filter's failregex is
applied to the server log. Prints one JSON object.
"""
import argparse
import imaplib
import json
import re
import socket
import ssl
import time

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


class SourcedIMAP4_SSL(imaplib.IMAP4_SSL):
    """imaplib with a chosen source address (imaplib has no parameter for it)."""

    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, ssl_context=CTX, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def login(port, source, user, password):
    """(answer, detail, seconds) of one LOGIN on a fresh connection."""
    conn = SourcedIMAP4_SSL("127.0.0.1", port, source)
    started = time.monotonic()
    try:
        typ, data = conn.login(user, password)
        answer, detail = typ, data[0].decode(errors="replace")
    except imaplib.IMAP4.error as e:
        answer, detail = "NO", str(e)
    elapsed = time.monotonic() - started
    try:
        conn.logout()
    except Exception:
        pass
    return [answer, detail, round(elapsed, 3)]


def fail2ban_hosts(filter_path, log_path):
    """Hosts the filter's failregex lines find in the log, with fail2ban's <HOST>."""
    regexes = []
    in_fail = False
    for line in open(filter_path, encoding="utf-8"):
        stripped = line.strip()
        if stripped.startswith("failregex"):
            in_fail = True
            stripped = stripped.split("=", 1)[1].strip()
        elif stripped.startswith("ignoreregex") or stripped.startswith("["):
            in_fail = False
            continue
        elif not line.startswith((" ", "\t")):
            in_fail = False
        if in_fail and stripped:
            regexes.append(stripped.replace("<HOST>", r"(?P<host>[0-9a-fA-F.:]+)"))
    hosts = {}
    for line in open(log_path, encoding="utf-8", errors="replace"):
        for rx in regexes:
            m = re.search(rx, line)
            if m:
                hosts[m.group("host")] = hosts.get(m.group("host"), 0) + 1
                break
    return {"regexes": len(regexes), "hosts": hosts}


def spray(args):
    out = {"victim_failures": [], "spray": []}
    for _ in range(args.account_failures):
        out["victim_failures"].append(login(args.imaps, "127.0.0.1", args.victim, "wrong password"))
    out["victim_right_password"] = login(args.imaps, "127.0.0.2", args.victim, args.password)
    for i in range(args.spray):
        out["spray"].append(login(args.imaps, "127.0.0.1", f"sprayed{i}@nowhere.example", "Summer2026!"))
    out["other_from_sprayer"] = login(args.imaps, "127.0.0.1", args.other, args.password)
    out["other_from_elsewhere"] = login(args.imaps, "127.0.0.2", args.other, args.password)
    out["fail2ban"] = fail2ban_hosts(args.filter, args.log)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["spray"])
    p.add_argument("--imaps", type=int, required=True)
    p.add_argument("--victim", required=True)
    p.add_argument("--other", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--account-failures", type=int, default=5)
    p.add_argument("--spray", type=int, default=10)
    p.add_argument("--filter", required=True)
    p.add_argument("--log", required=True)
    spray(p.parse_args())


if __name__ == "__main__":
    main()
