//! HTTP API for practice software (LPS). Not built yet: the listener is not opened.
