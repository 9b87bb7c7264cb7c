//! `switchboard`: the command line. `serve` runs the service; `demo` runs it with a ready-made
//! workspace; `migrate` prepares the database; `user add` creates an agent.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::sync::Arc;
use switchboard_server::clock::{Clock, OffsetFileClock, SystemClock};
use switchboard_server::config::Config;
use switchboard_server::{Application, init_tracing, open_store, shutdown_signal};

mod demo;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Self-hosted omnichannel customer-conversation hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Configure with switchboard.toml and SWITCHBOARD_* variables.
    Serve {
        /// Tests only: add the number of milliseconds written in this file to the clock (read on
        /// every use), so a test can move time forward for several server processes at once.
        #[arg(long, hide = true)]
        test_clock_file: Option<std::path::PathBuf>,
    },
    /// Run the server with a ready workspace: an admin, two agents and a live-chat inbox.
    Demo {
        /// Start over: delete the demo's data directory first.
        #[arg(long)]
        reset: bool,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Run the Meta sandbox on its own: a local Graph API (Send API, comments, profiles) that posts
    /// signed webhooks to a Switchboard. Play customers through its /_sandbox control API.
    Sandbox {
        /// Where the sandbox listens.
        #[arg(long, default_value = "127.0.0.1:9999")]
        bind: std::net::SocketAddr,
        /// Switchboard's webhook URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/webhooks/meta")]
        webhook_url: String,
        /// The sandbox Page (or Instagram account) id.
        #[arg(long, default_value = "100000000000001")]
        page_id: String,
        /// Emulate an Instagram account instead of a Facebook Page.
        #[arg(long)]
        instagram: bool,
        /// Also emulate a WhatsApp number, a Zalo OA, a Telegram bot and a Shopee shop (on the
        /// next port; webhooks go to the same host as --webhook-url).
        #[arg(long)]
        channels: bool,
    },
    /// Manage agents.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The key that seals provider secrets (page tokens, app secrets, refresh tokens) at rest.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Print a new random key (for `secrets_key`).
    NewKey,
    /// Seal every inbox's secrets again with `secrets_key`. To rotate: set the new key as
    /// `secrets_key`, the old one in `secrets_previous_keys`, run this, then drop the old key.
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an agent; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, supervisor or agent
        #[arg(long, default_value = "agent")]
        role: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load().map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    init_tracing(&config.log);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve {
        test_clock_file: None,
    }) {
        Command::Serve { test_clock_file } => {
            let clock = match test_clock_file {
                Some(path) => {
                    eprintln!(
                        "test clock: time is offset by the milliseconds in {}",
                        path.display()
                    );
                    Arc::new(OffsetFileClock::new(path)) as Arc<dyn Clock>
                }
                None => clock,
            };
            let app = Application::build(config, clock).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Demo { reset } => {
            if std::env::var_os("SWITCHBOARD_DATA_DIR").is_none() && config.database_url.is_none() {
                config.data_dir = config.data_dir.join("demo");
            }
            if reset && config.data_dir.exists() {
                std::fs::remove_dir_all(&config.data_dir)
                    .with_context(|| format!("removing {}", config.data_dir.display()))?;
            }
            let app = Application::build(config, clock).await?;
            let url = format!("http://{}", app.local_addr());
            let summary = demo::prepare(&app.state(), &url).await?;
            println!("{summary}");
            let (sandbox, page) = demo::meta::start(&app.state(), &url).await?;
            println!("{page}");
            demo::meta::simulate(Arc::new(sandbox));
            let (channels, text) = demo::channels::start(&app.state(), &url).await?;
            println!("{text}");
            demo::channels::simulate(Arc::new(channels));
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Sandbox {
            bind,
            webhook_url,
            page_id,
            instagram,
            channels,
        } => {
            // Kept alive until shutdown.
            let _channels = if channels {
                Some(channel_sandbox(clock.clone(), bind, &webhook_url).await?)
            } else {
                None
            };
            use switchboard_sandbox::meta::{PageSpec, Sandbox};
            let sb = Sandbox::start(clock, bind).await?;
            let token = switchboard_server::auth::random_token(24);
            let secret = switchboard_server::auth::random_token(24);
            let verify = switchboard_server::auth::random_token(12);
            sb.add_page(PageSpec {
                id: page_id.clone(),
                object: if instagram {
                    switchboard_channels::meta::Object::Instagram
                } else {
                    switchboard_channels::meta::Object::Page
                },
                token: token.clone(),
                app_secret: secret.clone(),
                webhook_url,
                echoes: true,
                private_reply_recipient_id: true,
                auto_delivery: true,
            });
            let (channel, key) = if instagram {
                ("instagram", "ig_account_id")
            } else {
                ("messenger", "page_id")
            };
            let inbox = serde_json::json!({"name": "Sandbox page", "channel": channel, "settings": {
                key: page_id, "page_access_token": token, "app_secret": secret,
                "verify_token": verify, "api_base_url": sb.base_url()}});
            println!(
                "Meta sandbox at {} (Graph API base {})
",
                sb.addr(),
                sb.base_url()
            );
            println!(
                "Create the inbox (admin token):
  curl -s http://127.0.0.1:8080/api/v1/inboxes -H 'authorization: Bearer TOKEN' \\
    -H 'content-type: application/json' -d '{inbox}'
"
            );
            println!(
                "Play a customer:
  curl -s http://{}/_sandbox/messages -H 'content-type: application/json' \\
    -d '{{\"page_id\":\"{page_id}\",\"user_id\":\"5550001\",\"text\":\"hi\"}}'",
                sb.addr()
            );
            println!(
                "  curl -s http://{}/_sandbox/comments -H 'content-type: application/json' \\
    -d '{{\"page_id\":\"{page_id}\",\"user_id\":\"5550001\",\"post_id\":\"{page_id}_1\",\"text\":\"price?\"}}'",
                sb.addr()
            );
            println!(
                "Make the next call fail: POST /_sandbox/faults {{page_id, fault: 429|500|timeout|token_expired|page_restricted}}; sent messages: GET /_sandbox/sent"
            );
            shutdown_signal().await;
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::NewKey,
        } => {
            println!("{}", switchboard_store::secrets::SecretBox::generate_key());
            Ok(())
        }
        Command::Secrets {
            command: SecretsCommand::Rotate,
        } => {
            if config.secrets_key.is_none()
                && switchboard_store::is_postgres(&config.database_url())
            {
                anyhow::bail!("set secrets_key (SWITCHBOARD_SECRETS_KEY) first");
            }
            // Opening the store seals whatever is not sealed with the current key.
            open_store(&config).await?;
            println!(
                "Every inbox's secrets are sealed with the current key; the keys in \
                 secrets_previous_keys can be removed now."
            );
            Ok(())
        }
        Command::Migrate => {
            open_store(&config).await?;
            println!(
                "database is up to date: {}",
                redacted(&config.database_url())
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    email,
                    name,
                    role,
                    password_stdin,
                },
        } => {
            if !password_stdin {
                bail!("pass --password-stdin and type the password on standard input");
            }
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let agent = demo::add_user(&config, clock, &email, &name, &role, password).await?;
            println!(
                "created {} <{}> as {} (id {})",
                agent.name, agent.email, agent.role, agent.id
            );
            Ok(())
        }
    }
}

/// `switchboard sandbox --channels`: the WhatsApp / Zalo / Telegram / Shopee sandbox next to the
/// Meta one, with one account of each and the inbox settings to create.
async fn channel_sandbox(
    clock: Arc<dyn Clock>,
    bind: std::net::SocketAddr,
    meta_webhook_url: &str,
) -> anyhow::Result<switchboard_sandbox::channels::ChannelSandbox> {
    use switchboard_sandbox::channels::{ChannelSandbox, ShopeeShopSpec, WaNumberSpec, ZaloOaSpec};
    use switchboard_server::auth::random_token;
    let next = std::net::SocketAddr::new(bind.ip(), bind.port().wrapping_add(1));
    let sb = ChannelSandbox::start(clock, next).await?;
    let host = meta_webhook_url
        .split("/webhooks/")
        .next()
        .unwrap_or(meta_webhook_url)
        .to_owned();
    let (wa_token, wa_secret) = (random_token(24), random_token(24));
    sb.add_whatsapp_number(WaNumberSpec {
        phone_number_id: "100000000000101".into(),
        waba_id: "100000000000100".into(),
        display_phone_number: "84280000101".into(),
        token: wa_token.clone(),
        app_secret: wa_secret.clone(),
        webhook_url: format!("{host}/webhooks/whatsapp"),
        auto_delivery: true,
        sync_window_errors: false,
    });
    sb.add_whatsapp_template(
        "100000000000100",
        serde_json::json!({"name": "order_update", "language": "vi", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Chào {{1}}, đơn {{2}} đã được gửi."}]}),
    );
    let (z_secret, z_key, z_access, z_refresh) = (
        random_token(24),
        random_token(24),
        random_token(24),
        random_token(24),
    );
    sb.add_zalo_oa(ZaloOaSpec {
        oa_id: "100000000000201".into(),
        app_id: "100000000000200".into(),
        app_secret: z_secret.clone(),
        oa_secret_key: z_key.clone(),
        access_token: z_access.clone(),
        refresh_token: z_refresh.clone(),
        webhook_url: format!("{host}/webhooks/zalo"),
        echoes: true,
    });
    let bot = format!("100000001:{}", random_token(24));
    sb.add_telegram_bot(&bot);
    let (partner_key, shop_token) = (random_token(24), random_token(24));
    sb.add_shopee_shop(ShopeeShopSpec {
        shop_id: "789".into(),
        partner_id: "1001".into(),
        partner_key: partner_key.clone(),
        access_token: shop_token.clone(),
        push_url: format!("{host}/webhooks/shopee"),
    });
    let base = sb.base_url();
    let inboxes = [
        serde_json::json!({"name": "WhatsApp (sandbox)", "channel": "whatsapp", "settings": {"phone_number_id": "100000000000101",
            "waba_id": "100000000000100", "access_token": wa_token, "app_secret": wa_secret, "verify_token": random_token(12),
            "api_base_url": sb.whatsapp_base_url()}}),
        serde_json::json!({"name": "Zalo OA (sandbox)", "channel": "zalo", "settings": {"oa_id": "100000000000201",
            "app_id": "100000000000200", "app_secret": z_secret, "oa_secret_key": z_key, "access_token": z_access,
            "refresh_token": z_refresh, "api_base_url": base, "oauth_base_url": base}}),
        serde_json::json!({"name": "Telegram (sandbox)", "channel": "telegram", "settings": {"bot_token": bot, "api_base_url": base}}),
        serde_json::json!({"name": "Shopee (sandbox)", "channel": "shopee", "settings": {"shop_id": "789", "partner_id": "1001",
            "partner_key": partner_key, "access_token": shop_token, "api_base_url": base,
            "push_callback_url": format!("{host}/webhooks/shopee")}}),
    ];
    println!(
        "Channel sandbox (WhatsApp, Zalo, Telegram, Shopee) at {base}\nCreate the inboxes (admin token):"
    );
    for i in inboxes {
        println!(
            "  curl -s {host}/api/v1/inboxes -H 'authorization: Bearer TOKEN' -H 'content-type: application/json' -d '{i}'"
        );
    }
    println!(
        "Play a customer (channel whatsapp|zalo|telegram|shopee; account = phone_number_id, oa_id, bot token or shop id):
  curl -s {base}/_sandbox/messages -H 'content-type: application/json' \\
    -d '{{\"channel\":\"whatsapp\",\"account\":\"100000000000101\",\"customer\":\"84901000001\",\"name\":\"Thu\",\"text\":\"hi\"}}'
Sent messages: GET {base}/_sandbox/sent
"
    );
    Ok(sb)
}

fn redacted(url: &str) -> String {
    format!(
        "{:?}",
        Config {
            database_url: Some(url.to_owned()),
            ..Config::default()
        }
    )
    .split("database_url: Some(\"")
    .nth(1)
    .and_then(|s| s.split('"').next())
    .unwrap_or(url)
    .to_owned()
}
