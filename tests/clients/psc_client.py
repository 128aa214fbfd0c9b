#!/usr/bin/env python3
"""Pro Santé Connect logins for the end-to-end tests, with Python's standard library:
smtplib AUTH XOAUTH2 / OAUTHBEARER on submission (STARTTLS) and submissions (implicit TLS),
imaplib AUTHENTICATE. Each case prints one JSON object: what the server answered.
"""
import argparse
import base64
import imaplib
import json
import smtplib
import socket
import ssl

HOST = "127.0.0.1"


def tls_context():
    # The test server uses its self-signed certificate: encryption without verification.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def sasl_message(mechanism, user, token):
    if mechanism == "XOAUTH2":
        return f"user={user}\x01auth=Bearer {token}\x01\x01"
    return f"n,a={user},\x01auth=Bearer {token}\x01\x01"


def smtp_login(args):
    if args.implicit:
        s = smtplib.SMTP_SSL(HOST, args.port, timeout=30, context=tls_context())
    else:
        s = smtplib.SMTP(HOST, args.port, timeout=30)
        s.ehlo("lps.test")
        s.starttls(context=tls_context())
    s.ehlo("lps.test")
    out = {"ehlo_auth": s.esmtp_features.get("auth", "")}
    message = sasl_message(args.mechanism, args.user, args.token)

    def authobject(challenge=None):
        # After a failure challenge (RFC 7628 §3.2.2) XOAUTH2 clients send an empty line,
        # OAUTHBEARER clients a lone %x01.
        if challenge is None:
            return message
        out["challenge"] = json.loads(challenge)
        return "" if args.mechanism == "XOAUTH2" else "\x01"

    try:
        code, resp = s.auth(args.mechanism, authobject, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as e:
        code, resp = e.smtp_code, e.smtp_error
    out["auth"] = [code, resp.decode()]
    # MAIL FROM the BAL is accepted only when the login opened that BAL (send-as).
    out["mail"] = list(s.mail(args.user))
    out["mail"][1] = out["mail"][1].decode()
    s.quit()
    return out


def smtp_before_tls(args):
    s = smtplib.SMTP(HOST, args.port, timeout=30)
    s.ehlo("lps.test")
    message = base64.b64encode(sasl_message("XOAUTH2", args.user, args.token).encode()).decode()
    code, resp = s.docmd("AUTH", "XOAUTH2 " + message)
    out = {"ehlo_auth": s.esmtp_features.get("auth", ""), "auth": [code, resp.decode()]}
    s.quit()
    return out


def imap_login(args):
    if args.implicit:
        m = imaplib.IMAP4_SSL(HOST, args.port, ssl_context=tls_context())
    else:
        m = imaplib.IMAP4(HOST, args.port)
        m.starttls(ssl_context=tls_context())
    out = {"capabilities": list(m.capabilities)}
    message = sasl_message(args.mechanism, args.user, args.token)
    try:
        typ, data = m.authenticate(args.mechanism, lambda challenge: message.encode())
        out["auth"] = [typ, data[0].decode() if data and data[0] else ""]
        typ, data = m.select("INBOX")
        out["select"] = [typ, data[0].decode() if data and data[0] else ""]
        m.logout()
    except imaplib.IMAP4.error as e:
        out["auth"] = ["NO", str(e)]
    return out


def imap_before_tls(args):
    sock = socket.create_connection((HOST, args.port), timeout=30)
    f = sock.makefile("rwb")
    greeting = f.readline().decode()
    message = base64.b64encode(sasl_message("XOAUTH2", args.user, args.token).encode()).decode()
    f.write(f"a1 AUTHENTICATE XOAUTH2 {message}\r\n".encode())
    f.flush()
    reply = f.readline().decode().strip()
    sock.close()
    return {"greeting": greeting.strip(), "auth": reply}


CASES = {
    "smtp-login": smtp_login,
    "smtp-before-tls": smtp_before_tls,
    "imap-login": imap_login,
    "imap-before-tls": imap_before_tls,
}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--mechanism", default="XOAUTH2")
    parser.add_argument("--user", required=True)
    parser.add_argument("--token", required=True)
    print(json.dumps(CASES[parser.parse_args().case](parser.parse_args())))
