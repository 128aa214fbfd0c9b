#!/usr/bin/env python3
"""The source side of the migration tests, written with Python's imaplib over IMAPS:
`fill SPEC.json` creates folders, subscribes and appends messages (flags, internal dates)
to a Dovecot account; `dump` prints every folder with each message's UID, flags, internal
date (Unix seconds) and the SHA-256 of its bytes, as one JSON object; `status` prints each
folder's UIDVALIDITY, UIDNEXT and message count, and the subscribed folders; `store` sets flags."""
import argparse
import base64
import hashlib
import imaplib
import json
import re
import ssl
import time


def mutf7_encode(name):
    """RFC 3501 §5.1.3 modified UTF-7."""
    out, shifted = [], []

    def flush():
        if shifted:
            b = base64.b64encode("".join(shifted).encode("utf-16-be")).decode()
            out.append("&" + b.rstrip("=").replace("/", ",") + "-")
            shifted.clear()

    for c in name:
        if " " <= c <= "~":
            flush()
            out.append("&-" if c == "&" else c)
        else:
            shifted.append(c)
    flush()
    return "".join(out)


def mutf7_decode(name):
    def repl(m):
        if m.group(1) == "":
            return "&"
        b = m.group(1).replace(",", "/")
        return base64.b64decode(b + "=" * (-len(b) % 4)).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


def quoted(name):
    return '"' + mutf7_encode(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def connect(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL("127.0.0.1", args.port, ssl_context=ctx)
    m.login(args.user, args.password)
    return m


def check(result, what):
    typ, data = result
    if typ != "OK":
        raise SystemExit(f"{what}: {typ} {data}")
    return data


def fill(args):
    spec = json.load(open(args.spec))
    m = connect(args)
    for name in spec.get("create", []):
        check(m.create(quoted(name)), f"CREATE {name}")
    for name in spec.get("subscribe", []):
        check(m.subscribe(quoted(name)), f"SUBSCRIBE {name}")
    for a in spec.get("append", []):
        body = open(a["file"], "rb").read()
        flags = "(" + " ".join(a["flags"]) + ")"
        check(m.append(quoted(a["folder"]), flags, '"' + a["date"] + '"', body), f"APPEND {a['folder']}")
    m.logout()
    print(json.dumps({"ok": True}))


def folders(m):
    out = []
    for line in check(m.list('""', "*"), "LIST"):
        match = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)$', line)
        attrs, name = match.group(1).decode(), match.group(3).decode()
        if name.startswith('"'):
            name = name[1:-1]
        if "\\Noselect" not in attrs and "\\NonExistent" not in attrs:
            out.append(name)
    return out


def dump(args):
    m = connect(args)
    result = {}
    for raw in folders(m):
        check(m.select('"' + raw + '"', readonly=True), f"EXAMINE {raw}")
        messages = []
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            flags = [f.decode() for f in imaplib.ParseFlags(head) if f != b"\\Recent"]
            date = time.mktime(imaplib.Internaldate2tuple(head))
            messages.append({
                "uid": uid,
                "flags": sorted(flags),
                "internaldate": int(date),
                "sha256": hashlib.sha256(body).hexdigest(),
                "size": len(body),
            })
        result[mutf7_decode(raw)] = messages
    m.logout()
    print(json.dumps(result))


def status(args):
    m = connect(args)
    result = {"folders": {}, "subscribed": []}
    for raw in folders(m):
        line = check(m.status('"' + raw + '"', "(UIDVALIDITY UIDNEXT MESSAGES)"), f"STATUS {raw}")[0]
        items = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", line))
        result["folders"][mutf7_decode(raw)] = {k.decode().lower(): int(v) for k, v in items.items()}
    for line in check(m.lsub('""', "*"), "LSUB"):
        name = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)$', line).group(3).decode()
        result["subscribed"].append(mutf7_decode(name.strip('"')))
    m.logout()
    print(json.dumps(result))


def store(args):
    m = connect(args)
    check(m.select(quoted(args.folder)), "SELECT")
    check(m.uid("STORE", args.uid, "+FLAGS", "(" + args.flags + ")"), "STORE")
    m.logout()
    print(json.dumps({"ok": True}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["fill", "dump", "status", "store"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--spec")
    p.add_argument("--folder")
    p.add_argument("--uid")
    p.add_argument("--flags")
    args = p.parse_args()
    {"fill": fill, "dump": dump, "status": status, "store": store}[args.case](args)


if __name__ == "__main__":
    main()
