//! Evident's storage: the storage trait and its backends (embedded SQLite by
//! default, PostgreSQL for many nodes). Built in a later step; for now the
//! crate only fixes its place in the workspace.
#![forbid(unsafe_code)]
