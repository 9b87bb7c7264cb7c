//! Builds the web UI (`web/`, Preact + Vite) into `web/dist`, which the binary embeds.
//! Runs only when the UI's sources change. `SWITCHBOARD_SKIP_WEB_BUILD=1` skips it (a placeholder
//! page is embedded instead when nothing was built yet); without npm it warns and does the same.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let web = manifest.join("../../web");
    for p in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "vite.widget.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_SKIP_WEB_BUILD");
    let dist = web.join("dist");

    if std::env::var("SWITCHBOARD_SKIP_WEB_BUILD").is_ok_and(|v| v == "1") {
        placeholder(
            &dist,
            "the web build was skipped (SWITCHBOARD_SKIP_WEB_BUILD=1)",
        );
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if Command::new(npm).arg("--version").output().is_err() {
        println!(
            "cargo:warning=npm not found: the web UI is not built. Install Node.js 20+ and rebuild."
        );
        placeholder(
            &dist,
            "npm was not found when Switchboard was built; install Node.js 20+ and rebuild",
        );
        return;
    }
    if !web.join("node_modules/.package-lock.json").exists() {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&web),
            "npm ci",
        );
    }
    run(
        Command::new(npm).args(["run", "build"]).current_dir(&web),
        "npm run build",
    );
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "{what} failed in web/ ({s}); fix the UI build or set SWITCHBOARD_SKIP_WEB_BUILD=1"
        ),
        Err(e) => panic!("could not run {what}: {e}"),
    }
}

fn placeholder(dist: &Path, why: &str) {
    if dist.join("index.html").exists() {
        return;
    }
    let _ = std::fs::create_dir_all(dist);
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Switchboard</title><p>Switchboard is running, but its web UI was not built: {why}.</p><p>API: <a href=/api/v1/openapi.json>/api/v1/openapi.json</a></p>"
    );
    let _ = std::fs::write(dist.join("index.html"), page);
}
