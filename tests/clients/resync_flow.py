#!/usr/bin/env python3
"""What a CONDSTORE/QRESYNC client (`imapclient`, a third-party library) knows of a BAL, and
whether it sees a change: `before` prints every folder's UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ, and each message's UID, flags and modseq; `after --known FILE` prints the
same, plus what `UID FETCH all (FLAGS) (CHANGEDSINCE known)` returns per folder (a client that
synced before asks only that). Prints one JSON object for the Rust test."""
import argparse
import json
import ssl

from imapclient import IMAPClient


def folder_state(c, name):
    sel = c.select_folder(name)
    state = {
        "uidvalidity": sel[b"UIDVALIDITY"],
        "uidnext": sel[b"UIDNEXT"],
        "highestmodseq": sel[b"HIGHESTMODSEQ"],
        "exists": sel[b"EXISTS"],
        "messages": {},
    }
    if sel[b"EXISTS"]:
        for uid, data in c.fetch(c.search("ALL"), ["FLAGS", "MODSEQ"]).items():
            # \Recent belongs to a session (RFC 3501 §2.3.2), not to the mailbox's state.
            flags = sorted(f.decode() for f in data[b"FLAGS"] if f != b"\\Recent")
            state["messages"][str(uid)] = {"flags": flags, "modseq": data[b"MODSEQ"][0]}
    return state


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["before", "after"])
    p.add_argument("--imap", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--known")
    args = p.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = IMAPClient("127.0.0.1", port=args.imap, ssl=False)
    c.starttls(ctx)
    c.login(args.user, args.password)
    c.enable("CONDSTORE")
    names = sorted(name for _flags, _delim, name in c.list_folders())
    out = {"folders": {name: folder_state(c, name) for name in names}, "changed": {}}
    if args.phase == "after":
        known = json.load(open(args.known))["folders"]
        for name, state in known.items():
            sel = c.select_folder(name)
            if sel[b"EXISTS"]:
                since = c.fetch(c.search("ALL"), ["FLAGS"], modifiers=["CHANGEDSINCE %d" % state["highestmodseq"]])
                out["changed"][name] = sorted(since.keys())
            else:
                out["changed"][name] = []
    c.logout()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
