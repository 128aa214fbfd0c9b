"""SIGHUP with a new certificate: an IMAPS session opened before stays usable, new IMAPS and
submission (STARTTLS) sessions get the new certificate. Prints JSON for tests/reload_e2e.rs.

usage: reload_client.py IMAPS_PORT SUBMISSION_PORT SERVER_PID NEW_CERT NEW_KEY CERT_PATH KEY_PATH
"""
import hashlib
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import sys
import time

imaps, submission, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
new_cert, new_key, cert_path, key_path = sys.argv[4:8]

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def sha(der):
    return hashlib.sha256(der).hexdigest()


def imaps_cert():
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", imaps), timeout=10)) as s:
        s.recv(4096)
        return sha(s.getpeercert(binary_form=True))


def submission_cert():
    with smtplib.SMTP("127.0.0.1", submission, timeout=10) as smtp:
        smtp.starttls(context=ctx)
        return sha(smtp.sock.getpeercert(binary_form=True))


def file_leaf(path):
    # The file is a chain (leaf, then its issuer): only the first PEM block is the leaf.
    # PEM_cert_to_DER_cert on the whole chain decodes both blocks run together, which fails
    # or not depending on the leaf's length (ECDSA signatures vary by a byte or two).
    with open(path) as f:
        pem = f.read()
    end = pem.index(ssl.PEM_FOOTER) + len(ssl.PEM_FOOTER)
    return sha(ssl.PEM_cert_to_DER_cert(pem[:end]))


# The session opened before the reload, idle in the middle of its life.
old = ctx.wrap_socket(socket.create_connection(("127.0.0.1", imaps), timeout=10))
old.recv(4096)
before = sha(old.getpeercert(binary_form=True))

shutil.copyfile(new_cert, cert_path)
shutil.copyfile(new_key, key_path)
os.kill(pid, signal.SIGHUP)
deadline = time.time() + 10
after = imaps_cert()
while after == before and time.time() < deadline:
    time.sleep(0.1)
    after = imaps_cert()

old.sendall(b"a1 NOOP\r\n")
noop = old.recv(4096).decode()
old.sendall(b"a2 LOGOUT\r\n")
old.close()

# A certificate that does not load: the one in force stays.
with open(cert_path, "w") as f:
    f.write("not a certificate\n")
os.kill(pid, signal.SIGHUP)
time.sleep(1)

print(json.dumps({
    "before": before,
    "after_imaps": after,
    "after_submission": submission_cert(),
    "after_bad_reload": imaps_cert(),
    "new_leaf": file_leaf(new_cert),
    "old_session_noop": noop,
}))
