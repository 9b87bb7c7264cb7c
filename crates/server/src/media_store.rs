//! Where the bytes of media live: attachments (`<id>`), their thumbnails (`thumbs/<id>`) and
//! customers' pictures (`avatars/<id>`). One interface over a directory under `data_dir` (the
//! default, one node) and an S3-compatible bucket (several nodes, configured in `[media.s3]`), by
//! the `object_store` crate. Files are written once and read back as streams: a large file goes
//! through in bounded parts, never held whole in memory more than once.

use crate::config::{MediaConfig, S3Config};
use anyhow::Context;
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// How much of a streamed file is buffered before it goes out as one part: 1 MiB to a directory,
/// 5 MiB (S3's smallest part) to a bucket. One part is written at a time: a fast sender waits for
/// the store, so a file never piles up in memory (at most about two parts of it are).
const DIR_PART_BYTES: usize = 1024 * 1024;
const S3_PART_BYTES: usize = 5 * 1024 * 1024;

/// How many of a file's first bytes are kept while streaming it, to tell its type.
const HEAD_BYTES: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no such file")]
    NotFound,
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    /// The stream being stored failed (a download cut short).
    #[error("reading the file failed: {0}")]
    Source(String),
    #[error("the media store failed: {0}")]
    Store(String),
}

impl From<object_store::Error> for MediaError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Store(other.to_string()),
        }
    }
}

/// A stored file, ready to be streamed out.
pub struct Stored {
    pub size: u64,
    pub stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// What a streamed write stored: its size and first bytes (to derive its type from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub size: u64,
    pub head: Vec<u8>,
}

#[derive(Clone)]
pub struct MediaStore {
    inner: Arc<dyn ObjectStore>,
    /// For logs and the start-up line: `dir:<path>` or `s3:<bucket>`.
    describe: String,
    part_bytes: usize,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl MediaStore {
    /// The configured store: the bucket of `[media.s3]`, else `<data_dir>/media`.
    pub fn open(cfg: &MediaConfig, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match &cfg.s3 {
            Some(s3) => Self::s3(s3),
            None => Self::dir(&data_dir.join("media")),
        }
    }

    /// Files in a directory (created if missing), each written to a staging file, flushed to
    /// disk and renamed into place: a reader never sees half a file, a crash loses none.
    pub fn dir(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening {}", dir.display()))?
            .with_fsync(true);
        Ok(Self {
            inner: Arc::new(local),
            describe: format!("dir:{}", dir.display()),
            part_bytes: DIR_PART_BYTES,
        })
    }

    pub fn s3(c: &S3Config) -> anyhow::Result<Self> {
        anyhow::ensure!(!c.bucket.is_empty(), "media.s3.bucket is empty");
        crate::provider_api::tls_provider();
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_allow_http(c.allow_http);
        if !c.endpoint.is_empty() {
            b = b.with_endpoint(&c.endpoint);
        }
        if !c.access_key_id.is_empty() {
            b = b
                .with_access_key_id(&c.access_key_id)
                .with_secret_access_key(&c.secret_access_key);
        }
        let s3 = b.build().context("configuring the S3 media store")?;
        let inner: Arc<dyn ObjectStore> = if c.prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                s3,
                c.prefix.trim_matches('/'),
            ))
        };
        Ok(Self {
            inner,
            describe: format!("s3:{}", c.bucket),
            part_bytes: S3_PART_BYTES,
        })
    }

    /// A key of ours: segments of letters, digits, `-` and `_`, separated by `/`. Keys come from
    /// ids we generate; anything else (`..`, an empty segment) is refused rather than resolved.
    fn path(key: &str) -> Result<Path, MediaError> {
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if ok {
            Ok(Path::from(key))
        } else {
            Err(MediaError::Store(format!("not a media key: {key:?}")))
        }
    }

    /// Stores bytes already in memory (one copy: these `Bytes` are shared, not copied).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), MediaError> {
        let path = Self::path(key)?;
        self.inner.put(&path, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// Stores a stream (a download) in parts, refusing it once it passes `max` bytes: at most
    /// one part is in memory at a time. Nothing is left behind when it fails.
    pub async fn put_stream<S, E>(
        &self,
        key: &str,
        stream: S,
        max: u64,
    ) -> Result<Written, MediaError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let path = Self::path(key)?;
        let mut w = BufWriter::with_capacity(self.inner.clone(), path, self.part_bytes)
            .with_max_concurrency(1);
        let mut written = Written {
            size: 0,
            head: Vec::new(),
        };
        let mut stream = std::pin::pin!(stream);
        let failed = loop {
            let chunk = match stream.next().await {
                None => break None,
                Some(Err(e)) => break Some(MediaError::Source(e.to_string())),
                Some(Ok(c)) => c,
            };
            written.size += chunk.len() as u64;
            if written.size > max {
                break Some(MediaError::TooLarge(max));
            }
            if written.head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - written.head.len()).min(chunk.len());
                written.head.extend_from_slice(&chunk[..take]);
            }
            if let Err(e) = w.put(chunk).await {
                break Some(e.into());
            }
        };
        match failed {
            None => {
                w.shutdown()
                    .await
                    .map_err(|e| MediaError::Store(e.to_string()))?;
                Ok(written)
            }
            Some(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// A stored file as a stream of parts.
    pub async fn get(&self, key: &str) -> Result<Stored, MediaError> {
        let path = Self::path(key)?;
        let got = self.inner.get(&path).await?;
        let size = got.meta.size;
        let stream = got
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        Ok(Stored { size, stream })
    }

    /// A stored file whole, when it is at most `max` bytes (to hand to a provider's upload).
    pub async fn bytes(&self, key: &str, max: u64) -> Result<Bytes, MediaError> {
        let path = Self::path(key)?;
        let got = self.inner.get(&path).await?;
        if got.meta.size > max {
            return Err(MediaError::TooLarge(max));
        }
        Ok(got.bytes().await?)
    }

    /// Copies a stored file to a new key (inside the store: an S3 server-side copy).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), MediaError> {
        let (from, to) = (Self::path(from)?, Self::path(to)?);
        self.inner.copy(&from, &to).await?;
        Ok(())
    }

    /// Removes a file; one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let path = Self::path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn read_all(s: &MediaStore, key: &str) -> Result<Vec<u8>, MediaError> {
        let got = s.get(key).await?;
        let parts: Vec<Bytes> = got
            .stream
            .try_collect()
            .await
            .map_err(|e| MediaError::Store(e.to_string()))?;
        Ok(parts.concat())
    }

    #[tokio::test]
    async fn files_go_in_whole_and_come_back_as_streams() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = MediaStore::dir(&dir.path().join("media"))?;
        s.put("abc-1", Bytes::from_static(b"hello")).await?;
        assert_eq!(read_all(&s, "abc-1").await?, b"hello");
        // Where files always lived: `<data_dir>/media/<id>`, so existing files stay readable.
        assert!(dir.path().join("media/abc-1").exists());
        let w = s
            .put_stream(
                "thumbs/abc-1",
                chunks(&[b"\x89PNG", b"\r\n\x1a\n", b"rest"]),
                100,
            )
            .await?;
        assert_eq!(w.size, 12);
        assert_eq!(w.head, b"\x89PNG\r\n\x1a\nrest");
        assert_eq!(s.bytes("thumbs/abc-1", 12).await?.len(), 12);
        assert!(matches!(
            s.bytes("thumbs/abc-1", 11).await,
            Err(MediaError::TooLarge(11))
        ));
        s.copy("abc-1", "library/abc-2").await?;
        assert_eq!(read_all(&s, "library/abc-2").await?, b"hello");
        s.delete("abc-1").await?;
        s.delete("abc-1").await?;
        assert_eq!(read_all(&s, "library/abc-2").await?, b"hello");
        assert!(matches!(s.get("abc-1").await, Err(MediaError::NotFound)));
        Ok(())
    }

    #[tokio::test]
    async fn a_stream_past_its_limit_or_cut_short_leaves_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = MediaStore::dir(dir.path())?;
        let big = s.put_stream("big", chunks(&[b"12345", b"67890"]), 9).await;
        assert!(matches!(big, Err(MediaError::TooLarge(9))), "{big:?}");
        assert!(matches!(s.get("big").await, Err(MediaError::NotFound)));
        let cut = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let cut = s.put_stream("cut", cut, 100).await;
        assert!(matches!(cut, Err(MediaError::Source(_))), "{cut:?}");
        assert!(matches!(s.get("cut").await, Err(MediaError::NotFound)));
        // Nothing but our files: no staging file is left in the directory either.
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn keys_that_could_leave_the_store_are_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = MediaStore::dir(&dir.path().join("media"))?;
        std::fs::write(dir.path().join("secret"), b"x")?;
        for key in [
            "../secret",
            "",
            "a//b",
            "/etc/passwd",
            "a/./b",
            "a b",
            "a\0b",
        ] {
            assert!(
                matches!(s.get(key).await, Err(MediaError::Store(_))),
                "{key:?}"
            );
            assert!(s.put(key, Bytes::from_static(b"x")).await.is_err());
        }
        Ok(())
    }
}
