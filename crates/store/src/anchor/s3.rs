//! The object-store anchor: seals as objects in an S3-compatible bucket,
//! through the `object_store` crate.
//!
//! `s3://bucket/prefix` names the bucket and a key prefix; everything
//! else (credentials, region, endpoint, plain HTTP) comes from the
//! standard AWS environment variables, read once when the anchor is
//! opened (`AmazonS3Builder::from_env`), so the same settings that
//! configure the AWS tools configure Evident.
//!
//! Seals are created with a conditional put (`If-None-Match: *`, RFC 9110
//! §13.1.2): the store itself refuses a second object under a seal's key,
//! so two sealers racing for one number cannot both win, and neither can
//! overwrite a seal. Some S3-compatible servers ignore that header and
//! overwrite silently; after each put the anchor repeats it with the same
//! bytes, which such a server accepts, and then reports
//! `anchor.no_conditional_put` instead of pretending the seal is safe.
//!
//! `object_store` is async and this crate is not: the anchor owns a small
//! current-thread runtime and blocks on it. Callers inside an async
//! runtime must call the anchor from a blocking thread (`spawn_blocking`),
//! as the server's sealer does.

use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::AnchorError;

/// A bucket and key prefix, with the client and the runtime it runs on.
#[derive(Debug, Clone)]
pub(super) struct S3Anchor {
    location: String,
    bucket: String,
    prefix: String,
    client: Arc<AmazonS3>,
    runtime: Arc<Runtime>,
}

/// The anchor's runtime. Dropping a tokio runtime from async code panics,
/// and the server drops anchors there (its sealer task), so the last
/// holder shuts it down in the background instead.
#[derive(Debug)]
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// `bucket` and `prefix` of `s3://bucket/prefix` (prefix without
/// surrounding slashes, possibly empty).
pub(super) fn parse_location(location: &str) -> Result<(String, String), AnchorError> {
    let bad = |reason| AnchorError::BadLocation {
        location: location.to_owned(),
        reason,
    };
    let rest = location
        .strip_prefix("s3://")
        .ok_or_else(|| bad("not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("an s3:// URL needs a bucket (s3://bucket/prefix)"));
    }
    if bucket.contains(['?', '#', '@', ':']) {
        return Err(bad(
            "the bucket name has characters S3 does not allow; set the endpoint and credentials through AWS_ENDPOINT_URL and AWS_ACCESS_KEY_ID, not in the URL",
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.contains("//") || prefix.split('/').any(|p| p == "." || p == "..") {
        return Err(bad("the key prefix has an empty, . or .. segment"));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

impl S3Anchor {
    /// The anchor at `location`, configured from the AWS environment and
    /// then `settings` (AWS variable names, e.g. `AWS_ENDPOINT_URL`). No
    /// request is made: a wrong endpoint or key shows on first use.
    pub(super) fn open(location: &str, settings: &[(&str, &str)]) -> Result<S3Anchor, AnchorError> {
        let (bucket, prefix) = parse_location(location)?;
        let config = |source| AnchorError::ObjectStoreConfig {
            location: location.to_owned(),
            source,
        };
        let mut builder = AmazonS3Builder::from_env();
        for (name, value) in settings {
            let key: AmazonS3ConfigKey = name.to_ascii_lowercase().parse().map_err(config)?;
            builder = builder.with_config(key, *value);
        }
        let client = builder.with_bucket_name(&bucket).build().map_err(config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| AnchorError::Io {
                path: "tokio runtime for the object-store anchor".into(),
                source,
            })?;
        Ok(S3Anchor {
            location: location.to_owned(),
            bucket,
            prefix,
            client: Arc::new(client),
            runtime: Arc::new(Runtime(Some(runtime))),
        })
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match &self.runtime.0 {
            Some(rt) => rt.block_on(f),
            // Only `Drop` empties it, and then no `&self` is left.
            None => unreachable!("the anchor's runtime is gone"),
        }
    }

    /// The key of `origin`'s seals directory (no trailing slash).
    fn dir(&self, origin: &str) -> String {
        if self.prefix.is_empty() {
            origin.to_owned()
        } else {
            format!("{}/{origin}", self.prefix)
        }
    }

    /// `s3://bucket/key`, for messages and reports.
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn remote(&self, key: &str, source: object_store::Error) -> AnchorError {
        AnchorError::ObjectStore {
            object: self.url(key),
            source,
        }
    }

    /// Every seal object of `origin`, in key order (which is seal-number
    /// order: the numbers are zero-padded).
    pub(super) fn seals(&self, origin: &str) -> Result<Vec<Vec<u8>>, AnchorError> {
        let dir = self.dir(origin);
        let path = Path::parse(&dir).map_err(|e| self.remote(&dir, e.into()))?;
        self.block_on(async {
            let listing = self
                .client
                .list_with_delimiter(Some(&path))
                .await
                .map_err(|e| self.remote(&dir, e))?;
            let mut keys: Vec<Path> = listing
                .objects
                .into_iter()
                .map(|o| o.location)
                .filter(|p| {
                    p.filename()
                        .is_some_and(|n| n.starts_with("seal-") && n.ends_with(".json"))
                })
                .collect();
            keys.sort();
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let bytes = async { self.client.get(&key).await?.bytes().await }
                    .await
                    .map_err(|e| self.remote(key.as_ref(), e))?;
                out.push(bytes.to_vec());
            }
            Ok(out)
        })
    }

    /// Creates seal `seq` of `origin`; the store refuses it if the key
    /// exists. Returns the object's URL.
    pub(super) fn publish(
        &self,
        origin: &str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<String, AnchorError> {
        let key = format!("{}/seal-{seq:012}.json", self.dir(origin));
        let path = Path::parse(&key).map_err(|e| self.remote(&key, e.into()))?;
        let create = || {
            self.client.put_opts(
                &path,
                PutPayload::from(bytes.to_vec()),
                PutOptions::from(PutMode::Create),
            )
        };
        let no_conditional_put = || AnchorError::NoConditionalPut {
            location: self.location.clone(),
        };
        self.block_on(async {
            match create().await {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(AnchorError::Conflict {
                        origin: origin.to_owned(),
                        seq,
                    });
                }
                Err(object_store::Error::NotImplemented { .. }) => {
                    return Err(no_conditional_put());
                }
                Err(e) => return Err(self.remote(&key, e)),
            }
            // The same bytes again: a store that honours the condition
            // refuses them; one that does not has just overwritten the seal
            // with itself, harmlessly, and must not be trusted with more.
            match create().await {
                Err(object_store::Error::AlreadyExists { .. }) => Ok(self.url(&key)),
                Ok(_) => Err(no_conditional_put()),
                Err(e) => Err(self.remote(&key, e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn locations() {
        let ok = |l: &str| parse_location(l).unwrap();
        assert_eq!(ok("s3://b"), ("b".into(), String::new()));
        assert_eq!(ok("s3://b/"), ("b".into(), String::new()));
        assert_eq!(ok("s3://b/seals/"), ("b".into(), "seals".into()));
        assert_eq!(ok("s3://b/a/b"), ("b".into(), "a/b".into()));
        for bad in [
            "s3://",
            "s3:///x",
            "s3://key:secret@b/x",
            "s3://b/a//c",
            "s3://b/../x",
        ] {
            assert!(
                matches!(parse_location(bad), Err(AnchorError::BadLocation { .. })),
                "{bad}"
            );
        }
    }
}
