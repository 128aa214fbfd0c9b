#!/usr/bin/env python3
"""Fetches autoconfiguration documents the way mail clients do and prints what they would
read from them, as JSON, for tests/autoconfig_e2e.rs.

  mozilla URL [--host HOST]   Mozilla autoconfig XML, read as Thunderbird reads it
  apple URL                   Apple .mobileconfig, parsed with plistlib
  fetch URL                   status, content type and body of any answer
"""

import argparse
import json
import plistlib
import ssl
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

# Thunderbird's accepted values (comm-central mail/components/accountcreation,
# readFromXML: socketType and authentication are translated from these names).
SOCKET_TYPES = {"plain", "SSL", "STARTTLS"}
AUTH_METHODS = {
    "password-cleartext", "plain", "password-encrypted", "secure", "GSSAPI", "NTLM",
    "TLS-client-cert", "OAuth2", "none", "client-IP-address", "smtp-after-pop",
}


def fetch(url, host=None):
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    context = ssl._create_unverified_context()  # self-signed test certificate
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def server(element):
    """One incomingServer/outgoingServer, checked against what Thunderbird accepts."""
    text = lambda name: element.findtext(name)
    socket = text("socketType")
    auths = [a.text for a in element.findall("authentication")]
    assert socket in SOCKET_TYPES, f"socketType {socket!r}"
    assert auths and all(a in AUTH_METHODS for a in auths), f"authentication {auths!r}"
    port = int(text("port"))
    assert 0 < port < 65536
    return {
        "type": element.get("type"),
        "hostname": text("hostname"),
        "port": port,
        "socketType": socket,
        "username": text("username"),
        "authentication": auths,
    }


def mozilla(url, host):
    status, headers, body = fetch(url, host)
    assert status == 200, (status, body)
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1", root.tag
    providers = root.findall("emailProvider")
    assert len(providers) == 1
    provider = providers[0]
    oauth2 = provider.find("oAuth2")
    return {
        "content_type": headers.get("Content-Type"),
        "id": provider.get("id"),
        "domains": [d.text for d in provider.findall("domain")],
        "displayName": provider.findtext("displayName"),
        "incoming": [server(s) for s in provider.findall("incomingServer")],
        "outgoing": [server(s) for s in provider.findall("outgoingServer")],
        "oauth2": None if oauth2 is None else {c.tag: c.text for c in oauth2},
    }


def apple(url):
    status, headers, body = fetch(url)
    assert status == 200, (status, body)
    profile = plistlib.loads(body)
    return {
        "content_type": headers.get("Content-Type"),
        "disposition": headers.get("Content-Disposition"),
        "profile": profile,
    }


def raw(url, host):
    status, headers, body = fetch(url, host)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = body.decode("utf-8", "replace")
    return {"status": status, "content_type": headers.get("Content-Type"), "body": parsed}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=["mozilla", "apple", "fetch"])
    p.add_argument("url")
    p.add_argument("--host")
    a = p.parse_args()
    if a.case == "mozilla":
        out = mozilla(a.url, a.host)
    elif a.case == "apple":
        out = apple(a.url)
    else:
        out = raw(a.url, a.host)
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
