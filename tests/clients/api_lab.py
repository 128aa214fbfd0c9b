#!/usr/bin/env python3
"""The laboratory flow's other parties, on Python's standard library only:

  receiver PORT SECRET OUT   a webhook receiver: checks each POST's X-MSS-Signature
                             (HMAC-SHA256 of "<t>.<body>" with SECRET, computed here; t
                             within 5 minutes) and X-MSS-Event-Id, and appends {"valid",
                             "fresh", "same_id": bool, "event": {...}} to OUT, one per line;
                             answers 503 to every POST while the file OUT.down exists
  mdns PORT JSON             read receipts (RFC 8098 MDNs, "displayed") sent by practitioners'
                             software over submission (STARTTLS, AUTH PLAIN), one SMTP
                             session per sender: JSON is [{"user", "password", "to", "msgid"}]
  statuses BASE KEY IDS      GET BASE/messages/{id} for each id (comma-separated) on one
                             keep-alive connection; prints {"state": n, "disposition": n}
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import smtplib
import ssl
import sys
import time
import urllib.parse


def receiver(port, secret, out):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if os.path.exists(out + ".down"):
                self.send_response(503)
                self.end_headers()
                return
            sig = dict(p.split("=", 1) for p in self.headers.get("X-MSS-Signature", "").split(",") if "=" in p)
            expected = hmac.new(secret.encode(), sig.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(expected, sig.get("v1", ""))
            # A receiver refuses old signatures (replays): t within five minutes of now.
            fresh = sig.get("t", "").isdigit() and abs(time.time() - int(sig["t"])) < 300
            event = json.loads(body)
            same_id = self.headers.get("X-MSS-Event-Id") == str(event.get("id"))
            with open(out, "a") as f:
                f.write(json.dumps({"valid": valid, "fresh": fresh, "same_id": same_id, "event": event}) + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def mdn(sender, to, msgid):
    return (
        f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: Lu : CR\r\nMessage-ID: <mdn-{msgid}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLe message a été affiché.\r\n"
        "--b1\r\nContent-Type: message/disposition-notification\r\n\r\n"
        f"Reporting-UA: lps.test; LPS\r\nFinal-Recipient: rfc822;{sender}\r\n"
        f"Original-Message-ID: <{msgid}>\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n\r\n"
        "--b1--\r\n"
    ).encode()


def mdns(port, items):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    by_user = {}
    for item in items:
        by_user.setdefault((item["user"], item["password"]), []).append(item)
    sent = 0
    for (user, password), mine in by_user.items():
        s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
        s.starttls(context=ctx)
        s.login(user, password)
        for item in mine:
            s.sendmail(user, [item["to"]], mdn(user, item["to"], item["msgid"]))
            sent += 1
        s.quit()
    print(json.dumps({"sent": sent}))


def statuses(base, key, ids):
    url = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    counts = {}
    for id_ in ids:
        conn.request("GET", f"{url.path}/messages/{id_}", headers={"Authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        if resp.status != 200:
            counts["error"] = counts.get("error", 0) + 1
            continue
        for r in doc["recipients"]:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
            d = (r.get("disposition") or {}).get("state")
            if d:
                counts[d] = counts.get(d, 0) + 1
    print(json.dumps(counts))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "receiver":
        receiver(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "mdns":
        with open(sys.argv[3]) as f:
            mdns(sys.argv[2], json.load(f))
    elif cmd == "statuses":
        statuses(sys.argv[2], sys.argv[3], sys.argv[4].split(","))
