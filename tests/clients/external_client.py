#!/usr/bin/env python3
"""SASL EXTERNAL logins for the end-to-end tests, with Python's standard library and a TLS
client certificate: imaplib AUTHENTICATE EXTERNAL on IMAP (STARTTLS) and IMAPS, smtplib AUTH
EXTERNAL (and a raw `AUTH EXTERNAL =`) on submission and submissions. Each case prints one
JSON object: what the server advertised and answered.
"""
import argparse
import imaplib
import json
import smtplib
import ssl

HOST = "127.0.0.1"


def tls_context(args):
    # The test server uses its self-signed certificate: encryption without verification.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def imap_login(args):
    if args.implicit:
        m = imaplib.IMAP4_SSL(HOST, args.port, ssl_context=tls_context(args), timeout=30)
    else:
        m = imaplib.IMAP4(HOST, args.port, timeout=30)
        m.starttls(ssl_context=tls_context(args))
    typ, data = m.capability()
    out = {"caps": data[0].decode().split()}
    authzid = args.authzid.encode()
    try:
        typ, data = m.authenticate("EXTERNAL", lambda _challenge: authzid)
        out["auth"] = [typ, data[0].decode()]
        typ, data = m.select("INBOX")
        out["select"] = typ
    except imaplib.IMAP4.error as e:
        out["auth"] = ["NO", str(e)]
    m.logout()
    return out


def smtp_login(args):
    if args.implicit:
        s = smtplib.SMTP_SSL(HOST, args.port, timeout=30, context=tls_context(args))
    else:
        s = smtplib.SMTP(HOST, args.port, timeout=30)
        s.ehlo("app.test")
        s.starttls(context=tls_context(args))
    s.ehlo("app.test")
    out = {"ehlo_auth": s.esmtp_features.get("auth", "").split()}
    if args.raw:
        # RFC 4954 §4: "=" is an empty initial response (the server picks the bound BAL).
        code, resp = s.docmd("AUTH", "EXTERNAL =")
    else:
        try:
            code, resp = s.auth("EXTERNAL", lambda challenge=None: args.authzid,
                                initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code, resp = e.smtp_code, e.smtp_error
    out["auth"] = [code, resp.decode()]
    sender = args.sender or args.authzid
    if sender:
        code, resp = s.mail(sender)
        out["mail"] = [code, resp.decode()]
    s.quit()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["imap-login", "smtp-login"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--authzid", default="")
    p.add_argument("--sender", default="")
    p.add_argument("--raw", action="store_true")
    args = p.parse_args()
    out = imap_login(args) if args.case == "imap-login" else smtp_login(args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
