//! Runs the real `switchboard` binary as a separate process (as in production) and talks to it.

use crate::db::Target;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const ADMIN_EMAIL: &str = "bench@switchboard.local";
pub const ADMIN_PASSWORD: &str = "benchmark-password";

pub struct Server {
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub target: Target,
    pub http: reqwest::Client,
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn env_for(data_dir: &Path, database_url: Option<String>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "SWITCHBOARD_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        (
            "SWITCHBOARD_LOG".to_owned(),
            std::env::var("SWITCHBOARD_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        ),
        // The benchmark measures our own work, not calls to an absent provider or rate limits.
        (
            "SWITCHBOARD_WEBHOOKS__PROFILE_SYNC".to_owned(),
            "false".to_owned(),
        ),
        (
            "SWITCHBOARD_LIMITS__WIDGET_MESSAGES_PER_MINUTE".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SWITCHBOARD_LIMITS__WIDGET_PER_IP_PER_MINUTE".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SWITCHBOARD_LIMITS__LOGIN_PER_MINUTE".to_owned(),
            "100000".to_owned(),
        ),
    ];
    if let Some(url) = database_url {
        env.push(("SWITCHBOARD_DATABASE_URL".to_owned(), url));
    }
    env
}

impl Server {
    /// Starts `bin serve` on a free port; creates the benchmark admin first when `fresh`.
    pub async fn start(
        bin: &Path,
        data_dir: &Path,
        target: &Target,
        fresh: bool,
    ) -> anyhow::Result<Self> {
        let env = env_for(data_dir, target.server_url());
        if fresh {
            let mut add = Command::new(bin)
                .args([
                    "user",
                    "add",
                    "--email",
                    ADMIN_EMAIL,
                    "--name",
                    "Bench",
                    "--role",
                    "admin",
                    "--password-stdin",
                ])
                .envs(env.iter().cloned())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("running {}", bin.display()))?;
            if let Some(mut stdin) = add.stdin.take() {
                tokio::io::AsyncWriteExt::write_all(&mut stdin, ADMIN_PASSWORD.as_bytes()).await?;
            }
            if !add.wait().await?.success() {
                bail!("`switchboard user add` failed");
            }
        }
        // Migrations first, in the open: on a large dataset one may take minutes.
        let migrate = Command::new(bin)
            .arg("migrate")
            .envs(env.iter().cloned())
            .env("SWITCHBOARD_LOG", "info")
            .stdout(Stdio::null())
            .status()
            .await
            .with_context(|| format!("running {} migrate", bin.display()))?;
        if !migrate.success() {
            bail!("`switchboard migrate` failed");
        }
        let port = free_port()?;
        let child = spawn_serve(bin, data_dir, target, port)?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()?;
        wait_healthy(&http, &base).await?;
        let login: serde_json::Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let admin = login["token"].as_str().context("login failed")?.to_owned();
        Ok(Self {
            child,
            base,
            admin,
            target: target.clone(),
            http,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident memory of the server process, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.pid()
            .and_then(rss_kib)
            .map(|k| k as f64 / 1024.0)
            .unwrap_or(f64::NAN)
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }

    pub async fn stop(mut self) {
        if let Some(pid) = self.pid() {
            // SIGTERM: a graceful stop, like a deploy.
            let _ = Command::new("kill").arg(pid.to_string()).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// `bin serve` on 127.0.0.1:`port` with the benchmark's environment (also how the soak restarts
/// a killed server on the same data and port).
pub fn spawn_serve(
    bin: &Path,
    data_dir: &Path,
    target: &Target,
    port: u16,
) -> anyhow::Result<Child> {
    Ok(Command::new(bin)
        .arg("serve")
        .envs(env_for(data_dir, target.server_url()))
        .env("SWITCHBOARD_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

pub async fn wait_healthy(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server at {base} did not come up")
}

pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
