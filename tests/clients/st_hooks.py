"""Schemathesis hooks for tests/api_schemathesis_e2e.rs: bodies of the media types
schemathesis has no serializer for (NDJSON bulk sends, raw RFC 5322 messages) go on the
wire as the UTF-8 text it generated."""
import schemathesis


@schemathesis.serializer("application/x-ndjson", "message/rfc822")
def as_text(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
