#!/usr/bin/env python3
"""Writes a generated `mssante export` archive (format 1, docs/export-format.md) to standard
output as a tar stream: BALS BALs of MESSAGES messages each, so that `mssante import` fills a
benchmark instance without SMTP (issue 15's million-message benchmark, BENCHMARKS.md).

The mix: text messages of 1 to 4 KB (a compte rendu with a few header lines), and one in
LARGE_EVERY a ~500 KB message with a base64 attachment (a PDF-sized report). Folders INBOX
(80 %), Archives (10 %) and Sent (10 %), flags \\Seen on most, a keyword on some.
Deterministic: the same arguments give the same archive.

    python3 bench/gen_archive.py --bals 1000 --messages 1000 | zstd -1 -T2 > gen.tar.zst

Two passes: the first computes every BAL's index and side files (spooled to a temporary
directory) because the manifest, which comes first, holds their SHA-256; the second
regenerates the messages and writes the tar."""
import argparse
import base64
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import tempfile

DOMAIN = "bench.mssante.test"
LARGE_EVERY = 2000
WORDS = ("patient examen biologie resultat normal hemoglobine glycemie creatinine "
         "compte rendu consultation suivi traitement posologie ordonnance cardiologie "
         "radiologie echographie conclusion antecedents allergie bilan controle").split()
FOLDERS = [  # name, maildir, special-use
    ("INBOX", "", None),
    ("Sent", ".Sent", "\\Sent"),
    ("Drafts", ".Drafts", "\\Drafts"),
    ("Trash", ".Trash", "\\Trash"),
    ("Archives", ".Archives", None),
]
BASE_DATE = 1_700_000_000


def address(b):
    return f"u{b:05d}@{DOMAIN}"


def folder_of(n):
    r = n % 10
    return "Archives" if r == 8 else "Sent" if r == 9 else "INBOX"


def flags_of(n):
    r = n % 7
    return [] if r == 0 else ["\\Seen", "$Forwarded"] if r == 1 else ["\\Seen"]


def text_body(rng):
    target = rng.randrange(900, 4000)
    lines, size = [], 0
    while size < target:
        line = " ".join(rng.choice(WORDS) for _ in range(10)) + "\r\n"
        lines.append(line)
        size += len(line)
    return ("Content-Type: text/plain; charset=utf-8\r\n\r\n" + "".join(lines)).encode()


def attachment_body(rng):
    enc = base64.encodebytes(rng.randbytes(370_000)).decode().replace("\n", "\r\n")
    return ("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\nCompte rendu joint.\r\n--b\r\n"
            "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + enc + "--b--\r\n").encode()


# Bodies are drawn from pools (generating each one is what costs); every message is still
# distinct, by its headers.
_pool_rng = random.Random(15)
TEXT_BODIES = [text_body(_pool_rng) for _ in range(997)]
LARGE_BODIES = [attachment_body(_pool_rng) for _ in range(7)]


def message(b, n):
    head = (f"From: Laboratoire <labo{n % 50}@labo.mssante.fr>\r\n"
            f"To: <{address(b)}>\r\nSubject: compte rendu {b}-{n}\r\n"
            f"Message-ID: <cr{b}-{n}@labo.mssante.fr>\r\n"
            f"Date: Tue, 14 Nov 2023 10:00:00 +0100\r\nMIME-Version: 1.0\r\n").encode()
    if (b * 7919 + n) % LARGE_EVERY == LARGE_EVERY - 1:
        return head + LARGE_BODIES[(b + n) % len(LARGE_BODIES)]
    return head + TEXT_BODIES[(b * 31 + n) % len(TEXT_BODIES)]


def placements(b, count):
    """(n, folder, uid, flags, internaldate) in folder then UID order, as export writes."""
    uids = {f[0]: 0 for f in FOLDERS}
    rows = []
    for n in range(count):
        f = folder_of(n)
        uids[f] += 1
        rows.append((n, f, uids[f], flags_of(n), BASE_DATE + n * 60))
    order = {f[0]: i for i, f in enumerate(FOLDERS)}
    rows.sort(key=lambda r: (order[r[1]], r[2]))
    return rows, uids


def sha(data):
    return hashlib.sha256(data).hexdigest()


def flag_suffix(flags):
    letters = "".join(sorted("S" for f in flags if f == "\\Seen"))
    return "2," + letters + ("a" if "$Forwarded" in flags else "")


def file_path(b, folder, uid, date, digest, size, flags):
    maildir = dict((f[0], f[1]) for f in FOLDERS)[folder]
    root = f"bals/{address(b)}/Maildir/{maildir}".rstrip("/")
    return root, f"{date}.M{uid}P{digest[:12]}.mssante,S={size}", flag_suffix(flags)


def first_pass(b, count, spool):
    rows, uidnext = placements(b, count)
    index = hashlib.sha256()
    index_size = 0
    uidlists = {f[0]: [] for f in FOLDERS}
    total = 0
    with open(os.path.join(spool, f"{b}.jsonl"), "wb") as out:
        for n, folder, uid, flags, date in rows:
            raw = message(b, n)
            digest = sha(raw)
            root, base, suffix = file_path(b, folder, uid, date, digest, len(raw), flags)
            line = json.dumps({
                "folder": folder, "uid": uid, "modseq": uid, "flags": flags,
                "internaldate": date, "message": n, "size": len(raw), "sha256": digest,
                "path": f"{root}/cur/{base}:{suffix}", "received_at": date,
                "mail_from": "labo@labo.mssante.fr", "source": "mx",
                "message_id": f"cr{b}-{n}@labo.mssante.fr", "subject": f"compte rendu {b}-{n}",
                "sent_by_bal": False,
            }, separators=(",", ":")).encode() + b"\n"
            out.write(line)
            index.update(line)
            index_size += len(line)
            uidlists[folder].append(f"{uid} :{base}\n")
            total += len(raw)
    side = []
    folders = []
    for name, maildir, special in FOLDERS:
        root = f"bals/{address(b)}/Maildir/{maildir}".rstrip("/")
        n = len(uidlists[name])
        data = (f"3 V{1_700_000_000 + b} N{uidnext[name] + 1}\n" + "".join(uidlists[name])).encode()
        side.append((f"{root}/dovecot-uidlist", data))
        keywords = []
        if name in ("INBOX", "Archives", "Sent") and n:
            keywords = ["$Forwarded"]
            side.append((f"{root}/dovecot-keywords", b"0 $Forwarded\n"))
        folders.append({
            "name": name, "maildir": maildir, "special_use": special,
            "uidvalidity": 1_700_000_000 + b, "uidnext": uidnext[name] + 1,
            "highestmodseq": max(uidnext[name], 1), "first_recent_uid": uidnext[name] + 1,
            "created_at": BASE_DATE, "expunged": [], "keywords": keywords, "messages": n,
        })
    subs = ("V\t2\n\n" + "".join(f"{f[0]}\n" for f in FOLDERS)).encode()
    side.append((f"bals/{address(b)}/Maildir/subscriptions", subs))
    for path, data in side:
        with open(os.path.join(spool, sha(path.encode())), "wb") as out:
            out.write(data)
    return {
        "address": address(b), "domain": DOMAIN, "bal_type": "PER",
        "national_id": f"8{10_000_000_000 + b}", "finess": None, "siret": None,
        "display_name": f"Dr Bench {b}", "status": "active", "password_hash": None,
        "liste_rouge": False, "quota_bytes": None, "created_at": BASE_DATE,
        "updated_at": BASE_DATE, "status_changed_at": BASE_DATE, "folders": folders,
        "subscriptions": [f[0] for f in FOLDERS], "grants": [], "audit": [],
        "source_bal_id": b + 1, "publications": [], "messages": count, "bytes": total,
        "index": {"path": f"bals/{address(b)}/index.jsonl", "size": index_size,
                  "sha256": index.hexdigest()},
        "files": [{"path": p, "size": len(d), "sha256": sha(d)} for p, d in side],
    }


def add(tar, path, data, mtime=BASE_DATE):
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), 0o600, mtime
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bals", type=int, required=True)
    p.add_argument("--messages", type=int, required=True, help="per BAL")
    args = p.parse_args()
    spool = tempfile.mkdtemp(prefix="gen-archive-")
    bals = []
    for b in range(args.bals):
        bals.append(first_pass(b, args.messages, spool))
        if b % 100 == 0:
            print(f"indexed {b}/{args.bals} BALs", file=sys.stderr)
    manifest = json.dumps({
        "format": "mssante-export", "version": 1, "created_at": BASE_DATE,
        "producer": "bench/gen_archive.py", "source_engine": "generated", "scope": "all",
        "bals": bals,
    }).encode()
    out = sys.stdout.buffer
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        add(tar, "manifest.json", manifest)
        add(tar, "manifest.json.sha256", f"{sha(manifest)}  manifest.json\n".encode())
        for b, bal in enumerate(bals):
            index_file = os.path.join(spool, f"{b}.jsonl")
            add(tar, bal["index"]["path"], open(index_file, "rb").read())
            for f in bal["files"]:
                side_file = os.path.join(spool, sha(f["path"].encode()))
                add(tar, f["path"], open(side_file, "rb").read())
                os.unlink(side_file)
            for line in open(index_file, "rb"):
                entry = json.loads(line)
                add(tar, entry["path"], message(b, entry["message"]), entry["internaldate"])
            os.unlink(index_file)
            if b % 100 == 0:
                print(f"written {b}/{args.bals} BALs", file=sys.stderr)
    os.rmdir(spool)


if __name__ == "__main__":
    main()
