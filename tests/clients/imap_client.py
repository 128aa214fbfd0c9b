#!/usr/bin/env python3
"""IMAP client cases for the end-to-end tests, written with Python's imaplib (and raw
sockets where byte-exact control is needed). Each case prints one JSON object."""
import argparse
import imaplib
import json
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [text(x) for x in v]
    return v


def login(args, user=None):
    m = imaplib.IMAP4(HOST, args.imap)
    m.starttls(ssl_context=tls_context())
    m.login(user or args.user, args.password)
    return m


def case_starttls_login(args):
    m = imaplib.IMAP4(HOST, args.imap)
    before = sorted(m.capabilities)
    try:
        typ, data = m._simple_command("LOGIN", args.user, args.password)
        login_before = [typ, text(data)]
    except imaplib.IMAP4.error as e:
        login_before = ["NO", str(e)]
    m.starttls(ssl_context=tls_context())
    after = sorted(m.capabilities)
    typ, data = m.login(args.user, args.password)
    bad = imaplib.IMAP4(HOST, args.imap)
    bad.starttls(ssl_context=tls_context())
    try:
        bad.login(args.user, "wrong password")
        wrong = "OK"
    except imaplib.IMAP4.error as e:
        wrong = str(e)
    m.logout()
    s = imaplib.IMAP4_SSL(HOST, args.imaps, ssl_context=tls_context())
    typ2, _ = s.login(args.user, args.password)
    s.logout()
    return {"before_tls": before, "login_before_tls": login_before, "after_tls": after,
            "login": typ, "wrong_password": wrong, "imaps_login": typ2}


def case_read_inbox(args):
    """SELECT, FETCH, STORE, SEARCH, EXPUNGE on what SMTP delivered."""
    m = login(args)
    typ, data = m.select("INBOX")
    out = {"exists": int(data[0])}
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])")
    out["fetch"] = []
    for item in data:
        if isinstance(item, tuple):
            out["fetch"].append({"meta": text(item[0]), "body_hex": item[1].hex()})
    typ, data = m.uid("FETCH", "1:*", "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject)])")
    out["envelope"] = text([d for d in data if d != b")"])
    typ, data = m.search(None, "UNSEEN")
    out["unseen_before"] = text(data[0]).split()
    m.store("1", "+FLAGS", "(\\Seen $Important)")
    typ, data = m.search(None, "UNSEEN")
    out["unseen_after"] = text(data[0]).split()
    typ, data = m.search(None, "KEYWORD", "$Important")
    out["keyword"] = text(data[0]).split()
    typ, data = m.search(None, "SUBJECT", args.subject)
    out["subject_search"] = text(data[0]).split()
    typ, data = m.search(None, "BODY", args.body_word)
    out["body_search"] = text(data[0]).split()
    m.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    out["expunged"] = text(data)
    typ, data = m.select("INBOX")
    out["exists_after"] = int(data[0])
    m.logout()
    return out


def case_folders(args):
    """CREATE / LIST / RENAME / DELETE / APPEND / COPY / MOVE / STATUS / SUBSCRIBE."""
    m = login(args)
    out = {}
    out["create"] = m.create("Archives/2026")[0]
    out["create_dup"] = m.create("Archives/2026")[0]
    out["create_utf7"] = m.create("&AMk-t&AOk-")[0]  # "Été"
    typ, data = m.list('""', "*")
    out["list"] = sorted(text(data))
    msg = b"From: a@b.fr\r\nSubject: appended\r\nMessage-ID: <ap1@test>\r\n\r\nhello\r\n"
    typ, data = m.append("Archives/2026", "(\\Seen)", '"22-Nov-2026 10:00:00 +0100"', msg)
    out["append"] = [typ, text(data)]
    out["append_missing"] = m.append("Nope", None, None, msg)[0]
    m.select("Archives/2026")
    typ, data = m._simple_command("UID", "COPY", "1", "INBOX")
    out["copy"] = [typ, text(data)]
    typ, data = m._simple_command("UID", "MOVE", "1", "&AMk-t&AOk-")
    out["move"] = [typ, text(m.untagged_responses.get("OK", []))]
    typ, data = m.status("&AMk-t&AOk-", "(MESSAGES UIDNEXT UNSEEN SIZE)")
    out["status"] = text(data)
    out["rename"] = m.rename("Archives", "Old")[0]
    typ, data = m.list('""', "Old*")
    out["list_renamed"] = sorted(text(data))
    out["delete"] = m.delete("Old/2026")[0]
    out["delete_inbox"] = m.delete("INBOX")[0]
    m.subscribe("Old")
    typ, data = m.lsub('""', "*")
    out["lsub"] = sorted(text(data))
    m.logout()
    return out


def case_idle(args):
    """IDLE on INBOX; the test delivers by SMTP once the session idles; measure the delay."""
    m = login(args)
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    line = m.readline()
    assert line.startswith(b"+"), line
    print("IDLING", flush=True)
    sys.stdout.flush()
    start = None
    m.sock.settimeout(args.timeout)
    got = []
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        ln = m.readline()
        if not ln:
            break
        got.append(ln.decode().strip())
        if b"EXISTS" in ln:
            break
    m.send(b"DONE\r\n")
    while True:
        ln = m.readline().decode().strip()
        if ln.startswith(tag) or not ln:
            done = ln
            break
        got.append(ln)
    m.logout()
    return {"untagged": got, "done": done}


class Raw:
    def __init__(self, port, tls=False):
        s = socket.create_connection((HOST, port), timeout=10)
        self.sock = tls_context().wrap_socket(s, server_hostname="x") if tls else s
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            c = self.sock.recv(65536)
            if not c:
                raise EOFError
            self.buf += c
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l.decode("utf-8", "replace")

    def until_tag(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " "):
                return lines


def case_bad_input(args):
    r = Raw(args.imaps, tls=True)
    r.line()
    out = {}
    r.sock.sendall(b"a1 FROBNICATE\r\n")
    out["unknown"] = r.until_tag("a1")[-1]
    r.sock.sendall(b"a2 SELECT INBOX\r\n")
    out["select_unauth"] = r.until_tag("a2")[-1]
    r.sock.sendall(f"a3 LOGIN {args.user} \"{args.password}\"\r\n".encode())
    out["login"] = r.until_tag("a3")[-1]
    r.sock.sendall(b"a4 FETCH 1 (FLAGS)\r\n")
    out["fetch_unselected"] = r.until_tag("a4")[-1]
    r.sock.sendall(b"a5 SELECT INBOX\r\na6 FETCH 99999 (FLAGS)\r\na7 FETCH 1:x (FLAGS)\r\n")
    r.until_tag("a5")
    out["bad_seq"] = r.until_tag("a6")[-1]
    out["bad_set"] = r.until_tag("a7")[-1]
    r.sock.sendall(b"a8 CREATE \"bad*name\"\r\n")
    out["bad_name"] = r.until_tag("a8")[-1]
    r.sock.sendall(b"a9 APPEND INBOX {999999999999}\r\n")
    out["literal_too_big"] = r.until_tag("a9")[-1]
    # 1,000 pipelined commands in one write: every one answered, in order.
    r.sock.sendall(b"".join(f"p{i} NOOP\r\n".encode() for i in range(1000)))
    answered = 0
    for i in range(1000):
        if r.until_tag(f"p{i}")[-1].startswith(f"p{i} OK"):
            answered += 1
    out["pipelined_ok"] = answered
    r.sock.sendall(b"a11 NOOP " + b"x" * 100000 + b"\r\n")
    out["line_too_long"] = r.line()
    r.sock.sendall(b"a12 NOOP\r\n")
    out["after_long_line"] = r.until_tag("a12")[-1]
    # Abrupt disconnects: in the middle of a literal, and in the middle of a command line.
    for junk in (b"x1 APPEND INBOX {100}\r\npartial", b"x2 LOGIN half"):
        d = Raw(args.imaps, tls=True)
        d.line()
        d.sock.sendall(junk)
        d.sock.close()
    r.sock.sendall(b"a10 APPEND INBOX {999999999999+}\r\n")
    try:
        out["nonsync_too_big"] = r.line()
        out["closed"] = r.sock.recv(1) == b""
    except (EOFError, ConnectionError):
        out["closed"] = True
    return out


def case_two_sessions(args):
    """Flag changes and expunges by one session reach the other at its next command."""
    a = login(args)
    b = login(args)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "(\\Flagged)")
    typ, data = b.noop()
    flags_seen = text(b.untagged_responses.pop("FETCH", []))
    a.store("1", "+FLAGS", "(\\Deleted)")
    a.expunge()
    b.noop()
    expunge_seen = text(b.untagged_responses.pop("EXPUNGE", []))
    a.logout()
    b.logout()
    return {"flags_seen": flags_seen, "expunge_seen": expunge_seen}


def case_quota(args):
    """RFC 9208: quota root and usage, APPEND refused over quota."""
    m = login(args)
    out = {"caps": sorted(m.capabilities)}
    typ, data = m.getquotaroot("INBOX")
    out["quotaroot"] = [typ, text(data)]
    typ, data = m._simple_command("GETQUOTA", '""')
    out["getquota"] = [typ, text(m.untagged_responses.pop("QUOTA", []))]
    big = b"Subject: big\r\n\r\n" + b"x" * (2 * 1024 * 1024) + b"\r\n"
    try:
        typ, data = m.append("INBOX", None, None, big)
        out["append_big"] = [typ, text(data)]
    except imaplib.IMAP4.error as e:
        out["append_big"] = ["NO", str(e)]
    m.logout()
    return out


def case_extensions(args):
    """THREAD=REFERENCES, ESORT, PARTIAL, CONTEXT=SEARCH, CATENATE, PREVIEW, OBJECTID,
    REPLACE and UNAUTHENTICATE, as imaplib sends them (issue 11)."""
    for name, states in [("UNAUTHENTICATE", ("AUTH", "SELECTED")),
                         ("CANCELUPDATE", ("SELECTED",)),
                         ("REPLACE", ("SELECTED",))]:
        imaplib.Commands[name] = states
    m = login(args)
    out = {"capabilities": sorted(m.capabilities)}
    messages = [
        b"Message-ID: <one@x>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\nSubject: Bilan\r\n\r\nResultats du bilan sanguin\r\n",
        b"Message-ID: <two@x>\r\nReferences: <one@x>\r\nDate: Tue, 2 Jun 2026 10:00:00 +0000\r\nSubject: Re: Bilan\r\n\r\nMerci\r\n",
        b"Message-ID: <three@x>\r\nDate: Wed, 3 Jun 2026 10:00:00 +0000\r\nSubject: Autre\r\n\r\nAutre sujet\r\n",
    ]
    for raw in messages:
        m.append("INBOX", None, None, raw)
    m.select("INBOX")
    out["thread"] = text(m.thread("REFERENCES", "UTF-8", "ALL")[1])
    typ, _ = m._simple_command("SORT", "RETURN", "(MIN MAX COUNT ALL)", "(REVERSE DATE)", "UTF-8", "ALL")
    out["esort"] = [typ, text(m.untagged_responses.pop("ESEARCH", []))]
    typ, _ = m._simple_command("SEARCH", "RETURN", "(PARTIAL -1:-2)", "ALL")
    out["partial"] = [typ, text(m.untagged_responses.pop("ESEARCH", []))]
    tag = m._command("SEARCH", "RETURN", "(UPDATE)", "SEEN")
    m._command_complete("SEARCH", tag)
    m.untagged_responses.pop("ESEARCH", None)
    typ, _ = m.store("2", "+FLAGS", "(\\Seen)")
    out["context_tag"] = text(tag)
    out["context_update"] = [typ, text(m.untagged_responses.pop("ESEARCH", []))]
    typ, data = m._simple_command("CANCELUPDATE", '"%s"' % text(tag))
    out["cancelupdate"] = typ
    typ, data = m.fetch("1", "(PREVIEW EMAILID SAVEDATE)")
    out["fetch"] = [typ, text(data)]
    typ, data = m._simple_command(
        "APPEND", "INBOX", "CATENATE",
        '(URL "/INBOX/;uid=1/;section=HEADER" TEXT {13+}\r\nNouveau corps)')
    out["catenate"] = [typ, text(data), text(m.untagged_responses.pop("APPENDUID", []))]
    typ, data = m.fetch("4", "(BODY.PEEK[TEXT])")
    # A short text comes back quoted, a longer one as a literal (a tuple in imaplib).
    out["catenated_text"] = text(data[0] if isinstance(data[0], bytes) else data[0][1])
    typ, data = m._simple_command("UID", "REPLACE", "4", "INBOX", "{9+}\r\nX: y\r\n\r\nz")
    out["replace"] = [typ, text(data)]
    m.unselect() if hasattr(m, "unselect") else m.close()
    typ, data = m._simple_command("UNAUTHENTICATE")
    out["unauthenticate"] = typ
    m.state = "NONAUTH"
    typ, data = m.login(args.user, args.password)
    out["login_again"] = typ
    m.logout()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--imap", type=int)
    p.add_argument("--imaps", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--subject", default="")
    p.add_argument("--body-word", default="")
    p.add_argument("--timeout", type=float, default=10)
    args = p.parse_args()
    result = globals()["case_" + args.case.replace("-", "_")](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
