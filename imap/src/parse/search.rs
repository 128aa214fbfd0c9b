//! SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731), SORT and THREAD (RFC 5256 §3): the search
//! keys they share and their own arguments.

use super::Command;
use super::cursor::{Cursor, PResult, ParseError, bad};
use super::search_return::{SearchReturn, parse_search_return};
use super::sequence::SequenceSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchArgs {
    pub uid: bool,
    /// `RETURN (...)` options (RFC 4731); `None` for a plain SEARCH.
    pub returns: Option<SearchReturn>,
    pub charset: Option<String>,
    pub key: SearchKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortArgs {
    pub uid: bool,
    /// `RETURN (...)` (ESORT, RFC 5267 §3.2); `None` for a plain SORT.
    pub returns: Option<SearchReturn>,
    pub keys: Vec<SortKey>,
    pub charset: String,
    pub key: SearchKey,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadArgs {
    pub uid: bool,
    pub algorithm: String,
    pub charset: String,
    pub key: SearchKey,
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
    /// RFC 8474 §6.
    EmailId(String),
    ThreadId(String),
    /// RFC 8514 §5: the save date, in days like BEFORE / ON / SINCE.
    SavedBefore(i64),
    SavedOn(i64),
    SavedSince(i64),
    SaveDateSupported,
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

pub(super) fn parse_search(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    let mut returns = None;
    let mut charset = None;
    c.sp()?;
    if c.eat_word("RETURN ") {
        // RFC 4731 ESEARCH
        returns = Some(parse_search_return(c)?);
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
    Ok(Command::Search(SearchArgs {
        uid,
        returns,
        charset,
        key,
    }))
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
pub(super) fn parse_thread(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
    c.sp()?;
    let algorithm = c.atom()?.to_ascii_uppercase();
    let (charset, key) = charset_and_search(c)?;
    Ok(Command::Thread(ThreadArgs {
        uid,
        algorithm,
        charset,
        key,
    }))
}

/// RFC 5256 §3: `SORT (criteria) charset search-key...`.
pub(super) fn parse_sort(c: &mut Cursor<'_>, uid: bool) -> PResult<Command> {
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
    let mut returns = None;
    if c.eat_word("RETURN ") {
        returns = Some(parse_search_return(c)?);
        c.sp()?;
    }
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
    Ok(Command::Sort(SortArgs {
        uid,
        returns,
        keys,
        charset,
        key,
    }))
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
        "SAVEDBEFORE" => Ok(SearchKey::SavedBefore(search_date(c)?)),
        "SAVEDON" => Ok(SearchKey::SavedOn(search_date(c)?)),
        "SAVEDSINCE" => Ok(SearchKey::SavedSince(search_date(c)?)),
        "SAVEDATESUPPORTED" => Ok(SearchKey::SaveDateSupported),
        "EMAILID" => {
            c.sp()?;
            Ok(SearchKey::EmailId(c.atom()?.to_string()))
        }
        "THREADID" => {
            c.sp()?;
            Ok(SearchKey::ThreadId(c.atom()?.to_string()))
        }
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
