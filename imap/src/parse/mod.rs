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
pub use command::parse_request;
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

/// A command line as the session hands it over: its tag and its command. The vocabulary of
/// the grammar, here so that each command's file returns a `Command` and `command.rs` picks
/// the file by name without the files and the entry point naming each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub tag: String,
    pub command: Command,
}

/// One command with its arguments; each argument struct lives beside its parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// RFC 4978: the mechanism (only DEFLATE is offered).
    Compress(String),
    Login(LoginArgs),
    Authenticate(AuthenticateArgs),
    Enable(Vec<String>),
    Id(Option<Vec<IdField>>),
    Namespace,
    /// RFC 8437.
    Unauthenticate,
    /// SELECT and EXAMINE.
    Select(SelectArgs),
    Create(CreateArgs),
    Delete(Vec<u8>),
    Rename(RenameArgs),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List(ListArgs),
    Lsub(LsubArgs),
    Status(StatusArgs),
    Append(AppendArgs),
    /// REPLACE and UID REPLACE (RFC 8508).
    Replace(ReplaceArgs),
    Idle,
    Check,
    Close,
    Unselect,
    /// EXPUNGE, or UID EXPUNGE with its UID set (RFC 4315 §2.1).
    Expunge(Option<SequenceSet>),
    Thread(ThreadArgs),
    Sort(SortArgs),
    Search(SearchArgs),
    Fetch(FetchArgs),
    Store(StoreArgs),
    Copy(CopyArgs),
    Move(CopyArgs),
    /// RFC 5267 §4.3: the tags of the searches whose updates stop.
    CancelUpdate(Vec<String>),
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
    /// RFC 4314 §3.
    Acl(AclCommand),
    /// RFC 5465.
    Notify(NotifyArgs),
}

impl Command {
    /// RFC 9051 §7.5.1: no untagged EXPUNGE while answering a command that uses message
    /// sequence numbers and does not itself expunge (FETCH, STORE, SEARCH and the like).
    pub fn forbids_expunge_responses(&self) -> bool {
        matches!(
            self,
            Command::Fetch(FetchArgs { uid: false, .. })
                | Command::Store(StoreArgs { uid: false, .. })
                | Command::Search(SearchArgs { uid: false, .. })
                | Command::Sort(SortArgs { uid: false, .. })
                | Command::Thread(ThreadArgs { uid: false, .. })
                | Command::Copy(CopyArgs { uid: false, .. })
        )
    }
}
