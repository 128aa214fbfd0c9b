"""Schemathesis hooks for tests/api_schemathesis_e2e.rs: bodies of the media types
schemathesis has no serializer for (NDJSON bulk sends, raw RFC 5322 messages, archives
to import) go on the wire as the UTF-8 text it generated; the delegation run's paths name
a real BAL."""
import os

import schemathesis


@schemathesis.serializer("application/x-ndjson", "message/rfc822", "application/x-tar")
def as_text(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


# The delegation and audit run (tests/api_schemathesis_e2e.rs) names a real BAL and a real
# grantee in every path, so that its operations run past authorization on real data.
PATH_VALUES = {
    name: os.environ[var]
    for name, var in (("address", "ST_PATH_ADDRESS"), ("grantee", "ST_PATH_GRANTEE"))
    if var in os.environ
}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if case.path_parameters:
        for name, value in PATH_VALUES.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
