//! The DSN vocabulary that crosses crates: the action a report states (RFC 3464 §2.3.3),
//! what a sender asked to hear about (NOTIFY, RFC 3461 §4.1) and how much of the message it
//! wants back (RET, RFC 3461 §4.3). Their text forms are the ones the store keeps in its
//! columns and the relay sends to peers.

use std::fmt;

/// RFC 3464 §2.3.3 action-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Failed,
        Action::Delayed,
        Action::Delivered,
        Action::Relayed,
        Action::Expanded,
    ];

    /// The lower-case name reports and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }

    /// An action-value in any case (RFC 3464 §2.3.3 compares them case-insensitively).
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The status a report gives when none was recorded (RFC 3463 §3.1 generic codes).
    pub fn default_status(self) -> &'static str {
        match self {
            Action::Failed => "5.0.0",
            Action::Delayed => "4.0.0",
            Action::Delivered | Action::Relayed | Action::Expanded => "2.0.0",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The events a sender can ask to be told about (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyEvent {
    Success,
    Failure,
    Delay,
}

impl NotifyEvent {
    const ALL: [NotifyEvent; 3] = [
        NotifyEvent::Success,
        NotifyEvent::Failure,
        NotifyEvent::Delay,
    ];

    fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Success => "SUCCESS",
            NotifyEvent::Failure => "FAILURE",
            NotifyEvent::Delay => "DELAY",
        }
    }
}

/// An RCPT NOTIFY value (RFC 3461 §4.1): `NEVER`, or a set of SUCCESS, FAILURE, DELAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    success: bool,
    failure: bool,
    delay: bool,
}

impl Notify {
    /// `NEVER`: no report at all.
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// What an MTA may assume when NOTIFY was not given (RFC 3461 §4.1): `FAILURE,DELAY`.
    pub const DEFAULT: Notify = Notify {
        success: false,
        failure: true,
        delay: true,
    };

    /// A set of events; empty is `NEVER`.
    pub fn of(events: &[NotifyEvent]) -> Notify {
        let mut n = Notify::NEVER;
        for e in events {
            match e {
                NotifyEvent::Success => n.success = true,
                NotifyEvent::Failure => n.failure = true,
                NotifyEvent::Delay => n.delay = true,
            }
        }
        n
    }

    pub fn wants(self, event: NotifyEvent) -> bool {
        match event {
            NotifyEvent::Success => self.success,
            NotifyEvent::Failure => self.failure,
            NotifyEvent::Delay => self.delay,
        }
    }

    pub fn is_never(self) -> bool {
        self == Notify::NEVER
    }

    /// The parameter value in any case, with or without spaces around the items. `NEVER`
    /// stands alone (RFC 3461 §4.1); a repeated event counts once.
    pub fn parse(value: &str) -> Result<Notify, NotifyError> {
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        if items.iter().any(|i| i.eq_ignore_ascii_case("NEVER")) {
            return match items.len() {
                1 => Ok(Notify::NEVER),
                _ => Err(NotifyError::NeverWithOthers),
            };
        }
        let mut events = Vec::with_capacity(items.len());
        for item in items {
            let event = NotifyEvent::ALL
                .into_iter()
                .find(|e| e.as_str().eq_ignore_ascii_case(item))
                .ok_or_else(|| NotifyError::UnknownItem(item.to_string()))?;
            events.push(event);
        }
        Ok(Notify::of(&events))
    }
}

/// The parameter value: `NEVER` or the events in the order SUCCESS, FAILURE, DELAY.
impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            return f.write_str("NEVER");
        }
        let names: Vec<&str> = NotifyEvent::ALL
            .into_iter()
            .filter(|&e| self.wants(e))
            .map(NotifyEvent::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Why a NOTIFY value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyError {
    /// `NEVER` combined with an event.
    NeverWithOthers,
    /// Not SUCCESS, FAILURE, DELAY or NEVER (an empty item included).
    UnknownItem(String),
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::NeverWithOthers => f.write_str("NEVER must stand alone"),
            NotifyError::UnknownItem(item) => {
                write!(f, "{item:?} is not SUCCESS, FAILURE, DELAY or NEVER")
            }
        }
    }
}

impl std::error::Error for NotifyError {}

/// RFC 3461 §4.3 RET: the whole message or its headers in a failure report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

impl Ret {
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }

    /// `FULL` or `HDRS`, in any case.
    pub fn parse(s: &str) -> Option<Ret> {
        [Ret::Full, Ret::Hdrs]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_names() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(Action::parse(&a.as_str().to_ascii_uppercase()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(Action::parse(" failed "), Some(Action::Failed));
        assert_eq!(Action::parse("bounced"), None);
        assert_eq!(Action::parse(""), None);
        assert_eq!(Action::Failed.default_status(), "5.0.0");
        assert_eq!(Action::Delayed.default_status(), "4.0.0");
        assert_eq!(Action::Relayed.default_status(), "2.0.0");
    }

    #[test]
    fn notify_parses_and_writes_the_stored_forms() {
        for (given, stored) in [
            ("NEVER", "NEVER"),
            ("never", "NEVER"),
            ("SUCCESS", "SUCCESS"),
            ("SUCCESS,FAILURE", "SUCCESS,FAILURE"),
            ("success, failure", "SUCCESS,FAILURE"),
            ("DELAY,FAILURE", "FAILURE,DELAY"),
            ("FAILURE,DELAY,SUCCESS", "SUCCESS,FAILURE,DELAY"),
            ("DELAY,DELAY", "DELAY"),
        ] {
            let n = Notify::parse(given).unwrap();
            assert_eq!(n.to_string(), stored, "{given}");
            assert_eq!(Notify::parse(stored), Ok(n), "{stored}");
        }
    }

    #[test]
    fn notify_refuses_what_rfc_3461_does_not_allow() {
        assert_eq!(
            Notify::parse("NEVER,SUCCESS"),
            Err(NotifyError::NeverWithOthers)
        );
        assert_eq!(
            Notify::parse("SOMETIMES"),
            Err(NotifyError::UnknownItem("SOMETIMES".into()))
        );
        assert_eq!(
            Notify::parse("SUCCESS,"),
            Err(NotifyError::UnknownItem(String::new()))
        );
        assert_eq!(
            Notify::parse(""),
            Err(NotifyError::UnknownItem(String::new()))
        );
        assert!(NotifyError::NeverWithOthers.to_string().contains("NEVER"));
        assert!(
            NotifyError::UnknownItem("X".into())
                .to_string()
                .contains("\"X\"")
        );
    }

    #[test]
    fn notify_wants() {
        let n = Notify::parse("SUCCESS,DELAY").unwrap();
        assert!(n.wants(NotifyEvent::Success) && n.wants(NotifyEvent::Delay));
        assert!(!n.wants(NotifyEvent::Failure));
        assert!(
            NotifyEvent::ALL
                .into_iter()
                .all(|e| !Notify::NEVER.wants(e))
        );
        assert!(Notify::NEVER.is_never() && !Notify::DEFAULT.is_never());
        assert_eq!(Notify::DEFAULT.to_string(), "FAILURE,DELAY");
        assert_eq!(Notify::of(&[]), Notify::NEVER);
    }

    #[test]
    fn ret_round_trips() {
        for r in [Ret::Full, Ret::Hdrs] {
            assert_eq!(Ret::parse(r.as_str()), Some(r));
            assert_eq!(Ret::parse(&r.as_str().to_ascii_lowercase()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(Ret::parse("HEADERS"), None);
        assert_eq!(Ret::parse(""), None);
    }
}
