//! Pure, I/O-free rendering of stored messages for FETCH, SEARCH and SORT.
//!
//! Everything here works on the raw RFC 5322 message bytes (CRLF line endings, as stored) and
//! returns protocol bytes or comparison keys; nothing touches the network or the store.
//! Headers are scanned only as far as needed: `BODY[HEADER.FIELDS (...)]`, `ENVELOPE` and the
//! search/sort keys never parse the MIME body, and `BODY[]` never parses anything.

pub mod address;
pub mod binary;
pub mod bodystructure;
pub mod datetime;
pub mod decode;
pub mod encode;
pub mod envelope;
pub mod mime;
pub mod preview;
pub mod search;
pub mod section;
pub mod sort;
pub mod thread;
pub mod utf7;

pub use binary::{BinaryError, binary, binary_size};
pub use bodystructure::body_structure;
pub use encode::{nstring, quoted, string};
pub use envelope::envelope;
pub use section::{Section, SectionKind, extract, parse_section, partial};

/// What the store keeps from a message's header for APPEND (and `mssante migrate`'s copies):
/// Message-ID, Subject, X-MSS-NIL.
pub fn message_meta(raw: &[u8]) -> mssante_store::MessageMeta {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return mssante_store::MessageMeta::default();
    };
    mssante_store::MessageMeta {
        message_id: msg.message_id().map(str::to_string),
        subject: msg.subject().map(str::to_string),
        x_mss_nil: msg.header_raw("X-MSS-NIL").map(|v| v.trim().to_string()),
        ..mssante_store::MessageMeta::default()
    }
}
