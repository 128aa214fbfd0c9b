//! National directory sync and lookup (issue #6). Not built yet.
