//! The MSSanté trust space (SPEC.md §3).
