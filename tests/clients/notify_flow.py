#!/usr/bin/env python3
"""NOTIFY (RFC 5465) cases for tests/notify_e2e.rs: a watching connection (Python's imaplib)
and writing connections on the same server; the watcher reads what arrives between its
commands, without IDLE. Each case prints one JSON object."""
import imaplib
import socket
import time

import delegation_flow
from delegation_flow import imaplib_login, status, shared

imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))


def notify(m, spec):
    """NOTIFY with its untagged STATUS / LIST answers."""
    try:
        typ, data = m._simple_command("NOTIFY", spec)
    except imaplib.IMAP4.error as e:
        return ["NO", [str(e)], {}]
    found = {k: [x.decode() for x in m.untagged_responses.pop(k, [])] for k in ("STATUS", "LIST")}
    return [typ, [d.decode() if isinstance(d, bytes) else d for d in data], found]


def unsolicited(m, want, seconds=5.0):
    """Lines the server sends on its own, read until one contains `want` (or time is up)."""
    lines = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        m.sock.settimeout(max(0.05, deadline - time.time()))
        try:
            line = m.readline().decode().rstrip("\r\n")
        except (socket.timeout, TimeoutError):
            # A timed-out socket file reads no more: a new one (nothing was half-read, the
            # server writes whole lines).
            m.file = m.sock.makefile("rb")
            break
        lines.append(line)
        if want and want in line:
            break
    m.sock.settimeout(None)
    return lines


def case_watch(args):
    dr_inbox = shared(args, "INBOX")
    out = {}
    watcher = imaplib_login(args, args.secretary)
    writer = imaplib_login(args, args.secretary)
    doctor = imaplib_login(args, args.doctor)
    writer.create("Projets")
    writer.append("Projets", None, None, b"Subject: p\r\n\r\nprojet\r\n")
    writer.append("INBOX", None, None, b"Subject: one\r\n\r\none\r\n")
    watcher.select("INBOX")
    out["set"] = notify(
        watcher,
        "SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) "
        f"(MAILBOXES ({dr_inbox} Projets) (MessageNew MessageExpunge FlagChange MailboxName)) "
        "(PERSONAL (MailboxName SubscriptionChange))",
    )
    # The doctor's BAL, watched through the delegation: a STATUS, with no command sent.
    doctor.append("INBOX", None, None, b"Subject: resultat 2\r\n\r\nhemoglobine\r\n")
    out["doctor_append"] = unsolicited(watcher, "STATUS")
    doctor.select("INBOX")
    doctor.store("1", "+FLAGS", "(\\Flagged)")
    out["doctor_flag"] = unsolicited(watcher, "STATUS")
    # The selected mailbox: EXISTS and the asked FETCH items, then FLAGS, then EXPUNGE.
    writer.append("INBOX", None, None, b"Subject: two\r\n\r\ntwo\r\n")
    out["append"] = unsolicited(watcher, "FETCH")
    writer.select("INBOX")
    writer.store("1", "+FLAGS", "(\\Deleted)")
    out["store"] = unsolicited(watcher, "FETCH")
    writer.expunge()
    out["expunge"] = unsolicited(watcher, "EXPUNGE")
    # Names and subscriptions.
    writer.rename("Projets", "Projets-2026")
    out["rename"] = unsolicited(watcher, "OLDNAME")
    writer.subscribe("Projets-2026")
    out["subscribe"] = unsolicited(watcher, "Subscribed")
    writer.append("Projets-2026", None, None, b"Subject: p2\r\n\r\nprojet 2\r\n")
    out["renamed_append"] = unsolicited(watcher, "STATUS", 1.5)
    # NOTIFY NONE: nothing more arrives.
    out["none"] = notify(watcher, "NONE")
    doctor.append("INBOX", None, None, b"Subject: resultat 3\r\n\r\nfin\r\n")
    out["after_none"] = unsolicited(watcher, "STATUS", 1.5)
    out["noop_after_none"] = status(watcher, "NOOP")
    out["unsupported"] = notify(watcher, "SET (SELECTED (MessageNew MessageExpunge AnnotationChange))")
    out["metadata"] = notify(watcher, "SET (PERSONAL (MailboxMetadataChange))")
    return out


def case_no_rights(args):
    """Before any delegation: the doctor's mailbox is not the secretary's to watch."""
    dr_inbox = shared(args, "INBOX")
    watcher = imaplib_login(args, args.secretary)
    doctor = imaplib_login(args, args.doctor)
    out = {"set": notify(watcher, f"SET STATUS (MAILBOXES {dr_inbox} (MessageNew MessageExpunge))")}
    doctor.append("INBOX", None, None, b"Subject: secret\r\n\r\nprive\r\n")
    out["after_append"] = unsolicited(watcher, "STATUS", 1.5)
    return out


if __name__ == "__main__":
    delegation_flow.main(globals())
