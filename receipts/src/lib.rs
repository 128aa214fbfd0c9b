//! Delivery receipts (docs/mssante.md §6), without I/O.
//!
//! - [`build_dsn`]: builds an RFC 3464 delivery status notification
//!   (`multipart/report; report-type=delivery-status`, RFC 6522).
//! - [`parse_dsn`] / [`parse_mdn`]: read the DSNs (RFC 3464) and MDNs (RFC 8098) that arrive,
//!   to record what became of the messages we sent.
//! - [`is_report`]: whether a message is itself an automatic report, so that no DSN is ever
//!   generated about it (RFC 3461 §6.2, RFC 3834 §2).

pub mod dsn;
mod fields;
pub mod parse;

pub use dsn::{Action, DsnRecipient, DsnReport, build_dsn};
pub use fields::fold_field;
pub use parse::{ParsedDsn, ParsedDsnRecipient, ParsedMdn, is_report, parse_dsn, parse_mdn};
