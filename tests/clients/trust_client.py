#!/usr/bin/env python3
"""SMTP client cases for the trust-space and relay tests, on Python's smtplib and ssl:
submission by a practitioner's software, and a peer operator's MTA on the MX (with or
without STARTTLS, with or without a client certificate).

Prints one JSON object: the server's replies, or the error that ended the session.
"""
import argparse
import json
import smtplib
import ssl
import sys


def reply(resp):
    code, msg = resp
    return [code, msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)]


def transaction(s, sender, rcpts, message, mail_options, rcpt_options):
    out = {"mail": reply(s.mail(sender, mail_options))}
    if out["mail"][0] != 250:
        s.rset()
        return out
    out["rcpt"] = {r: reply(s.rcpt(r, rcpt_options)) for r in rcpts}
    if any(c == 250 for c, _ in out["rcpt"].values()):
        out["data"] = reply(s.data(message))
    else:
        s.rset()
    return out


def submit(args, message):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP("127.0.0.1", args.port, timeout=30)
    s.ehlo("lps.test")
    s.starttls(context=ctx)
    s.ehlo("lps.test")
    s.login(args.user, args.password)
    out = transaction(s, args.sender, args.to, message, args.mail_opt, args.rcpt_opt)
    s.quit()
    return out


def mx(args, message):
    out = {}
    s = smtplib.SMTP(args.host, args.port, timeout=30)
    out["ehlo"] = reply(s.ehlo(args.helo))
    if args.starttls:
        ctx = ssl.create_default_context(cafile=args.ca) if args.ca else ssl.create_default_context()
        ctx.check_hostname = False
        if not args.ca:
            ctx.verify_mode = ssl.CERT_NONE
        if args.cert:
            ctx.load_cert_chain(args.cert, args.key)
        out["starttls"] = reply(s.starttls(context=ctx))
        s.ehlo(args.helo)
    out.update(transaction(s, args.sender, args.to, message, args.mail_opt, args.rcpt_opt))
    s.quit()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["submit", "mx"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--helo", default="mta.test")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--mail-opt", action="append", default=[])
    p.add_argument("--rcpt-opt", action="append", default=[])
    p.add_argument("--message-file", required=True)
    args = p.parse_args()
    with open(args.message_file, "rb") as f:
        message = f.read()
    try:
        out = submit(args, message) if args.case == "submit" else mx(args, message)
    except (smtplib.SMTPException, ssl.SSLError, OSError) as e:
        out = {"error": f"{type(e).__name__}: {e}"}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
