//! Stable error codes.
//!
//! Every error that can reach an operator or a client carries a dotted code
//! (`entry.too_large`, `note.bad_signature`, …). The code is the contract:
//! HTTP bodies, CLI output and logs print the same string, scripts match on
//! it, and it never changes once released. Messages may be reworded; codes
//! may not.

/// An error with a stable, dotted, machine-readable code.
pub trait ErrorCode {
    /// The stable code, e.g. `entry.invalid_json`.
    fn code(&self) -> &'static str;
}
