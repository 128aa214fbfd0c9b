#!/usr/bin/env python3
"""Delegation cases for tests/delegation_e2e.rs (issue 14): the doctor with `imapclient`, the
secretary with Python's imaplib, at once on one server. Each case prints one JSON object."""
import argparse
import base64
import imaplib
import json
import subprocess
import time

from imap_client import HOST, text, tls_context


def imaplib_login(args, user, authz=None):
    m = imaplib.IMAP4(HOST, args.imap)
    m.starttls(ssl_context=tls_context())
    if authz is None:
        m.login(user, args.password)
    else:
        blob = f"{authz}\0{user}\0{args.password}".encode()
        m.authenticate("PLAIN", lambda _: blob)
    return m


def status(m, *command):
    """Runs a raw command; returns its status and untagged data, never raises."""
    try:
        if command[0].startswith("UID "):
            typ, data = m.uid(command[0][4:], *command[1:])
            return [typ, text(data), []]
        if command[0] == "APPEND":
            typ, data = m.append(command[1], None, None, command[2])
            return [typ, text(data), []]
        typ, data = m._simple_command(*command)
        name = command[0]
        untagged = m.untagged_responses.pop(name, [])
        return [typ, text(data), text(untagged)]
    except imaplib.IMAP4.abort as e:
        return ["BYE", str(e), []]
    except imaplib.IMAP4.error as e:
        return ["NO", str(e), []]


def shared(args, folder):
    return f'"Other Users/{args.doctor}/{folder}"'


def doctor_login(args):
    """The doctor's session: imapclient, STARTTLS then LOGIN."""
    from imapclient import IMAPClient

    doctor = IMAPClient(HOST, port=args.imap, ssl=False)
    doctor.starttls(tls_context())
    doctor.login(args.doctor, args.password)
    return doctor


def case_acceptance(args):
    out = {}
    doctor = doctor_login(args)
    doctor.create_folder("Archives")
    sec = imaplib_login(args, args.secretary)
    out["namespace"] = text(sec.namespace()[1])
    out["list"] = text(sec.list('""', '"Other Users/*"')[1])
    out["myrights"] = status(sec, "MYRIGHTS", shared(args, "INBOX"))
    typ, _ = sec.select(shared(args, "INBOX"))
    out["select"] = typ
    typ, data = sec.uid("FETCH", "1", "(BODY[])")
    out["fetched"] = text(data[0][1]) if typ == "OK" else typ
    typ, data = sec.uid("FETCH", "1", "(FLAGS)")
    out["flags_after_read"] = text(data)
    out["move"] = text(sec.uid("MOVE", "1", shared(args, "Archives")))
    reply = (
        f"From: <{args.doctor}>\r\nSender: <{args.secretary}>\r\nTo: <lab@labo.mssante.fr>\r\n"
        "Subject: Re: resultats\r\nMessage-ID: <reply-1@ch>\r\n\r\nBien recu.\r\n"
    ).encode()
    out["append"] = text(sec.append(shared(args, "Sent"), "(\\Seen)", None, reply)[0])
    sec.logout()
    # The doctor sees what the secretary did.
    archives = doctor.select_folder("Archives")
    out["doctor_archives"] = archives[b"EXISTS"]
    fetched = doctor.fetch(doctor.search(["ALL"]), ["FLAGS"])
    out["doctor_archives_flags"] = [sorted(f.decode() for f in v[b"FLAGS"]) for v in fetched.values()]
    out["doctor_inbox"] = doctor.select_folder("INBOX")[b"EXISTS"]
    sent = doctor.select_folder("Sent")
    out["doctor_sent"] = sent[b"EXISTS"]
    out["doctor_acl"] = [[text(who), text(r)] for who, r in doctor.getacl("INBOX")]
    doctor.logout()
    return out


def case_matrix(args):
    """Every command a delegate may try on the doctor's BAL, with its outcome."""
    m = imaplib_login(args, args.secretary)
    out = {}
    out["status"] = status(m, "STATUS", shared(args, "INBOX"), "(MESSAGES)")[0]
    out["select"] = m.select(shared(args, "INBOX"))[0]
    out["fetch"] = status(m, "UID FETCH", "1:*", "(BODY.PEEK[])")[0]
    out["store_seen"] = status(m, "UID STORE", "1:*", "+FLAGS", "(\\Seen)")[0]
    out["store_flagged"] = status(m, "UID STORE", "1:*", "+FLAGS", "(\\Flagged)")[0]
    out["store_deleted"] = status(m, "UID STORE", "1:*", "+FLAGS", "(\\Deleted)")[0]
    out["expunge"] = status(m, "EXPUNGE")[0]
    out["append"] = status(m, "APPEND", shared(args, "INBOX"), b"Subject: x\r\n\r\ny\r\n")[0]
    out["copy"] = status(m, "UID COPY", "1:*", shared(args, "Sent"))[0]
    out["getacl"] = status(m, "GETACL", shared(args, "INBOX"))[0]
    out["setacl"] = status(m, "SETACL", shared(args, "Sent"), "810001112223", "lr")[0]
    out["create"] = status(m, "CREATE", shared(args, "New"))[0]
    out["myrights"] = status(m, "MYRIGHTS", shared(args, "INBOX"))[2]
    m.logout()
    return out


def uid_flags(m, uid):
    """The FLAGS of one message as this imaplib session sees them."""
    typ, data = m.uid("FETCH", str(uid), "(FLAGS)")
    return text(data[0]) if typ == "OK" and data and data[0] else typ


def doctor_flags(doctor, uid):
    """The flags of one message as the doctor's imapclient session sees them (\\Recent aside)."""
    flags = doctor.get_flags([uid]).get(uid, ())
    return sorted(f.decode() for f in flags if f != b"\\Recent")


def case_seen_per_user(args):
    """ADR 0034: the doctor (imapclient) and the secretary (imaplib, under Other Users/ and
    logged in as the doctor's BAL) each have their own \\Seen; other flags are shared."""
    out = {}
    doctor = doctor_login(args)
    doctor.select_folder("INBOX")
    sec = imaplib_login(args, args.secretary)
    sec.select(shared(args, "INBOX"))
    # The secretary reads message 1 (FETCH BODY[], not PEEK).
    typ, data = sec.uid("FETCH", "1", "(BODY[])")
    out["read"] = typ
    out["sec_flags_1"] = uid_flags(sec, 1)
    doctor.noop()
    out["doctor_flags_1"] = doctor_flags(doctor, 1)
    # The doctor reads message 2 (sets \Seen by STORE, as clients do).
    doctor.add_flags([2], [b"\\Seen"])
    sec.noop()
    out["sec_flags_2"] = uid_flags(sec, 2)
    out["sec_flags_1_again"] = uid_flags(sec, 1)
    out["doctor_flags_2"] = doctor_flags(doctor, 2)
    # Flags other than \Seen stay shared.
    sec.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
    doctor.noop()
    out["doctor_flags_1_flagged"] = doctor_flags(doctor, 1)
    out["doctor_search_unseen"] = doctor.search(["UNSEEN"])
    out["sec_search_unseen"] = text(sec.uid("SEARCH", "UNSEEN")[1])
    out["doctor_status"] = {k.decode(): v for k, v in doctor.folder_status("INBOX", ["UNSEEN"]).items()}
    out["sec_status"] = text(sec.status(shared(args, "INBOX"), "(UNSEEN)")[1])
    # Logged in *as* the doctor's BAL (PLAIN with an authorization id): the same secretary,
    # the same read state; her clearing it there reaches her other session.
    as_bal = imaplib_login(args, args.secretary, authz=args.doctor)
    as_bal.select("INBOX")
    out["as_bal_flags_1"] = uid_flags(as_bal, 1)
    out["as_bal_status"] = text(as_bal.status("INBOX", "(UNSEEN)")[1])
    as_bal.uid("STORE", "1", "-FLAGS.SILENT", "(\\Seen)")
    sec.noop()
    out["sec_told"] = text(sec.untagged_responses.pop("FETCH", []))
    out["sec_flags_1_cleared"] = uid_flags(sec, 1)
    as_bal.logout()
    sec.logout()
    doctor.noop()
    out["doctor_flags_1_end"] = doctor_flags(doctor, 1)
    doctor.logout()
    return out


def case_append_seen(args):
    """ADR 0034: a delegate's APPEND with \\Seen (the copy of a reply saved in Sent) is read
    for her, under Other Users/ or logged in as the BAL, and unread for the doctor; the
    other flags given stay shared."""
    out = {}
    doctor = doctor_login(args)
    sec = imaplib_login(args, args.secretary)
    reply = b"Subject: Re: resultats\r\nMessage-ID: <reply-2@ch>\r\n\r\nBien recu.\r\n"
    out["append"] = status(sec, "APPEND", shared(args, "Sent"), reply)[0]
    typ, _ = sec.append(shared(args, "Sent"), "(\\Seen \\Flagged)", None, reply)
    out["append_seen"] = typ
    sec.select(shared(args, "Sent"))
    out["sec_flags"] = [uid_flags(sec, 1), uid_flags(sec, 2)]
    out["sec_search_unseen"] = text(sec.uid("SEARCH", "UNSEEN")[1])
    as_bal = imaplib_login(args, args.secretary, authz=args.doctor)
    typ, _ = as_bal.append("Sent", "(\\Seen)", None, reply)
    out["as_bal_append"] = typ
    as_bal.select("Sent")
    out["as_bal_flags_3"] = uid_flags(as_bal, 3)
    as_bal.logout()
    doctor.select_folder("Sent")
    out["doctor_flags"] = [doctor_flags(doctor, uid) for uid in (1, 2, 3)]
    out["doctor_search_unseen"] = doctor.search(["UNSEEN"])
    out["doctor_status"] = {k.decode(): v for k, v in doctor.folder_status("Sent", ["UNSEEN"]).items()}
    # The doctor's own APPEND with \Seen keeps the shared flag.
    doctor.append("Sent", reply, flags=[b"\\Seen"])
    doctor.noop()
    out["doctor_own_flags"] = doctor_flags(doctor, 4)
    sec.noop()
    out["sec_flags_4"] = uid_flags(sec, 4)
    sec.logout()
    doctor.logout()
    return out


def case_status_name(args):
    """STATUS on a delegated mailbox names it as the client did (RFC 9051 §7.5.1)."""
    m = imaplib_login(args, args.secretary)
    typ, data = m.status(shared(args, "INBOX"), "(MESSAGES)")
    m.logout()
    return {"status": typ, "data": text(data)}


def case_idle_revoke(args):
    """The secretary IDLEs in the doctor's INBOX; the revocation ends the session at once."""
    m = imaplib_login(args, args.secretary)
    m.select(shared(args, "INBOX"))
    tag = m._new_tag().decode()
    m.send(f"{tag} IDLE\r\n".encode())
    first = m.readline().decode().strip()
    started = time.monotonic()
    subprocess.run(json.loads(args.revoke_cmd), check=True, capture_output=True)
    revoked = time.monotonic()
    m.sock.settimeout(15)
    lines = []
    try:
        while True:
            line = m.readline().decode().strip()
            if not line:
                break
            lines.append(line)
            if line.startswith("* BYE") or line.startswith(tag):
                break
    except OSError as e:
        lines.append(f"error: {e}")
    return {"idle": first, "after_revoke": lines,
            "seconds_to_bye": round(time.monotonic() - revoked, 2),
            "revoke_took": round(revoked - started, 2)}


def case_expiry(args):
    """A delegation ending during the session: the next command is refused."""
    m = imaplib_login(args, args.secretary)
    before = m.select(shared(args, "INBOX"))[0]
    as_bal = imaplib_login(args, args.secretary, authz=args.doctor)
    as_bal_select = as_bal.select("INBOX")[0]
    time.sleep(max(0, args.until - time.time()))
    after = status(m, "UID FETCH", "1:*", "(FLAGS)")
    as_bal_after = status(as_bal, "NOOP")
    relogin = []
    try:
        imaplib_login(args, args.secretary, authz=args.doctor)
        relogin = "OK"
    except imaplib.IMAP4.error as e:
        relogin = str(e)
    return {"before": before, "as_bal_select": as_bal_select, "after": after,
            "as_bal_after": as_bal_after, "relogin_as_bal": relogin}


def case_audit_down(args):
    """The database refuses the trail's `fetch-body` and `flags` entries (the test set that up):
    the secretary's read is answered, but its trace fails, so a later command ends the session;
    her flag change is refused whole (action and entry are one transaction)."""
    m = imaplib_login(args, args.secretary)
    select = m.select(shared(args, "INBOX"))[0]
    read = status(m, "UID FETCH", "1", "(BODY.PEEK[TEXT])")
    deadline = time.monotonic() + 10
    after_read = status(m, "NOOP")
    while after_read[0] == "OK" and time.monotonic() < deadline:
        time.sleep(0.1)
        after_read = status(m, "NOOP")
    m2 = imaplib_login(args, args.secretary)
    m2.select(shared(args, "INBOX"))
    flag = status(m2, "UID STORE", "1", "+FLAGS", "(\\Flagged)")
    doctor = doctor_login(args)
    doctor.select_folder("INBOX", readonly=True)
    return {"select": select, "read": read[0], "after_read": after_read, "store": flag,
            "doctor_sees": doctor_flags(doctor, 1)}


def case_manager_limits(args):
    """The secretary holds the *manager* rights: over IMAP she gives, changes and takes away
    only what she could give through the HTTP API (the same rule)."""
    m = imaplib_login(args, args.secretary)
    inbox = shared(args, "INBOX")
    doctor = doctor_login(args)
    doctor.setacl("INBOX", "810001112224", "lrsk")
    out = {
        "within": status(m, "SETACL", inbox, "810001112223", "lrs"),
        "beyond": status(m, "SETACL", inbox, "810001112223", "+k"),
        "stronger_changed": status(m, "SETACL", inbox, "810001112224", "-s"),
        "stronger_removed": status(m, "DELETEACL", inbox, "810001112224"),
        "taken_away": status(m, "SETACL", inbox, "810001112223", "-s"),
    }
    out["doctor_acl"] = [[text(who), text(r)] for who, r in doctor.getacl("INBOX")]
    return out


def case_cross_bal(args):
    """The secretary files two messages of her own INBOX into the doctor's Archives (COPY,
    then MOVE), then takes one of his INBOX into her own INBOX (COPY, then MOVE): each is an
    action on his BAL, in his trail."""
    out = {}
    doctor = doctor_login(args)
    doctor.create_folder("Archives")
    sec = imaplib_login(args, args.secretary)
    sec.select("INBOX")
    archives = shared(args, "Archives")
    out["copy_in"] = status(sec, "UID COPY", "1", archives)
    out["move_in"] = status(sec, "UID MOVE", "2", archives)
    sec.select(shared(args, "INBOX"))
    out["copy_out"] = status(sec, "UID COPY", "1", "INBOX")
    out["move_out"] = status(sec, "UID MOVE", "1", "INBOX")
    sec.logout()
    out["doctor_archives"] = doctor.select_folder("Archives")[b"EXISTS"]
    out["doctor_inbox"] = doctor.select_folder("INBOX")[b"EXISTS"]
    doctor.logout()
    return out


def case_over_quota(args):
    """The doctor's BAL is over its quota (the test set it up): the secretary's COPY within
    it and her APPEND to it are refused, and her trail says so."""
    m = imaplib_login(args, args.secretary)
    out = {"select": m.select(shared(args, "INBOX"))[0]}
    out["copy"] = status(m, "UID COPY", "1", shared(args, "INBOX"))
    reply = b"From: <%s>\r\nSubject: re\r\n\r\nbien recu\r\n" % args.doctor.encode()
    out["append"] = status(m, "APPEND", shared(args, "Sent"), reply)
    m.logout()
    return out


def main(cases=None):
    """Runs the case named on the command line, from `cases` (a module's globals)."""
    cases = cases or globals()
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--imap", type=int)
    p.add_argument("--doctor")
    p.add_argument("--secretary")
    p.add_argument("--password")
    p.add_argument("--revoke-cmd")
    p.add_argument("--until", type=float, default=0, help="unix time the delegation has ended")
    args = p.parse_args()
    print(json.dumps(cases["case_" + args.case](args)))


if __name__ == "__main__":
    main()
