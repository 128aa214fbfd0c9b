//! The mail vocabulary of mssante, shared by the protocol crates and the store: one type or
//! one routine for each thing that several crates say, without I/O or SQL, so that every
//! crate can depend on it without cycles.
//!
//! - [`reply`]: an SMTP reply with its enhanced status code, written by the server and read
//!   by the relay client (RFC 5321 §4.2, RFC 3463).
//! - [`xtext`]: the RFC 3461 §4 xtext codec (ENVID, ORCPT) and RFC 6533 utf-8-addr-xtext.
//! - [`dot`]: SMTP dot-stuffing (RFC 5321 §4.5.2).
//! - [`date`]: the proleptic Gregorian calendar and the RFC 5322 §3.3 date-time.
//! - [`dsn`]: DSN actions, NOTIFY and RET (RFC 3461, RFC 3464) as types.

pub mod date;
pub mod dot;
pub mod dsn;
pub mod reply;
pub mod xtext;

pub use reply::Reply;
