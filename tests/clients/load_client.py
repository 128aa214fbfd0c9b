#!/usr/bin/env python3
"""Clients for the fault tests (database outage, disk full, kill -9 torture), written with
Python's smtplib and imaplib. They behave like real peers: an MTA keeps a message it was
answered 4xx for and tries again (on another node when one is given), an IMAP client
reconnects and resumes. Every observation is written as one JSON line to --events, flushed
at once, so that the test can judge what was acknowledged even if this process is killed."""
import argparse
import imaplib
import json
import os
import smtplib
import socket
import ssl
import sys
import threading
import time

HOST = "127.0.0.1"


class Events:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, **kv):
        kv["t"] = time.time()
        with self.lock:
            self.f.write(json.dumps(kv) + "\n")


def message(args, n, rcpt):
    pad = "x" * 70
    body = "".join(f"line {i} of message {n} {pad}\r\n" for i in range(args.size // 90 + 1))
    return (f"From: <{args.sender}>\r\nTo: <{rcpt}>\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@load.test>\r\n\r\n{body}").encode()


def stopped(args):
    return args.stop_file and os.path.exists(args.stop_file)


def case_smtp(args):
    """Numbered messages over --connections connections spread over --ports; each number is
    retried (4xx, lost connection) until it gets a 250 or a 5xx, or until the stop file has
    existed for --give-up seconds. Events: {n, port, phase, code}."""
    events = Events(args.events)
    ports = [int(p) for p in args.ports.split(",")]

    def worker(w):
        k = w
        s = None
        n = args.first + w
        while n < args.first + args.count and not stopped(args):
            rcpt = args.rcpt[n % len(args.rcpt)]
            stop_seen = None
            while True:
                if stopped(args):
                    stop_seen = stop_seen or time.time()
                    if time.time() - stop_seen > args.give_up:
                        events.write(n=n, phase="gave-up", code=-2, port=0)
                        return
                port = ports[k % len(ports)]
                phase = "connect"
                try:
                    if s is None:
                        s = smtp_session(args, port, w)
                    phase = "mail"
                    code, _ = s.mail(args.sender)
                    if code == 250:
                        phase = "rcpt"
                        code, _ = s.rcpt(rcpt)
                    if code == 250:
                        phase = "data"
                        code, _ = s.data(message(args, n, rcpt))
                    events.write(n=n, port=port, phase=phase, code=code)
                    if code == 250 or code >= 500:
                        break
                    s.rset()
                except (OSError, smtplib.SMTPException) as e:
                    code = getattr(e, "smtp_code", -1)
                    events.write(n=n, port=port, phase=phase, code=code, error=repr(e)[:200])
                    try:
                        s and s.close()
                    except OSError:
                        pass
                    s = None
                    k += 1  # the next node, as an MTA tries the next MX
                time.sleep(0.2)
            n += args.connections
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"done": True}))


def tls_context(cert=None, key=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        # An operator's MTA of the trust space shows its certificate (mutual TLS).
        ctx.load_cert_chain(cert, key)
    return ctx


def smtp_session(args, port, w):
    """A connection as the load wants it: plain, STARTTLS with a client certificate (an
    operator's MTA on the MX), or STARTTLS + AUTH (a practitioner's software on submission)."""
    s = smtplib.SMTP(HOST, port, timeout=args.timeout)
    s.ehlo(f"peer{w}.test")
    if args.starttls:
        s.starttls(context=tls_context(args.cert, args.key))
        s.ehlo(f"peer{w}.test")
    if args.user:
        s.login(args.user, args.password)
    return s


def imap_login(port, args):
    m = imaplib.IMAP4(HOST, port, timeout=args.timeout)
    m.starttls(ssl_context=tls_context())
    m.login(args.user, args.password)
    return m


def case_imap_probe(args):
    """Logs in, prints READY, then for each line on stdin: SELECT INBOX on that session and
    LOGIN on a new one; prints the answers as JSON."""
    port = int(args.ports.split(",")[0])
    m = imap_login(port, args)
    print("READY", flush=True)
    for _ in sys.stdin:
        out = {}
        try:
            typ, data = m.select("INBOX")
            out["select"] = f"{typ} {data[0].decode(errors='replace') if data and data[0] else ''}"
        except imaplib.IMAP4.error as e:
            out["select"] = f"NO {e}"
        except OSError as e:
            out["select"] = f"lost {e!r}"
        try:
            imap_login(port, args).logout()
            out["login"] = "OK"
        except imaplib.IMAP4.error as e:
            out["login"] = f"NO {e}"
        except OSError as e:
            out["login"] = f"lost {e!r}"
        print(json.dumps(out), flush=True)


def watch_once(args, port, events, state):
    """One IMAP session: SELECT INBOX, fetch what is new, IDLE until EXISTS, repeat."""
    m = imap_login(port, args)
    typ, data = m.select("INBOX", readonly=True)
    validity = m.untagged_responses.get("UIDVALIDITY", [b"0"])[-1]
    events.write(kind="session", port=port, uidvalidity=int(validity))
    while not stopped(args):
        typ, data = m.uid("FETCH", f"{state['last'] + 1}:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, hdr = item
            uid = int(head.split(b"UID ")[1].split()[0].rstrip(b")"))
            if uid <= state["last"]:
                continue  # `N:*` returns the last message when nothing is newer
            mid = hdr.decode(errors="replace").split(":", 1)[-1].strip()
            events.write(kind="seen", port=port, uid=uid, mid=mid, idle=state["idle"])
            state["last"] = uid
        # IDLE (RFC 2177) until something is announced, at most --idle-secs.
        tag = m._new_tag().decode()
        m.send(f"{tag} IDLE\r\n".encode())
        if not m.readline().startswith(b"+"):
            raise OSError("IDLE refused")
        m.sock.settimeout(args.idle_secs)
        state["idle"] = False
        try:
            while True:
                line = m.readline()
                if not line:
                    raise OSError("connection closed")
                if b"EXISTS" in line:
                    state["idle"] = True
                    break
        except socket.timeout:
            pass
        m.sock.settimeout(args.timeout)
        m.send(b"DONE\r\n")
        while True:
            line = m.readline()
            if not line:
                raise OSError("connection closed")
            if line.startswith(tag.encode()):
                break
    m.logout()


def case_imap_watch(args):
    """Follows a BAL's INBOX across nodes until the stop file exists: on a lost connection,
    reconnects to the next node and resumes after the last UID seen. Events: every message
    seen with its UID and Message-ID, and whether an IDLE announcement led to it."""
    events = Events(args.events)
    ports = [int(p) for p in args.ports.split(",")]
    state = {"last": 0, "idle": False}
    k = 0
    while not stopped(args):
        port = ports[k % len(ports)]
        try:
            watch_once(args, port, events, state)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as e:
            events.write(kind="lost", port=port, error=repr(e)[:200])
            k += 1
            time.sleep(0.3)
    print(json.dumps({"done": True}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--ports", required=True)
    p.add_argument("--events")
    p.add_argument("--sender", default="lab@labo.mssante.fr")
    p.add_argument("--rcpt", action="append", default=[])
    p.add_argument("--count", type=int, default=10**9)
    p.add_argument("--first", type=int, default=0, help="number of the first message")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--size", type=int, default=2000)
    p.add_argument("--stop-file")
    p.add_argument("--give-up", type=float, default=120)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--idle-secs", type=float, default=5)
    args = p.parse_args()
    globals()["case_" + args.case.replace("-", "_")](args)


if __name__ == "__main__":
    main()
