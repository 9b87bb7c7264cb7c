//! `switchboard-bench`: the benchmark harness. Every scenario runs the real `switchboard` binary as
//! its own process on this machine and reports ratios against a baseline measured in the same run.
//! Results and the commands that reproduce them: BENCHMARKS.md.

mod automation;
mod baseline;
mod comments;
mod db;
mod fanout;
mod ingest;
mod media;
mod queries;
mod server;
mod soak;
mod stats;

use anyhow::bail;
use clap::{Parser, Subcommand};
use db::Target;
use server::Server;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    about = "Benchmarks for Switchboard's hot paths"
)]
struct Cli {
    /// The switchboard binary to measure (build it with `cargo build --release` first).
    #[arg(long, global = true, default_value = "target/release/switchboard")]
    bin: PathBuf,
    /// Measure on PostgreSQL instead of a fresh SQLite file: postgres://… (each run gets a schema
    /// of its own in that database, dropped afterwards; the queries dataset keeps its schema).
    #[arg(long, global = true, env = "SWITCHBOARD_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Signed Messenger and WhatsApp webhooks → stored, pushed to agents; with the bare-handler
    /// baseline.
    Ingest {
        /// Facebook Pages.
        #[arg(long, default_value_t = 10)]
        pages: usize,
        /// WhatsApp numbers (0: Messenger only).
        #[arg(long, default_value_t = 4)]
        numbers: usize,
        /// The share of webhooks that come from WhatsApp.
        #[arg(long, default_value_t = 0.5)]
        whatsapp_share: f64,
        #[arg(long, default_value_t = 5000)]
        customers: usize,
        #[arg(long, default_value_t = 50_000)]
        messages: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Webhook requests per second (default: as fast as answered).
        #[arg(long)]
        rate: Option<u64>,
        /// Agent sockets connected during the run.
        #[arg(long, default_value_t = 10)]
        agents: usize,
    },
    /// Automation on ingest: the same mix with no flows, with many keyword flows, and with a FAQ
    /// bot answering every message at half the first run's rate (reply latency).
    Automation {
        /// Active keyword flows in the second run.
        #[arg(long, default_value_t = 50)]
        flows: usize,
        #[arg(long, default_value_t = 2000)]
        customers: usize,
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Comment rules on a livestream's comments: ingest without rules and with rules that hide
    /// every comment with a phone number (the same-run ratio), and comment → hide latency.
    Comments {
        #[arg(long, default_value_t = 4)]
        pages: usize,
        #[arg(long, default_value_t = 2000)]
        customers: usize,
        #[arg(long, default_value_t = 20_000)]
        comments: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Webhook requests per second (default: as fast as answered).
        #[arg(long)]
        rate: Option<u64>,
    },
    /// A few seconds of ingest asserting only correctness (nothing lost, nothing duplicated).
    Smoke,
    /// Large files: the server's memory while a 20 MiB file is uploaded, served and downloaded
    /// from a provider (each held whole at most once), and its idle memory after (within 10 %).
    Media,
    /// Crash soak: sustained signed ingest and queued replies while the server is `kill -9`ed at
    /// random moments and restarted; then every acknowledged message must be stored exactly once
    /// and every queued reply delivered once or failed with a reason.
    Soak {
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// Seeds the moments of the kills and the reply targets.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Shortest time the server runs between two kills (ms).
        #[arg(long, default_value_t = 500)]
        min_up_ms: u64,
        /// Longest time the server runs between two kills (ms).
        #[arg(long, default_value_t = 8000)]
        max_up_ms: u64,
        /// Webhook requests per second.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Agent replies queued per second.
        #[arg(long, default_value_t = 10)]
        reply_rate: u64,
        /// Sandbox customers the replies go to.
        #[arg(long, default_value_t = 20)]
        reply_customers: usize,
        /// Longest wait after the last kill for every reply to be sent or failed (a send cut off
        /// by a kill is held for the outbox's 5-minute lease).
        #[arg(long, default_value_t = 420)]
        settle_secs: u64,
    },
    /// Many agent sockets, customer messages pushed to all of them.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        #[arg(long, default_value_t = 1000)]
        events: usize,
        #[arg(long, default_value_t = 200)]
        rate: u64,
    },
    /// List views and opening a conversation on a generated dataset (generated once, reused).
    Queries {
        #[arg(long, default_value = "bench-data/queries")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        conversations: usize,
        #[arg(long, default_value_t = 10)]
        messages_per: usize,
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// Idle server memory.
    Idle,
    /// The bare-handler baseline server (started by `ingest`; not for direct use).
    #[command(hide = true)]
    BaselineServer {
        #[arg(long)]
        bind: std::net::SocketAddr,
        /// The bytes `GET /list` answers with.
        #[arg(long)]
        list_body: Option<PathBuf>,
    },
}

fn temp_dir() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("sb-bench-").tempdir()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a default TLS provider (the workspace uses rustls on ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    if !matches!(cli.command, Command::BaselineServer { .. }) && !cli.bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release), or pass --bin",
            cli.bin.display()
        );
    }
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel()
    );
    match cli.command {
        Command::BaselineServer { bind, list_body } => baseline::serve(bind, list_body).await,
        Command::Ingest {
            pages,
            numbers,
            whatsapp_share,
            customers,
            messages,
            concurrency,
            rate,
            agents,
        } => {
            let o = ingest::Opts {
                pages,
                numbers,
                customers,
                messages,
                concurrency,
                rate,
                agents,
                dup_pct: 0.05,
                batch_pct: 0.2,
                whatsapp_pct: whatsapp_share,
            };
            run_ingest(&cli.bin, cli.database_url.as_deref(), &o, true).await
        }
        Command::Automation {
            flows,
            customers,
            messages,
            concurrency,
        } => {
            let o = ingest::Opts {
                pages: 10,
                numbers: 4,
                customers,
                messages,
                concurrency,
                rate: None,
                agents: 1,
                dup_pct: 0.05,
                batch_pct: 0.2,
                whatsapp_pct: 0.5,
            };
            let r = automation::run(&cli.bin, cli.database_url.as_deref(), &o, flows).await?;
            automation::print(&r);
            let errors = r.none.errors
                + r.flows.errors
                + r.bot.load.errors
                + r.bot_max.load.errors
                + r.bot_half_max.load.errors;
            if errors > 0 {
                bail!("{errors} webhooks were not acknowledged");
            }
            Ok(())
        }
        Command::Media => {
            let r = media::run(&cli.bin, cli.database_url.as_deref()).await?;
            media::print(&r);
            media::check(&r)
        }
        Command::Comments {
            pages,
            customers,
            comments: n,
            concurrency,
            rate,
        } => {
            let o = ingest::Opts {
                pages,
                numbers: 0,
                customers,
                messages: n,
                concurrency,
                rate,
                agents: 0,
                dup_pct: 0.0,
                batch_pct: 0.2,
                whatsapp_pct: 0.0,
            };
            let r = comments::run(&cli.bin, cli.database_url.as_deref(), &o).await?;
            comments::print(&r);
            if r.without.errors + r.with.errors > 0 {
                bail!("some webhooks were not acknowledged");
            }
            if r.hidden != r.phone_comments || r.hide_calls != r.hidden {
                bail!(
                    "{} of {} phone comments hidden with {} calls",
                    r.hidden,
                    r.phone_comments,
                    r.hide_calls
                );
            }
            Ok(())
        }
        Command::Smoke => {
            let o = ingest::Opts {
                pages: 3,
                numbers: 2,
                customers: 200,
                messages: 2000,
                concurrency: 16,
                rate: None,
                agents: 2,
                dup_pct: 0.05,
                batch_pct: 0.2,
                whatsapp_pct: 0.5,
            };
            run_ingest(&cli.bin, cli.database_url.as_deref(), &o, false).await
        }
        Command::Soak {
            kills,
            seed,
            min_up_ms,
            max_up_ms,
            rate,
            concurrency,
            reply_rate,
            reply_customers,
            settle_secs,
        } => {
            let o = soak::Opts {
                kills,
                seed,
                min_up_ms,
                max_up_ms,
                rate,
                concurrency,
                reply_rate,
                reply_customers,
                settle_secs,
            };
            let r = soak::run(&cli.bin, cli.database_url.as_deref(), &o).await?;
            soak::print(std::slice::from_ref(&r), &o);
            let failures = r.failures(&o);
            if failures.is_empty() {
                println!("soak check: 1 passed, 0 failed");
                Ok(())
            } else {
                println!("soak check: 0 passed, 1 failed");
                bail!(failures.join("; "))
            }
        }
        Command::Fanout {
            sockets,
            events,
            rate,
        } => {
            let o = fanout::Opts {
                sockets,
                events,
                rate,
            };
            // The bare broadcast server first, then the real one, each alone on the machine.
            let bare = baseline::Process::start(None).await?;
            let b = fanout::run(fanout::Target::Baseline(&bare), &o).await;
            bare.stop().await;
            let b = b?;
            let dir = temp_dir()?;
            let target = Target::fresh(cli.database_url.as_deref(), dir.path()).await?;
            println!("store: {}", target.describe());
            let server = Server::start(&cli.bin, dir.path(), &target, true).await?;
            let r = fanout::run(fanout::Target::Switchboard(&server), &o).await;
            server.stop().await;
            target.drop().await?;
            let r = r?;
            println!(
                "\n| run | sockets | events | frames delivered | frames/s | lag p50 | lag p99 | RSS idle | RSS connected | RSS after |"
            );
            println!("|---|---|---|---|---|---|---|---|---|---|");
            for (name, r) in [("baseline (bare broadcast)", &b), ("switchboard", &r)] {
                println!(
                    "| {name} | {} | {} | {}/{} | {:.0} | {:.1} ms | {:.1} ms | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
                    r.sockets,
                    r.events,
                    r.frames,
                    r.expected_frames,
                    r.frames_per_sec,
                    r.lag.pct(50.0),
                    r.lag.pct(99.0),
                    r.rss_idle_mib,
                    r.rss_connected_mib,
                    r.rss_after_mib
                );
            }
            println!(
                "\nfan-out / baseline = {:.2} (frames/s); lag p99 {:.1}× the baseline's",
                r.frames_per_sec / b.frames_per_sec,
                r.lag.pct(99.0) / b.lag.pct(99.0)
            );
            if r.frames < r.expected_frames {
                bail!("{} frames were not delivered", r.expected_frames - r.frames);
            }
            Ok(())
        }
        Command::Queries {
            data_dir,
            conversations,
            messages_per,
            samples,
        } => {
            let o = queries::Opts {
                conversations,
                messages_per,
                samples,
            };
            let target = Target::new(
                cli.database_url.as_deref(),
                &data_dir,
                &format!("bench_q{conversations}x{messages_per}"),
            )
            .await?;
            println!("store: {}", target.describe());
            queries::generate(&cli.bin, &data_dir, &target, &o).await?;
            let server = Server::start(&cli.bin, &data_dir, &target, false).await?;
            let views = queries::measure(&server, &o).await;
            // The floor: a bare server answering with the bytes of a real page of the list.
            let page = server
                .api(reqwest::Method::GET, "/conversations", &server.admin, None)
                .await;
            server.stop().await;
            let (views, page) = (views?, page?);
            let body = tempfile::NamedTempFile::new()?;
            std::fs::write(body.path(), serde_json::to_vec(&page)?)?;
            let bare = baseline::Process::start(Some(body.path())).await?;
            let floor = queries::measure_floor(&bare, &o).await;
            bare.stop().await;
            let floor = floor?;
            println!(
                "\ndataset: {conversations} conversations, {} messages",
                conversations * messages_per
            );
            println!(
                "baseline (a bare server answering with the bytes of one page): p50 {:.2} ms, p99 {:.2} ms",
                floor.pct(50.0),
                floor.pct(99.0)
            );
            println!("| view | rows | p50 | p99 | p50 / baseline |");
            println!("|---|---|---|---|---|");
            for v in views {
                println!(
                    "| {} | {} | {:.2} ms | {:.2} ms | {:.1} |",
                    v.name,
                    v.rows,
                    v.samples.pct(50.0),
                    v.samples.pct(99.0),
                    v.samples.pct(50.0) / floor.pct(50.0)
                );
            }
            Ok(())
        }
        Command::Idle => {
            let dir = temp_dir()?;
            let target = Target::fresh(cli.database_url.as_deref(), dir.path()).await?;
            println!("store: {}", target.describe());
            let server = Server::start(&cli.bin, dir.path(), &target, true).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!("idle server RSS: {:.1} MiB", server.rss_mib());
            server.stop().await;
            target.drop().await
        }
    }
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default()
}

async fn run_ingest(
    bin: &std::path::Path,
    database_url: Option<&str>,
    o: &ingest::Opts,
    with_baseline: bool,
) -> anyhow::Result<()> {
    // 1. The baseline: the same requests to a bare verify+parse handler, in this run.
    let baseline = if with_baseline {
        let bare = baseline::Process::start(None).await?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()?;
        let (hooks, _) = ingest::build("baseline", o, 0);
        let r = ingest::load(&http, &bare.base, hooks, o, "baseline").await;
        bare.stop().await;
        Some(r?)
    } else {
        None
    };
    // 2. The real server.
    let dir = temp_dir()?;
    let target = Target::fresh(database_url, dir.path()).await?;
    println!("store: {}", target.describe());
    let server = Server::start(bin, dir.path(), &target, true).await?;
    let rss_before = server.rss_mib();
    let r = ingest::run(&server, o).await;
    let rss_after = server.rss_mib();
    server.stop().await;
    target.drop().await?;
    let r = r?;
    let unique = r.load.messages as i64;
    println!(
        "\n| run | requests | messages | errors | msg/s | req/s | ack p50 | ack p99 | →socket p50 | →socket p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    if let Some(b) = &baseline {
        println!(
            "| baseline (verify+parse) | {} | {} | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | – | – |",
            b.requests,
            b.messages,
            b.errors,
            b.msgs_per_sec(),
            b.reqs_per_sec(),
            b.ack.pct(50.0),
            b.ack.pct(99.0)
        );
    }
    println!(
        "| switchboard | {} | {} | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        r.load.requests,
        r.load.messages,
        r.load.errors,
        r.load.msgs_per_sec(),
        r.load.reqs_per_sec(),
        r.load.ack.pct(50.0),
        r.load.ack.pct(99.0),
        r.e2e.pct(50.0),
        r.e2e.pct(99.0)
    );
    if let Some(b) = &baseline {
        println!(
            "\ningest / baseline = {:.2} (messages/s)",
            r.load.msgs_per_sec() / b.msgs_per_sec()
        );
    }
    println!("server RSS: {rss_before:.1} MiB before, {rss_after:.1} MiB after");
    println!(
        "stored: {} rows, {} distinct, {} acknowledged unique; pushed to the socket: {}",
        r.stored, r.stored_distinct, unique, r.delivered
    );
    let mut failures = Vec::new();
    if r.load.errors > 0 {
        failures.push(format!("{} webhooks were not acknowledged", r.load.errors));
    }
    if r.stored != unique || r.stored_distinct != unique {
        failures.push(format!(
            "stored {} rows ({} distinct) for {unique} acknowledged messages",
            r.stored, r.stored_distinct
        ));
    }
    if r.delivered != r.load.messages {
        failures.push(format!(
            "{} of {} messages reached the agent socket",
            r.delivered, r.load.messages
        ));
    }
    if failures.is_empty() {
        println!("ingest check: 1 passed, 0 failed");
        Ok(())
    } else {
        println!("ingest check: 0 passed, 1 failed");
        bail!(failures.join("; "))
    }
}
