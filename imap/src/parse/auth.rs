//! LOGIN, AUTHENTICATE (RFC 9051 §6.2), ENABLE (RFC 5161), ID (RFC 2971).

use super::Command;
use super::cursor::{Cursor, PResult, bad};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginArgs {
    pub user: Vec<u8>,
    pub password: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticateArgs {
    pub mechanism: String,
    /// SASL-IR initial response (RFC 4959), base64 or `=`.
    pub initial: Option<String>,
}

/// One `field value` pair of the ID command (RFC 2971).
pub type IdField = (Vec<u8>, Option<Vec<u8>>);

pub(super) fn parse_login(c: &mut Cursor<'_>) -> PResult<Command> {
    c.sp()?;
    let user = c.astring()?;
    c.sp()?;
    let password = c.astring()?;
    Ok(Command::Login(LoginArgs { user, password }))
}

pub(super) fn parse_authenticate(c: &mut Cursor<'_>) -> PResult<Command> {
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
    Ok(Command::Authenticate(AuthenticateArgs {
        mechanism,
        initial,
    }))
}

pub(super) fn parse_enable(c: &mut Cursor<'_>) -> PResult<Command> {
    let mut caps = Vec::new();
    while c.eat(b' ') {
        caps.push(c.atom()?.to_ascii_uppercase());
    }
    if caps.is_empty() {
        return bad("ENABLE needs at least one capability");
    }
    Ok(Command::Enable(caps))
}

pub(super) fn parse_id(c: &mut Cursor<'_>) -> PResult<Command> {
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
