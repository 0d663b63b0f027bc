//! Evident's verifier core.
//!
//! Everything an auditor needs to check an Evident log without trusting the
//! server or its database lives here: the entry model and its RFC 8785
//! canonical bytes, RFC 6962 hashing, the Merkle tree and its proofs, C2SP
//! tlog-tiles, C2SP signed notes and tlog-checkpoints, receipts, and the
//! streaming log verifier that produces the verification report.
//!
//! The crate does no I/O and has no async runtime: callers hand it bytes and
//! it hands back values or typed errors. Storage, HTTP and the command line
//! are built on top of it, so the offline verifier and the server reach the
//! same verdict from the same code.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod code;
pub mod entry;
pub mod hash;
pub mod merkle;
pub mod note;
pub mod pyramid;
pub mod receipt;
pub mod seal;
pub mod tile;
pub mod verify;

pub use code::ErrorCode;
pub use hash::Hash;
