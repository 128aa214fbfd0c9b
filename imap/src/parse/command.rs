//! IMAP command grammar (RFC 9051 §6 and §9, RFC 3501 for the rev1 forms, and the
//! extensions we advertise). Free of I/O: the session hands over one whole command with its
//! literals inline.

use super::cursor::{Cursor, PResult, ParseError, bad};
use super::sequence::SequenceSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub tag: String,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: Vec<u8>,
        password: Vec<u8>,
    },
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Enable(Vec<String>),
    Id(Option<Vec<IdField>>),
    Namespace,
    Select {
        mailbox: Vec<u8>,
        read_only: bool,
        condstore: bool,
        qresync: Option<QresyncParams>,
    },
    Create {
        mailbox: Vec<u8>,
        special_use: Vec<String>,
    },
    Delete(Vec<u8>),
    Rename {
        from: Vec<u8>,
        to: Vec<u8>,
    },
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List(ListArgs),
    Lsub {
        reference: Vec<u8>,
        pattern: Vec<u8>,
    },
    Status {
        mailbox: Vec<u8>,
        items: Vec<String>,
    },
    Append {
        mailbox: Vec<u8>,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SequenceSet>,
    },
    Thread {
        uid: bool,
        algorithm: String,
        charset: String,
        key: SearchKey,
    },
    Sort {
        uid: bool,
        keys: Vec<SortKey>,
        charset: String,
        key: SearchKey,
    },
    Search {
        uid: bool,
        returns: Option<Vec<String>>,
        charset: Option<String>,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        unchanged_since: Option<u64>,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: Vec<u8>,
    },
    GetQuota(Vec<u8>),
    GetQuotaRoot(Vec<u8>),
}

/// One `field value` pair of the ID command (RFC 2971).
pub type IdField = (Vec<u8>, Option<Vec<u8>>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QresyncParams {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListArgs {
    pub selection: Vec<String>,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub returns: Vec<String>,
    /// STATUS items asked with `RETURN (STATUS (...))` (RFC 5819).
    pub status_items: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<String>,
    pub date: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Replace,
    Add,
    Remove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    Uid,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// BODY (non-extensible structure)
    Body,
    BodyStructure,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    /// `BODY[section]<partial>` / `BODY.PEEK[...]`; `section` is the raw text inside [].
    Section {
        peek: bool,
        section: String,
        partial: Option<(u32, u32)>,
    },
    /// RFC 3516 `BINARY[part]<partial>` / `BINARY.PEEK`.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
}

/// One SORT criterion (RFC 5256 §3), e.g. `REVERSE DATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub reverse: bool,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    All,
    /// A system flag or keyword that must be set (`SEEN`, `KEYWORD x`...).
    Flag(String),
    /// A system flag or keyword that must not be set (`UNSEEN`, `UNKEYWORD x`...).
    NotFlag(String),
    New,
    Old,
    Recent,
    Header(String, String),
    Body(String),
    Text(String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u32),
    Smaller(u32),
    Uid(SequenceSet),
    Seq(SequenceSet),
    ModSeq(u64),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

pub fn parse_request(line: &[u8]) -> Result<Request, (Option<String>, ParseError)> {
    let mut c = Cursor::new(line);
    let tag = c
        .take_while(
            |b| b > 0x20 && b < 0x7f && !b"(){%*\"\\+".contains(&b),
            "missing tag",
        )
        .map_err(|e| (None, e))?
        .to_string();
    let command = (|| {
        c.sp()?;
        let cmd = parse_command(&mut c)?;
        c.expect_end()?;
        Ok(cmd)
    })()
    .map_err(|e| (Some(tag.clone()), e))?;
    Ok(Request { tag, command })
}

fn parse_command(c: &mut Cursor<'_>) -> PResult<Command> {
    let name = c.atom()?.to_ascii_uppercase();
    let no_args = |cmd: Command| Ok(cmd);
    match name.as_str() {
        "CAPABILITY" => no_args(Command::Capability),
        "NOOP" => no_args(Command::Noop),
        "LOGOUT" => no_args(Command::Logout),
        "STARTTLS" => no_args(Command::StartTls),
        "NAMESPACE" => no_args(Command::Namespace),
        "IDLE" => no_args(Command::Idle),
        "CHECK" => no_args(Command::Check),
        "CLOSE" => no_args(Command::Close),
        "UNSELECT" => no_args(Command::Unselect),
        "EXPUNGE" => no_args(Command::Expunge { uids: None }),
        "LOGIN" => {
            c.sp()?;
            let user = c.astring()?;
            c.sp()?;
            let password = c.astring()?;
            Ok(Command::Login { user, password })
        }
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.eat(b' ') {
                Some(
                    c.take_while(|b| b > 0x20 && b < 0x7f, "expected initial response")?
                        .to_string(),
                )
            } else {
                None
            };
            Ok(Command::Authenticate { mechanism, initial })
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(c.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return bad("ENABLE needs at least one capability");
            }
            Ok(Command::Enable(caps))
        }
        "ID" => {
            c.sp()?;
            if c.eat_word("NIL") {
                return Ok(Command::Id(None));
            }
            let items = c.paren_list(|c| {
                let k = c.string()?;
                c.sp()?;
                Ok((k, c.nstring()?))
            })?;
            Ok(Command::Id(Some(items)))
        }
        "SELECT" | "EXAMINE" => parse_select(c, name == "EXAMINE"),
        "CREATE" => {
            c.sp()?;
            let mailbox = c.astring()?;
            let mut special_use = Vec::new();
            if c.eat(b' ') {
                // RFC 6154 §3: CREATE mailbox (USE (\Sent))
                c.expect(b'(')?;
                if !c.eat_word("USE") {
                    return bad("unknown CREATE parameter");
                }
                c.sp()?;
                special_use = c.flag_list()?;
                c.expect(b')')?;
            }
            Ok(Command::Create {
                mailbox,
                special_use,
            })
        }
        "DELETE" => one_mailbox(c).map(Command::Delete),
        "SUBSCRIBE" => one_mailbox(c).map(Command::Subscribe),
        "UNSUBSCRIBE" => one_mailbox(c).map(Command::Unsubscribe),
        "GETQUOTA" => one_mailbox(c).map(Command::GetQuota),
        "GETQUOTAROOT" => one_mailbox(c).map(Command::GetQuotaRoot),
        "RENAME" => {
            c.sp()?;
            let from = c.astring()?;
            c.sp()?;
            let to = c.astring()?;
            Ok(Command::Rename { from, to })
        }
        "LIST" => parse_list(c).map(Command::List),
        "LSUB" => {
            c.sp()?;
            let reference = c.astring()?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            Ok(Command::Lsub { reference, pattern })
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = c.astring()?;
            c.sp()?;
            let items = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
            if items.is_empty() {
                return bad("STATUS needs at least one item");
            }
            Ok(Command::Status { mailbox, items })
        }
        "APPEND" => parse_append(c),
        "SEARCH" => parse_search(c, false),
        "SORT" => parse_sort(c, false),
        "THREAD" => parse_thread(c, false),
        "FETCH" => parse_fetch(c, false),
        "STORE" => parse_store(c, false),
        "COPY" => parse_copy(c, false, false),
        "MOVE" => parse_copy(c, false, true),
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            match sub.as_str() {
                "FETCH" => parse_fetch(c, true),
                "STORE" => parse_store(c, true),
                "SEARCH" => parse_search(c, true),
                "SORT" => parse_sort(c, true),
                "THREAD" => parse_thread(c, true),
                "COPY" => parse_copy(c, true, false),
                "MOVE" => parse_copy(c, true, true),
                "EXPUNGE" => {
                    c.sp()?;
                    Ok(Command::Expunge {
                        uids: Some(SequenceSet::parse(c)?),
                    })
                }
                _ => bad(format!("unknown UID command {sub}")),
            }
        }
        _ => Err(ParseError(format!("unknown command {name}"))),
    }
}

fn one_mailbox(c: &mut Cursor<'_>) -> PResult<Vec<u8>> {
    c.sp()?;
    c.astring()
}

fn parse_select(c: &mut Cursor<'_>, read_only: bool) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let (mut condstore, mut qresync) = (false, None);
    if c.eat(b' ') {
        c.expect(b'(')?;
        loop {
            if c.eat_word("CONDSTORE") {
                condstore = true;
            } else if c.eat_word("QRESYNC") {
                // RFC 7162 §3.2.5: (QRESYNC (uidvalidity modseq [known-uids [seq-match]]))
                c.sp()?;
                c.expect(b'(')?;
                let uidvalidity = c.nz_number()?;
                c.sp()?;
                let modseq = c.number64()?;
                let mut known_uids = None;
                if c.eat(b' ') && c.peek() != Some(b'(') {
                    known_uids = Some(SequenceSet::parse(c)?);
                    c.eat(b' ');
                }
                if c.peek() == Some(b'(') {
                    // seq-match-data: accepted and not used (we send VANISHED (EARLIER) for all).
                    skip_parens(c)?;
                }
                c.expect(b')')?;
                qresync = Some(QresyncParams {
                    uidvalidity,
                    modseq,
                    known_uids,
                });
            } else {
                return bad("unknown SELECT parameter");
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(Command::Select {
        mailbox,
        read_only,
        condstore,
        qresync,
    })
}

fn skip_parens(c: &mut Cursor<'_>) -> PResult<()> {
    c.expect(b'(')?;
    let mut depth = 1;
    while depth > 0 {
        match c.peek() {
            None => return bad("unbalanced parentheses"),
            Some(b'(') => depth += 1,
            Some(b')') => depth -= 1,
            _ => {}
        }
        c.eat(c.peek().unwrap());
    }
    Ok(())
}

/// RFC 9051 §6.3.9 with LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819).
fn parse_list(c: &mut Cursor<'_>) -> PResult<ListArgs> {
    let mut args = ListArgs::default();
    c.sp()?;
    if c.peek() == Some(b'(') {
        args.selection = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
        c.sp()?;
    }
    args.reference = c.astring()?;
    c.sp()?;
    args.patterns = if c.peek() == Some(b'(') {
        c.paren_list(|c| c.list_mailbox())?
    } else {
        vec![c.list_mailbox()?]
    };
    if c.eat(b' ') {
        if !c.eat_word("RETURN") {
            return bad("expected RETURN");
        }
        c.sp()?;
        let mut status_items = Vec::new();
        args.returns = c.paren_list(|c| {
            let opt = c.atom()?.to_ascii_uppercase();
            if opt == "STATUS" {
                c.sp()?;
                status_items = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
            }
            Ok(opt)
        })?;
        args.status_items = status_items;
    }
    Ok(args)
}

/// RFC 9051 §6.3.12 with MULTIAPPEND (RFC 3502).
fn parse_append(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let mailbox = c.astring()?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        if c.peek() == Some(b'(') {
            flags = c.flag_list()?;
            c.sp()?;
        }
        let mut date = None;
        if c.peek() == Some(b'"') {
            date = Some(
                String::from_utf8(c.string()?).map_err(|_| ParseError("invalid date".into()))?,
            );
            c.sp()?;
        }
        messages.push(AppendMessage {
            flags,
            date,
            bytes: c.string()?,
        });
    }
    if messages.is_empty() {
        return bad("APPEND needs a message");
    }
    Ok(Command::Append { mailbox, messages })
}

fn parse_copy(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mailbox = c.astring()?;
    Ok(if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}

fn parse_store(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        // RFC 7162 §3.1.3
        c.expect(b'(')?;
        if !c.eat_word("UNCHANGEDSINCE") {
            return bad("unknown STORE modifier");
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')')?;
        c.sp()?;
    }
    let op = if c.eat(b'+') {
        StoreOp::Add
    } else if c.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let silent = if c.eat_word("FLAGS.SILENT") {
        true
    } else if c.eat_word("FLAGS") {
        false
    } else {
        return bad("expected FLAGS or FLAGS.SILENT");
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            flags.push(c.flag()?);
        }
        flags
    };
    if flags.iter().any(|f| f == "\\Recent" || f == "\\*") {
        return bad("\\Recent and \\* cannot be stored");
    }
    Ok(Command::Store {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    })
}

fn parse_fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let set = SequenceSet::parse(c)?;
    c.sp()?;
    let items = if c.peek() == Some(b'(') {
        c.paren_list(fetch_item)?
    } else {
        fetch_macro(c).map_or_else(|| fetch_item(c).map(|i| vec![i]), Ok)?
    };
    let (mut changed_since, mut vanished) = (None, false);
    if c.eat(b' ') {
        // RFC 7162 §3.1.4.1 and §3.2.6
        c.paren_list(|c| {
            if c.eat_word("CHANGEDSINCE") {
                c.sp()?;
                changed_since = Some(c.number64()?);
            } else if c.eat_word("VANISHED") {
                vanished = true;
            } else {
                return bad("unknown FETCH modifier");
            }
            Ok(())
        })?;
    }
    Ok(Command::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

/// RFC 9051 §6.4.5 macros ALL, FAST, FULL (only as the whole item list).
fn fetch_macro(c: &mut Cursor<'_>) -> Option<Vec<FetchItem>> {
    let mark = c.mark();
    let items = match c.atom().ok()?.to_ascii_uppercase().as_str() {
        "ALL" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
            FetchItem::Envelope,
        ],
        "FAST" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
        ],
        "FULL" => vec![
            FetchItem::Flags,
            FetchItem::InternalDate,
            FetchItem::Rfc822Size,
            FetchItem::Envelope,
            FetchItem::Body,
        ],
        _ => {
            c.reset(mark);
            return None;
        }
    };
    if c.at_end() || c.peek() == Some(b' ') {
        Some(items)
    } else {
        c.reset(mark);
        None
    }
}

/// Parses `BODY[...]`-like items whose atom is followed by a section and a partial range.
fn fetch_item(c: &mut Cursor<'_>) -> PResult<FetchItem> {
    let name = c
        .take_while(
            |b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_',
            "expected a fetch item",
        )?
        .to_ascii_uppercase();
    let item = match name.as_str() {
        "FLAGS" => FetchItem::Flags,
        "UID" => FetchItem::Uid,
        "INTERNALDATE" => FetchItem::InternalDate,
        "RFC822.SIZE" => FetchItem::Rfc822Size,
        "ENVELOPE" => FetchItem::Envelope,
        "BODYSTRUCTURE" => FetchItem::BodyStructure,
        "RFC822" => FetchItem::Rfc822,
        "RFC822.HEADER" => FetchItem::Rfc822Header,
        "RFC822.TEXT" => FetchItem::Rfc822Text,
        "MODSEQ" => FetchItem::ModSeq,
        "BODY" if c.peek() != Some(b'[') => FetchItem::Body,
        "BODY" | "BODY.PEEK" => {
            let section = bracketed(c)?;
            FetchItem::Section {
                peek: name == "BODY.PEEK",
                section,
                partial: partial(c)?,
            }
        }
        "BINARY" | "BINARY.PEEK" => {
            let part = part_numbers(&bracketed(c)?)?;
            FetchItem::Binary {
                peek: name == "BINARY.PEEK",
                part,
                partial: partial(c)?,
            }
        }
        "BINARY.SIZE" => FetchItem::BinarySize {
            part: part_numbers(&bracketed(c)?)?,
        },
        _ => return bad(format!("unknown fetch item {name}")),
    };
    Ok(item)
}

/// The text between `[` and the matching `]` (sections may contain parenthesised lists).
fn bracketed(c: &mut Cursor<'_>) -> PResult<String> {
    c.expect(b'[')?;
    let rest = c.rest();
    let end = rest
        .iter()
        .position(|&b| b == b']')
        .ok_or_else(|| ParseError("missing ']'".into()))?;
    let text = std::str::from_utf8(&rest[..end])
        .map_err(|_| ParseError("invalid section".into()))?
        .to_string();
    for _ in 0..=end {
        c.eat(c.peek().unwrap_or(0));
    }
    Ok(text)
}

fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u32, u32)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let start = c.number()?;
    c.expect(b'.')?;
    let len = c.nz_number()?;
    c.expect(b'>')?;
    Ok(Some((start, len)))
}

/// `1.2.3` (RFC 3516 section-binary): part numbers only.
fn part_numbers(s: &str) -> PResult<Vec<u32>> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split('.')
        .map(|p| {
            p.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ParseError("invalid part number".into()))
        })
        .collect()
}

fn parse_search(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    let mut returns = None;
    let mut charset = None;
    c.sp()?;
    if c.eat_word("RETURN ") {
        // RFC 4731 ESEARCH
        returns = Some(c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?);
        c.sp()?;
    }
    if c.eat_word("CHARSET ") {
        charset = Some(c.astring_utf8()?.to_ascii_uppercase());
        c.sp()?;
    }
    let mut keys = vec![search_key(c)?];
    while c.eat(b' ') {
        keys.push(search_key(c)?);
    }
    let key = if keys.len() == 1 {
        keys.pop().unwrap()
    } else {
        SearchKey::And(keys)
    };
    Ok(Command::Search {
        uid,
        returns,
        charset,
        key,
    })
}

/// The ` charset search-key...` tail shared by SORT and THREAD (RFC 5256 §3).
fn charset_and_search(c: &mut Cursor<'_>) -> PResult<(String, SearchKey)> {
    c.sp()?;
    let charset = c.astring_utf8()?.to_ascii_uppercase();
    let mut search = vec![];
    while c.eat(b' ') {
        search.push(search_key(c)?);
    }
    let key = match search.len() {
        0 => return bad("search criteria are required"),
        1 => search.pop().unwrap(),
        _ => SearchKey::And(search),
    };
    Ok((charset, key))
}

/// RFC 5256 §3: `THREAD algorithm charset search-key...`.
fn parse_thread(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let algorithm = c.atom()?.to_ascii_uppercase();
    let (charset, key) = charset_and_search(c)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

/// RFC 5256 §3: `SORT (criteria) charset search-key...`.
fn parse_sort(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    const KEYS: [&str; 9] = [
        "ARRIVAL",
        "CC",
        "DATE",
        "FROM",
        "SIZE",
        "SUBJECT",
        "TO",
        "DISPLAYFROM",
        "DISPLAYTO",
    ];
    c.sp()?;
    let words = c.paren_list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
    let mut keys = Vec::new();
    let mut reverse = false;
    for w in words {
        if w == "REVERSE" && !reverse {
            reverse = true;
        } else if KEYS.contains(&w.as_str()) {
            keys.push(SortKey { reverse, key: w });
            reverse = false;
        } else {
            return bad(format!("invalid sort criterion {w}"));
        }
    }
    if keys.is_empty() || reverse {
        return bad("SORT needs at least one criterion");
    }
    let (charset, key) = charset_and_search(c)?;
    Ok(Command::Sort {
        uid,
        keys,
        charset,
        key,
    })
}

fn search_string(c: &mut Cursor<'_>) -> PResult<String> {
    c.sp()?;
    String::from_utf8(c.astring()?).map_err(|_| ParseError("search strings must be UTF-8".into()))
}

fn search_date(c: &mut Cursor<'_>) -> PResult<i64> {
    c.sp()?;
    let text = c.astring_utf8()?;
    parse_date(&text).ok_or_else(|| ParseError(format!("invalid date {text:?}")))
}

/// `1-Feb-1994` → days since 1970-01-01 (RFC 9051 §9 `date`).
pub fn parse_date(s: &str) -> Option<i64> {
    let (y, m, d) = crate::message::datetime::parse_search_date(s)?;
    Some(crate::message::datetime::days_from_civil(y, m, d))
}

fn search_key(c: &mut Cursor<'_>) -> PResult<SearchKey> {
    if c.peek() == Some(b'(') {
        let keys = c.paren_list(search_key)?;
        return Ok(SearchKey::And(keys));
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
        return Ok(SearchKey::Seq(SequenceSet::parse(c)?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    let flag = |f: &str| Ok(SearchKey::Flag(f.to_string()));
    let not_flag = |f: &str| Ok(SearchKey::NotFlag(f.to_string()));
    match word.as_str() {
        "ALL" => Ok(SearchKey::All),
        "ANSWERED" => flag("\\Answered"),
        "DELETED" => flag("\\Deleted"),
        "DRAFT" => flag("\\Draft"),
        "FLAGGED" => flag("\\Flagged"),
        "SEEN" => flag("\\Seen"),
        "UNANSWERED" => not_flag("\\Answered"),
        "UNDELETED" => not_flag("\\Deleted"),
        "UNDRAFT" => not_flag("\\Draft"),
        "UNFLAGGED" => not_flag("\\Flagged"),
        "UNSEEN" => not_flag("\\Seen"),
        "RECENT" => Ok(SearchKey::Recent),
        "NEW" => Ok(SearchKey::New),
        "OLD" => Ok(SearchKey::Old),
        "KEYWORD" => {
            c.sp()?;
            Ok(SearchKey::Flag(c.flag()?))
        }
        "UNKEYWORD" => {
            c.sp()?;
            Ok(SearchKey::NotFlag(c.flag()?))
        }
        "BCC" | "CC" | "FROM" | "TO" | "SUBJECT" => {
            Ok(SearchKey::Header(word.clone(), search_string(c)?))
        }
        "HEADER" => {
            c.sp()?;
            let field = c.astring_utf8()?;
            Ok(SearchKey::Header(field, search_string(c)?))
        }
        "BODY" => Ok(SearchKey::Body(search_string(c)?)),
        "TEXT" => Ok(SearchKey::Text(search_string(c)?)),
        "BEFORE" => Ok(SearchKey::Before(search_date(c)?)),
        "ON" => Ok(SearchKey::On(search_date(c)?)),
        "SINCE" => Ok(SearchKey::Since(search_date(c)?)),
        "SENTBEFORE" => Ok(SearchKey::SentBefore(search_date(c)?)),
        "SENTON" => Ok(SearchKey::SentOn(search_date(c)?)),
        "SENTSINCE" => Ok(SearchKey::SentSince(search_date(c)?)),
        "LARGER" => {
            c.sp()?;
            Ok(SearchKey::Larger(c.number()?))
        }
        "SMALLER" => {
            c.sp()?;
            Ok(SearchKey::Smaller(c.number()?))
        }
        "UID" => {
            c.sp()?;
            Ok(SearchKey::Uid(SequenceSet::parse(c)?))
        }
        "MODSEQ" => {
            // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type] mod-sequence-valzer
            c.sp()?;
            if c.peek() == Some(b'"') {
                c.string()?;
                c.sp()?;
                c.atom()?;
                c.sp()?;
            }
            Ok(SearchKey::ModSeq(c.number64()?))
        }
        "NOT" => {
            c.sp()?;
            Ok(SearchKey::Not(Box::new(search_key(c)?)))
        }
        "OR" => {
            c.sp()?;
            let a = search_key(c)?;
            c.sp()?;
            let b = search_key(c)?;
            Ok(SearchKey::Or(Box::new(a), Box::new(b)))
        }
        _ => bad(format!("unknown search key {word}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        parse_request(s.as_bytes())
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
            .command
    }

    fn err(s: &str) -> (Option<String>, ParseError) {
        parse_request(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn parses_login_and_select() {
        assert_eq!(
            cmd("a1 LOGIN user \"pass word\""),
            Command::Login {
                user: b"user".to_vec(),
                password: b"pass word".to_vec()
            }
        );
        assert_eq!(
            cmd("a SELECT INBOX (CONDSTORE)"),
            Command::Select {
                mailbox: b"INBOX".to_vec(),
                read_only: false,
                condstore: true,
                qresync: None
            }
        );
        match cmd("a select x (QRESYNC (67890007 20050715194045000 41,43:211,214:541))") {
            Command::Select {
                qresync: Some(q), ..
            } => {
                assert_eq!((q.uidvalidity, q.modseq), (67890007, 20050715194045000));
                assert!(q.known_uids.unwrap().contains(42 + 1, 600));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_fetch_items() {
        match cmd(
            "a UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100> BINARY[1.2] MODSEQ) (CHANGEDSINCE 12 VANISHED)",
        ) {
            Command::Fetch {
                uid,
                items,
                changed_since,
                vanished,
                ..
            } => {
                assert!(uid && vanished);
                assert_eq!(changed_since, Some(12));
                assert_eq!(
                    items[1],
                    FetchItem::Section {
                        peek: true,
                        section: "HEADER.FIELDS (From To)".into(),
                        partial: Some((0, 100))
                    }
                );
                assert_eq!(
                    items[2],
                    FetchItem::Binary {
                        peek: false,
                        part: vec![1, 2],
                        partial: None
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        match cmd("a FETCH 1 ALL") {
            Command::Fetch { items, .. } => assert_eq!(items.len(), 4),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(cmd("a FETCH 2 (BODY)"), Command::Fetch { ref items, .. } if items == &vec![FetchItem::Body])
        );
    }

    #[test]
    fn parses_search() {
        match cmd(
            "a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM \"x\" NOT SEEN 1:5 SINCE 1-Feb-1994 (LARGER 10 UID 3)",
        ) {
            Command::Search {
                returns,
                charset,
                key: SearchKey::And(keys),
                ..
            } => {
                assert_eq!(returns.unwrap(), vec!["MIN", "COUNT"]);
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert_eq!(keys.len(), 4);
                assert_eq!(
                    keys[2],
                    SearchKey::Since(crate::message::datetime::days_from_civil(1994, 2, 1))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_store_append_list() {
        assert_eq!(
            cmd("a STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen $Urgent)"),
            Command::Store {
                uid: false,
                set: SequenceSet::parse(&mut Cursor::new(b"1:3")).unwrap(),
                unchanged_since: Some(5),
                op: StoreOp::Add,
                silent: true,
                flags: vec!["\\Seen".into(), "$Urgent".into()]
            }
        );
        match cmd("a APPEND Sent (\\Seen) \"22-Nov-2026 04:37:05 +0000\" {5}\r\nhello {2+}\r\nhi") {
            Command::Append { messages, .. } => {
                assert_eq!(messages.len(), 2);
                assert_eq!(messages[0].bytes, b"hello");
                assert_eq!(messages[1].bytes, b"hi");
            }
            other => panic!("{other:?}"),
        }
        match cmd("a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))") {
            Command::List(args) => {
                assert_eq!(args.selection, vec!["SUBSCRIBED"]);
                assert_eq!(args.patterns, vec![b"*".to_vec(), b"%".to_vec()]);
                assert_eq!(args.status_items, vec!["MESSAGES", "UNSEEN"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_keep_the_tag_when_there_is_one() {
        assert_eq!(err("a1 FROB").0.as_deref(), Some("a1"));
        assert_eq!(err("a1 FETCH 0 FLAGS").0.as_deref(), Some("a1"));
        assert_eq!(err("a1 NOOP extra").0.as_deref(), Some("a1"));
        assert_eq!(err("").0, None);
        assert!(err("a1 STORE 1 +FLAGS (\\Recent)").1.0.contains("Recent"));
        assert!(err("a1 SEARCH SINCE 31-Foo-2020").1.0.contains("date"));
    }
}
