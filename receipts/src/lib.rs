//! Delivery receipts (SPEC.md §6), without I/O.
