//! The client the sandboxes deliver their webhooks with: reqwest with rustls on ring, as the
//! workspace is configured (reqwest is built without a crypto provider).

use std::time::Duration;

/// Installs ring as the process's rustls provider (nothing happens if one is installed already).
fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the given timeout (milliseconds).
pub(crate) fn client(timeout_ms: u64) -> anyhow::Result<reqwest::Client> {
    tls_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(timeout_ms.clamp(1, 10_000)))
        .build()?)
}
