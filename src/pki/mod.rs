//! Pure X.509 and RFC 3161 validation; the caller passes the time (DESIGN.md).
pub mod timestamp;
