//! IMAP parsing without I/O or storage: `command` reads the tag and the command name and
//! hands the arguments to the file of that command (or family of commands).

pub mod acl;
pub mod append;
pub mod auth;
pub mod catenate;
pub mod command;
pub mod copy;
pub mod cursor;
pub mod fetch;
pub mod list;
pub mod mailbox;
pub mod notify;
pub mod replace;
pub mod search;
pub mod search_return;
pub mod select;
pub mod sequence;
pub mod store;

pub use acl::AclCommand;
pub use append::{AppendArgs, AppendMessage};
pub use auth::{AuthenticateArgs, IdField, LoginArgs};
pub use catenate::{CatPart, ImapUrl, parse_imap_url};
pub use command::{Command, Request, parse_request};
pub use copy::CopyArgs;
pub use fetch::{FetchArgs, FetchItem};
pub use list::{ListArgs, LsubArgs};
pub use mailbox::{CreateArgs, RenameArgs, StatusArgs};
pub use notify::{Event, EventGroup, Filter, NotifyArgs};
pub use replace::ReplaceArgs;
pub use search::{SearchArgs, SearchKey, SortArgs, SortKey, ThreadArgs, parse_date};
pub use search_return::{PartialRange, SearchReturn};
pub use select::{QresyncParams, SelectArgs};
pub use sequence::{SeqNum, SequenceSet, compact};
pub use store::{StoreArgs, StoreOp};
