//! A runner for Dovecot imaptest's scripted tests, the IMAP conformance judge of the project.
//! See `scripted_test.md` in the corpus for the format; the semantics follow imaptest's
//! test-parser.c and test-exec.c (cited in each module).

pub mod args;
pub mod conn;
pub mod exec;
pub mod matcher;
pub mod mbox;
pub mod report;
pub mod script;
