#!/usr/bin/env python3
"""SMTP client cases for the end-to-end tests, written with Python's standard library
(smtplib, socket, ssl) so that the server is judged by a client nobody here wrote.

Each case prints one JSON object on stdout: what the server answered. The Rust tests
assert on it and on what the store holds afterwards.
"""
import argparse
import base64
import json
import socket
import smtplib
import ssl
import sys
import threading
import time

HOST = "127.0.0.1"


def tls_context():
    # The test server uses its self-signed certificate: encryption without verification.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def reply(resp):
    code, msg = resp
    return [code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)]


def submission(args, login=None):
    s = smtplib.SMTP(HOST, args.submission, timeout=30)
    s.ehlo("client.test")
    s.starttls(context=tls_context())
    s.ehlo("client.test")
    if login:
        s.user, s.password = login, args.password
        code, msg = s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
    return s


def transaction(s, sender, rcpts, message, mail_options=(), rcpt_options=()):
    """MAIL, RCPT..., DATA step by step, keeping every reply."""
    # Let non-ASCII addresses reach the server as UTF-8 (whether or not SMTPUTF8 is
    # asked for): judging them is the server's job.
    s.command_encoding = "utf-8"
    out = {"mail": reply(s.mail(sender, list(mail_options)))}
    out["rcpt"] = {r: reply(s.rcpt(r, list(rcpt_options))) for r in rcpts}
    if any(c == 250 for c, _ in out["rcpt"].values()) and out["mail"][0] == 250:
        out["data"] = reply(s.data(message))
    else:
        s.rset()
    return out


def read_message(args):
    if args.message_file:
        with open(args.message_file, "rb") as f:
            return f.read()
    return (f"From: <{args.sender}>\r\nTo: <{args.rcpt[0]}>\r\nSubject: test\r\n"
            f"Message-ID: <{time.time_ns()}@client.test>\r\n\r\nHello.\r\n").encode()


def case_submit(args):
    """STARTTLS + AUTH PLAIN, then one transaction."""
    s = submission(args, login=args.login)
    out = transaction(s, args.sender, args.rcpt, read_message(args),
                      mail_options=args.mail_option, rcpt_options=args.rcpt_option)
    s.quit()
    return out


def case_mx(args):
    """Plain MX session (another operator), one transaction."""
    s = smtplib.SMTP(HOST, args.smtp, timeout=30)
    s.ehlo("peer.test")
    out = transaction(s, args.sender, args.rcpt, read_message(args),
                      mail_options=args.mail_option, rcpt_options=args.rcpt_option)
    out["ehlo"] = sorted(s.esmtp_features.keys())
    s.quit()
    return out


def case_auth_before_tls(args):
    s = smtplib.SMTP(HOST, args.submission, timeout=30)
    s.ehlo("client.test")
    advertised = s.has_extn("auth")
    token = base64.b64encode(f"\0{args.login}\0{args.password}".encode()).decode()
    code, msg = s.docmd("AUTH", "PLAIN " + token)
    mail = s.docmd("MAIL", f"FROM:<{args.login}>")
    s.quit()
    return {"advertised": advertised, "auth": [code, msg.decode()], "mail_without_auth": reply(mail)}


def case_ehlo(args):
    """EHLO keywords on each listener, before and after TLS."""
    out = {}
    s = smtplib.SMTP(HOST, args.submission, timeout=30)
    s.ehlo("client.test")
    out["submission_plain"] = sorted(s.esmtp_features.keys())
    s.starttls(context=tls_context())
    s.ehlo("client.test")
    out["submission_tls"] = sorted(s.esmtp_features.keys())
    out["auth_mechanisms"] = s.esmtp_features.get("auth", "").split()
    out["size"] = s.esmtp_features.get("size", "")
    s.quit()
    s = smtplib.SMTP_SSL(HOST, args.submissions, timeout=30, context=tls_context())
    s.ehlo("client.test")
    out["submissions"] = sorted(s.esmtp_features.keys())
    s.quit()
    s = smtplib.SMTP(HOST, args.smtp, timeout=30)
    s.ehlo("client.test")
    out["mx"] = sorted(s.esmtp_features.keys())
    s.quit()
    return out


def case_submissions(args):
    """Implicit TLS (port 465 style) + AUTH LOGIN."""
    s = smtplib.SMTP_SSL(HOST, args.submissions, timeout=30, context=tls_context())
    s.ehlo("client.test")
    s.user, s.password = args.login, args.password
    auth = reply(s.auth("LOGIN", s.auth_login, initial_response_ok=False))
    out = transaction(s, args.sender, args.rcpt, read_message(args))
    out["auth"] = auth
    s.quit()
    return out


def case_bad_login(args):
    s = submission(args)
    try:
        s.login(args.login, "wrong password")
        return {"auth": [235, "accepted"]}
    except smtplib.SMTPAuthenticationError as e:
        return {"auth": [e.smtp_code, e.smtp_error.decode()]}


# --- raw socket cases: byte-exact control over what is sent -------------------------------

class Raw:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """One (possibly multi-line) reply: [code, [lines]]."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return [int(lines[-1][:3]), [l[4:] for l in lines]]

    def replies_until_quiet(self, quiet=1.5):
        """Every reply the server sends until it has been silent for `quiet` seconds."""
        out = []
        self.sock.settimeout(quiet)
        try:
            while True:
                out.append(self.reply())
        except (socket.timeout, EOFError, ConnectionError):
            pass
        return out

    def closed(self, wait=3):
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True
        except socket.timeout:
            return False


def case_pipelining(args):
    """RFC 2920: the whole transaction in two writes."""
    r = Raw(args.smtp)
    greeting = r.reply()
    head = f"EHLO peer.test\r\nMAIL FROM:<{args.sender}>\r\n"
    head += "".join(f"RCPT TO:<{rc}>\r\n" for rc in args.rcpt) + "DATA\r\n"
    r.send(head.encode())
    replies = [r.reply() for _ in range(3 + len(args.rcpt))]
    r.send(read_message(args) + b".\r\nQUIT\r\n")
    replies += [r.reply(), r.reply()]
    return {"greeting": greeting[0], "codes": [c for c, _ in replies]}


def case_bdat(args):
    """RFC 3030 CHUNKING: two chunks, the second pipelined with LAST, then QUIT."""
    msg = read_message(args)
    cut = len(msg) // 2
    r = Raw(args.smtp)
    r.reply()
    r.send(f"EHLO peer.test\r\nMAIL FROM:<{args.sender}>\r\nRCPT TO:<{args.rcpt[0]}>\r\n".encode())
    codes = [r.reply()[0] for _ in range(3)]
    r.send(f"BDAT {cut}\r\n".encode() + msg[:cut] + f"BDAT {len(msg) - cut} LAST\r\n".encode() + msg[cut:] + b"QUIT\r\n")
    codes += [r.reply()[0] for _ in range(3)]
    return {"codes": codes}


SMUGGLE_VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-cr": b"\r.\r",
}


def case_smuggle(args):
    """SMTP smuggling: a fake end of data followed by a second, forged transaction."""
    fake_end = SMUGGLE_VARIANTS[args.variant]
    r = Raw(args.smtp)
    r.reply()
    r.send(f"EHLO peer.test\r\nMAIL FROM:<{args.sender}>\r\nRCPT TO:<{args.rcpt[0]}>\r\nDATA\r\n".encode())
    codes = [r.reply()[0] for _ in range(4)]
    body = (b"Subject: legit\r\n\r\nhello" + fake_end +
            f"MAIL FROM:<ceo@{args.forged_domain}>\r\nRCPT TO:<{args.rcpt[0]}>\r\nDATA\r\n".encode() +
            b"Subject: smuggled\r\n\r\nforged\r\n.\r\n")
    r.send(body)
    after = r.replies_until_quiet()
    r.send(b"NOOP\r\n")
    noop = r.reply()
    return {"before_data": codes, "after_body": [[c, l] for c, l in after], "noop": noop[0]}


def case_starttls_inject(args):
    """CVE-2011-0411: commands sent in plaintext right behind STARTTLS must not run."""
    r = Raw(args.submission)
    r.reply()
    r.send(b"EHLO client.test\r\n")
    r.reply()
    r.send(b"STARTTLS\r\nRSET\r\nNOOP injected\r\n")
    starttls = r.reply()
    tls = tls_context().wrap_socket(r.sock, server_hostname="mx.test")
    r.sock, r.buf = tls, b""
    r.send(b"EHLO client.test\r\n")
    first = r.reply()
    rest = r.replies_until_quiet(1.0)
    return {"starttls": starttls[0], "first_after_tls": first, "extra": rest}


def case_size(args):
    """SIZE declared too big at MAIL, then a body too big without SIZE."""
    s = smtplib.SMTP(HOST, args.smtp, timeout=30)
    s.ehlo("peer.test")
    limit = int(s.esmtp_features["size"])
    declared = reply(s.mail(args.sender, [f"SIZE={limit + 1}"]))
    s.rset()
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (limit // 1000 + 10)
    out = transaction(s, args.sender, args.rcpt, big)
    s.noop()
    s.quit()
    return {"limit": limit, "declared": declared, "sent": len(big), **out}


def case_errors(args):
    """Unknown commands, syntax errors, an over-long line, then the error limit."""
    r = Raw(args.smtp)
    r.reply()
    out = {}
    r.send(b"EHLO peer.test\r\n"); r.reply()
    r.send(b"XYZZY\r\n"); out["unknown"] = r.reply()[0]
    r.send(b"MAIL FROM:nobracket@x.fr\r\n"); out["syntax"] = r.reply()[0]
    r.send(b"RCPT TO:<a@b.fr>\r\n"); out["sequence"] = r.reply()[0]
    r.send(b"NOOP " + b"x" * 20000 + b"\r\n"); out["too_long"] = r.reply()
    r.send(b"\x00\xff\xfe garbage\r\n"); out["garbage"] = r.reply()[0]
    r.send(b"NOOP\r\n"); out["still_alive"] = r.reply()[0]
    codes = []
    for _ in range(40):
        try:
            r.send(b"BOGUS\r\n")
            codes.append(r.reply()[0])
        except (EOFError, ConnectionError):
            break
        if codes[-1] == 421:
            break
    out["until_close"] = codes
    out["closed"] = r.closed()
    return out


def case_too_many_rcpts(args):
    """Distinct recipients until the limit: the ones past it get 452 (RFC 5321 §4.5.3.1.8)."""
    s = submission(args, login=args.login)
    s.mail(args.sender)
    codes = [s.rcpt(rc)[0] for rc in args.rcpt]
    s.quit()
    return {"codes": codes}


def numbered_message(sender, rcpt, n, size=2000):
    body = "".join(f"line {i} of message {n}\r\n" for i in range(size // 30))
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@client.test>\r\n\r\n{body}").encode()


def case_parallel(args):
    """N messages over C parallel connections (several messages per connection)."""
    acked, errors = [], []
    lock = threading.Lock()

    def worker(w):
        s = smtplib.SMTP(HOST, args.smtp, timeout=60)
        s.ehlo(f"peer{w}.test")
        for n in range(w, args.count, args.connections):
            try:
                s.sendmail(args.sender, args.rcpt, numbered_message(args.sender, args.rcpt[0], n))
                with lock:
                    acked.append(n)
            except Exception as e:  # noqa: BLE001 - reported to the test
                with lock:
                    errors.append(f"{n}: {e!r}")
        s.quit()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"acked": sorted(acked), "errors": errors}


def case_durability(args):
    """Sends until the server dies. Each 250 is appended to --ack-file at once (flushed),
    and the message in flight on each connection to --inflight-file, so the test knows
    exactly what was acknowledged when it killed the server."""
    ack = open(args.ack_file, "a", buffering=1)
    inflight = open(args.inflight_file, "a", buffering=1)
    lock = threading.Lock()

    def worker(w):
        try:
            s = smtplib.SMTP(HOST, args.smtp, timeout=20)
            s.ehlo(f"peer{w}.test")
            for n in range(w, args.count, args.connections):
                with lock:
                    inflight.write(f"{n}\n")
                s.sendmail(args.sender, args.rcpt, numbered_message(args.sender, args.rcpt[0], n, 4000))
                with lock:
                    ack.write(f"{n}\n")
        except Exception:  # noqa: BLE001 - the server is killed on purpose
            return

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"done": True}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--smtp", type=int)
    p.add_argument("--submission", type=int)
    p.add_argument("--submissions", type=int)
    p.add_argument("--password")
    p.add_argument("--login")
    p.add_argument("--sender", default="")
    p.add_argument("--rcpt", action="append", default=[])
    p.add_argument("--mail-option", action="append", default=[])
    p.add_argument("--rcpt-option", action="append", default=[])
    p.add_argument("--message-file")
    p.add_argument("--variant", default="lf-dot-lf")
    p.add_argument("--forged-domain", default="forged.test")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--ack-file")
    p.add_argument("--inflight-file")
    args = p.parse_args()
    result = globals()["case_" + args.case.replace("-", "_")](args)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
