#!/usr/bin/env python3
"""An export archive checked by a reader that shares no code with mssante (standard library
only; zstd archives are not read here):

  archive_check.py ARCHIVE   reads the tar, checks manifest.json against
                             manifest.json.sha256, each index and side file against the
                             manifest's size and SHA-256, each message file against its index
                             line; prints {"manifest_sha256", "files_ok", "messages_ok",
                             "placements": [[address, folder, uid, flags, sha256], ...]}
"""
import hashlib
import json
import sys
import tarfile


def main(path):
    with tarfile.open(path, "r:") as tar:
        members = {m.name: m for m in tar.getmembers()}

        def read(name):
            return tar.extractfile(members[name]).read()

        manifest_bytes = read("manifest.json")
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        sum_line = read("manifest.json.sha256").decode().split()[0]
        manifest = json.loads(manifest_bytes)
        files_ok = sum_line == manifest_sha
        messages_ok = True
        placements = []
        for bal in manifest["bals"]:
            for f in [bal["index"]] + bal["files"]:
                data = read(f["path"])
                files_ok &= len(data) == f["size"]
                files_ok &= hashlib.sha256(data).hexdigest() == f["sha256"]
            for line in read(bal["index"]["path"]).decode().splitlines():
                entry = json.loads(line)
                data = read(entry["path"])
                messages_ok &= hashlib.sha256(data).hexdigest() == entry["sha256"]
                messages_ok &= len(data) == entry["size"]
                placements.append([bal["address"], entry["folder"], entry["uid"],
                                   sorted(entry["flags"]), entry["sha256"]])
    print(json.dumps({
        "manifest_sha256": manifest_sha,
        "files_ok": files_ok,
        "messages_ok": messages_ok,
        "placements": sorted(placements),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
