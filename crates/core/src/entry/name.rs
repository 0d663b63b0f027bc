//! Origins and kinds.
//!
//! Names end up in URLs, file paths, checkpoint origin lines and log
//! output, so they are kept to small ASCII alphabets where no character
//! needs escaping and no two spellings look alike.

use super::{EntryError, clip};

/// Largest kind, in bytes.
pub const MAX_KIND_BYTES: usize = 128;
/// Largest instance name (the DNS limit on a full name).
pub const MAX_INSTANCE_BYTES: usize = 253;
/// Largest tenant or log name.
pub const MAX_SEGMENT_BYTES: usize = 63;

fn bad_name(name: &str, reason: &'static str) -> EntryError {
    EntryError::BadName {
        name: clip(name, 64),
        reason,
    }
}

/// The server's own tenant (its event log and admin credential). It is the
/// one tenant name outside the client rule below, so no client-made tenant
/// can ever be mistaken for it.
pub const SYSTEM_TENANT: &str = "_system";

/// Tenant and log names: `[a-z0-9][a-z0-9_-]{0,62}`.
fn check_segment(name: &str) -> Result<(), EntryError> {
    let b = name.as_bytes();
    match b.first() {
        None => return Err(bad_name(name, "empty")),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(bad_name(name, "must start with [a-z0-9]"));
        }
        _ => {}
    }
    if b.len() > MAX_SEGMENT_BYTES {
        return Err(bad_name(name, "longer than 63 bytes"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    {
        return Err(bad_name(name, "only [a-z0-9_-] allowed"));
    }
    Ok(())
}

/// Instance names are DNS-like: lowercase labels of `[a-z0-9-]`, 1 to 63
/// bytes, not starting or ending with `-`, joined by `.`, at most 253
/// bytes in all.
fn check_instance(name: &str) -> Result<(), EntryError> {
    if name.is_empty() {
        return Err(bad_name(name, "empty"));
    }
    if name.len() > MAX_INSTANCE_BYTES {
        return Err(bad_name(name, "longer than 253 bytes"));
    }
    for label in name.split('.') {
        let b = label.as_bytes();
        if b.is_empty() {
            return Err(bad_name(name, "empty label"));
        }
        if b.len() > 63 {
            return Err(bad_name(name, "label longer than 63 bytes"));
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        {
            return Err(bad_name(name, "only [a-z0-9.-] allowed"));
        }
        if b.first() == Some(&b'-') || b.last() == Some(&b'-') {
            return Err(bad_name(name, "label starts or ends with '-'"));
        }
    }
    Ok(())
}

/// Builds the origin `<instance>/<tenant>/<log>` after checking each part:
/// tenant and log names `[a-z0-9][a-z0-9_-]{0,62}` (and the tenant
/// [`SYSTEM_TENANT`]); instance names
/// DNS-like `[a-z0-9.-]` up to 253 bytes.
pub fn origin(instance: &str, tenant: &str, log: &str) -> Result<String, EntryError> {
    check_instance(instance)?;
    if tenant != SYSTEM_TENANT {
        check_segment(tenant)?;
    }
    check_segment(log)?;
    Ok(format!("{instance}/{tenant}/{log}"))
}

/// The bytes a kind may hold: `[A-Za-z0-9._:-]`.
const KIND_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut c: u8 = 0;
    loop {
        t[c as usize] = c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
        if c == u8::MAX {
            break t;
        }
        c += 1;
    }
};

/// Checks an event kind: non-empty, at most 128 bytes, `[A-Za-z0-9._:-]`,
/// not starting or ending with `.`. Whether the kind is reserved is a
/// separate question (see [`super::is_reserved_kind`]): the server's own
/// kinds are valid kinds.
pub fn validate_kind(kind: &str) -> Result<(), EntryError> {
    let bad = |reason: String| Err(EntryError::BadKind { reason });
    if kind.is_empty() {
        return bad("empty".to_owned());
    }
    if kind.len() > MAX_KIND_BYTES {
        return bad(format!(
            "{} bytes, over the limit of {MAX_KIND_BYTES}",
            kind.len()
        ));
    }
    // Every allowed character is ASCII, so the first byte that is not
    // allowed starts the first character that is not (checked per byte,
    // by table: this runs twice for every appended entry).
    if let Some(i) = kind.bytes().position(|b| !KIND_BYTES[usize::from(b)]) {
        let c = kind[i..].chars().next().unwrap_or_default();
        return bad(format!(
            "{c:?} at byte {i} is not allowed; use [A-Za-z0-9._:-]"
        ));
    }
    if kind.starts_with('.') || kind.ends_with('.') {
        return bad(format!("{kind:?} starts or ends with '.'"));
    }
    Ok(())
}
