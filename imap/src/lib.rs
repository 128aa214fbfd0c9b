//! IMAP4rev2/rev1 server (issue #3). Not built yet: the listener is not opened.
pub mod parse;
pub mod message;
