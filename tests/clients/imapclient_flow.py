#!/usr/bin/env python3
"""The whole client flow with `imapclient` (a third-party IMAP library): login, list, select,
search, fetch, store, append, move, idle. Prints one JSON object for the Rust test."""
import argparse
import json
import ssl
import threading
import time

from imapclient import IMAPClient


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--imap", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--deliver-cmd", help="JSON list: the command that delivers one message")
    args = p.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out = {}
    c = IMAPClient("127.0.0.1", port=args.imap, ssl=False)
    c.starttls(ctx)
    c.login(args.user, args.password)
    out["folders"] = sorted(name for _flags, _delim, name in c.list_folders())
    out["special"] = sorted(name for flags, _d, name in c.list_folders() if any(f.startswith(b"\\Sent") or f == b"\\Trash" for f in flags))
    sel = c.select_folder("INBOX")
    out["exists"] = sel[b"EXISTS"]
    out["uidvalidity"] = sel[b"UIDVALIDITY"]
    uids = c.search(["SUBJECT", "resultats"])
    out["search"] = uids
    fetched = c.fetch(uids, ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODY.PEEK[TEXT]"])
    msg = fetched[uids[0]]
    out["subject"] = msg[b"ENVELOPE"].subject.decode()
    out["from"] = msg[b"ENVELOPE"].from_[0].mailbox.decode() + "@" + msg[b"ENVELOPE"].from_[0].host.decode()
    out["text"] = msg[b"BODY[TEXT]"].decode()
    c.add_flags(uids, [b"\\Seen", b"$Important"])
    out["flags_after_store"] = sorted(f.decode() for f in c.get_flags(uids)[uids[0]])
    appended = c.append("Drafts", b"From: a@b.fr\r\nSubject: brouillon\r\n\r\ntexte\r\n", flags=[b"\\Draft"])
    out["append"] = appended.decode() if isinstance(appended, bytes) else str(appended)
    c.move(uids, "Trash")
    out["inbox_after_move"] = c.select_folder("INBOX")[b"EXISTS"]
    out["trash_after_move"] = c.folder_status("Trash", [b"MESSAGES"])[b"MESSAGES"]
    # IDLE: another client delivers while we wait.
    c.select_folder("INBOX")
    c.idle()
    threading.Timer(0.5, lambda: __import__("subprocess").run(json.loads(args.deliver_cmd), check=True, capture_output=True)).start()
    start = time.time()
    responses = c.idle_check(timeout=20)
    out["idle_seconds"] = round(time.time() - start, 3)
    c.idle_done()
    out["idle"] = [[r[0], r[1].decode() if isinstance(r[1], bytes) else r[1]] for r in responses]
    c.logout()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
