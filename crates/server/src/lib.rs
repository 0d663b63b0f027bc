//! Evident's HTTP service: API, tenants and keys, workers, metrics and
//! health. Built in a later step; for now the crate only fixes its place in
//! the workspace.
#![forbid(unsafe_code)]

pub mod apikey;
