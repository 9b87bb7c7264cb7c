//! Which key seals provider secrets: the configured `secrets_key`, or on SQLite (one node) a key
//! generated once into `<data_dir>/secrets.key` (readable by the owner only), kept apart from the
//! database so that a copy of the database alone reveals no secret.

use crate::config::Config;
use anyhow::Context;
use switchboard_store::secrets::SecretBox;

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";

/// The configured keys, or `None` (PostgreSQL without a configured key: secrets stay unsealed).
pub fn secret_box(config: &Config) -> anyhow::Result<Option<SecretBox>> {
    let key = match &config.secrets_key {
        Some(k) => k.clone(),
        None if switchboard_store::is_postgres(&config.database_url()) => {
            tracing::warn!(
                "provider secrets are stored unsealed: set secrets_key (the same on every node)"
            );
            return Ok(None);
        }
        None => key_file(config)?,
    };
    SecretBox::new(&key, &config.secrets_previous_keys)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("configuration: secrets_key: {e}"))
}

fn key_file(config: &Config) -> anyhow::Result<String> {
    let path = config.data_dir.join(KEY_FILE);
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().to_owned());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let key = SecretBox::generate_key();
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the key that seals provider secrets");
    Ok(key)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(key.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    std::fs::write(path, key)
}
