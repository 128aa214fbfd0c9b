//! Outbound relay to other MSSanté operators.
