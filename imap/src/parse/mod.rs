//! IMAP parsing without I/O or storage.

pub mod command;
pub mod cursor;
pub mod sequence;

pub use command::*;
pub use sequence::{SeqNum, SequenceSet, compact};
