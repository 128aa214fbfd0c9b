//! The replies the SMTP handlers share; the [`Reply`] type itself is the workspace's one
//! (`mssante-mail`), which the relay client reads from peers as well.

pub use mssante_mail::Reply;

// Replies used in several handlers; one-off replies are built where they are decided.

pub fn ok(text: &str) -> Reply {
    Reply::new(250, "2.0.0", text)
}

/// RFC 5321 §4.2.4: 500 for an unrecognised command.
pub fn unknown_command() -> Reply {
    Reply::new(500, "5.5.2", "Command not recognized")
}

/// RFC 5321 §4.2.4: 501 for a syntax error in parameters or arguments.
pub fn syntax_error(what: &str) -> Reply {
    Reply::new(501, "5.5.4", format!("Syntax error: {what}"))
}

/// RFC 5321 §4.2.4: 503 for a bad sequence of commands.
pub fn bad_sequence(what: &str) -> Reply {
    Reply::new(503, "5.5.1", what)
}

pub fn line_too_long() -> Reply {
    Reply::new(500, "5.5.6", "Line too long")
}

pub fn too_many_errors() -> Reply {
    Reply::new(421, "4.7.0", "Too many errors, closing connection")
}

pub fn shutting_down() -> Reply {
    Reply::new(421, "4.3.2", "Service shutting down, try again later")
}

pub fn timeout() -> Reply {
    Reply::new(421, "4.4.2", "Timeout, closing connection")
}

/// A full disk: RFC 5321 §4.2.2 452 "insufficient system storage", RFC 3463 X.3.1 "mail
/// system full". Transient: the client keeps the message and retries.
pub fn storage_full() -> Reply {
    Reply::new(
        452,
        "4.3.1",
        "Insufficient system storage, message not accepted, try again later",
    )
}

/// The reply to a failed store call: 452 when the disk is full, 451 otherwise.
pub fn store_error(e: &mssante_store::StoreError) -> Reply {
    match e.is_storage_full() {
        true => storage_full(),
        false => local_error(),
    }
}

/// Storage failure: the client keeps the message and retries (nothing was kept here).
pub fn local_error() -> Reply {
    Reply::new(
        451,
        "4.3.0",
        "Local error in processing, message not accepted, try again later",
    )
}
