//! The command line: `serve`, `check-config`, `token …`, `user …`, `import`, `explain`,
//! `reindex`, and exit codes. The longer commands have a file each: [`import`], [`explain`].
//!
//! `token`, `user` and `import` work whether or not the server runs: through the server's
//! admin socket when it answers, otherwise directly on the database file.

mod explain;
mod import;

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::admin::{self, AdminRequest, AdminResponse, TokenInfo, UserInfo};
use crate::app::App;
use crate::auth::password;
use crate::config::{self, Options, Settings};
use crate::storage::{Role, Scope, Store};

/// Exit code for a failed command (usage errors exit with 2, from clap).
pub const EXIT_FAILURE: u8 = 1;

/// Security monitoring appliance: login events and auth logs in, attacks and alerts out.
#[derive(Debug, Parser)]
#[command(name = "securify", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file (keys as the long options, with `_` for `-`)
    #[arg(long, env = "SECURIFY_CONFIG", value_name = "FILE", global = true)]
    config: Option<std::path::PathBuf>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance: HTTPS API and dashboard
    Serve(ConfigArgs),
    /// Validate the configuration and print the effective values with their sources
    CheckConfig(ConfigArgs),
    /// Manage API tokens
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage dashboard and API users
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show, line by line, what the appliance makes of an auth log (nothing is stored)
    Explain(ExplainArgs),
    /// Store an old log file (auth.log or NDJSON events), through the running server or
    /// directly on a stopped data directory
    Import {
        #[command(flatten)]
        import: ImportArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Rebuild the search index from the event store (on a stopped data directory)
    Reindex(ConfigArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The file, or `-` for standard input
    #[arg(value_name = "FILE")]
    input: std::path::PathBuf,
    /// What the lines are; `auto` looks at the first line
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Host of lines without a syslog header
    #[arg(long)]
    host: Option<String>,
    /// A label kept with each event (default: the file name)
    #[arg(long)]
    source: Option<String>,
    /// Year of the file's first syslog timestamp that carries none; default: this year, or last
    /// year for dates that would lie in the future
    #[arg(long)]
    year: Option<i32>,
    /// Offset from UTC of timestamps that carry none, e.g. `+02:00`
    #[arg(long, default_value = "UTC", value_parser = utc_offset)]
    utc_offset: time::UtcOffset,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Auto,
    Syslog,
    Ndjson,
}

#[derive(Debug, clap::Args)]
struct ExplainArgs {
    /// The log file, or `-` for standard input
    #[arg(value_name = "FILE")]
    input: std::path::PathBuf,
    /// One JSON object per line instead of a readable summary
    #[arg(long)]
    json: bool,
    /// Year of syslog timestamps that carry none (RFC 3164); default: this year, or last year
    /// for dates that would lie in the future
    #[arg(long)]
    year: Option<i32>,
    /// Offset from UTC of timestamps that carry none, e.g. `+02:00`; default: UTC
    #[arg(long, default_value = "UTC", value_parser = utc_offset)]
    utc_offset: time::UtcOffset,
}

impl From<ImportArgs> for import::ImportOptions {
    fn from(args: ImportArgs) -> Self {
        Self {
            input: args.input,
            format: match args.format {
                FormatArg::Auto => None,
                FormatArg::Syslog => Some(crate::ingest::batch::ImportFormat::Syslog),
                FormatArg::Ndjson => Some(crate::ingest::batch::ImportFormat::Ndjson),
            },
            host: args.host,
            source: args.source,
            year: args.year,
            utc_offset: args.utc_offset,
        }
    }
}

fn utc_offset(text: &str) -> Result<time::UtcOffset, String> {
    crate::ingest::parse::parse_utc_offset(text)
        .ok_or_else(|| format!("expected UTC or an offset like +02:00, got {text:?}"))
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; its secret is printed once
    Create {
        /// A name saying who uses the token
        #[arg(long)]
        name: String,
        /// Scope to grant; repeat for several (ingest, read, admin)
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// Expire the token after this many days
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; it stops working at once
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; without --password-stdin a password is generated and printed once
    Add {
        username: String,
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password
    Passwd {
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse()
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    // Everything the appliance writes (database, index, keys, certificate) is its own.
    crate::keys::private_files();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The configuration options are flattened into the first subcommand level.
    let leaf = matches.subcommand().map_or(&matches, |(_, sub)| sub);
    match cli.command {
        Command::Serve(args) => serve(resolve(args, leaf)?),
        Command::CheckConfig(args) => {
            let settings = resolve(args, leaf)?;
            print!("{}", config::describe(&settings));
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command, config } => token(&resolve(config, leaf)?, command),
        Command::User { command, config } => user(&resolve(config, leaf)?, command),
        Command::Explain(args) => explain(&args),
        Command::Import { import, config } => import::run(&resolve(config, leaf)?, import.into()),
        Command::Reindex(args) => reindex(&resolve(args, leaf)?),
    }
}

/// `securify reindex`: the index rebuilt from the store, with a progress bar.
fn reindex(settings: &Settings) -> anyhow::Result<ExitCode> {
    let socket = settings.admin_socket_path();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        anyhow::bail!(
            "a server is running on {} (admin socket {}): stop it first; a server also \
             rebuilds a missing or damaged index by itself when it starts",
            settings.data_dir.display(),
            socket.display()
        );
    }
    let store = open_existing_store(settings)?;
    let dir = crate::search::index_dir(&settings.data_dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove the old index {}", dir.display()))?;
    }
    let (search, _) = crate::search::SearchIndex::open(&dir)?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    search.rebuild(&store, settings.index_memory_bytes, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let documents = search.document_count();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "indexed {documents} events in {seconds:.1} s ({:.0} events/s) into {}",
        documents as f64 / seconds.max(1e-9),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let clock = crate::ingest::parse::LineClock::for_year(args.year, args.utc_offset);
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::new(stdout);
    let summary = if args.input.as_os_str() == "-" {
        explain::explain(std::io::stdin().lock(), out, args.json, clock)
    } else {
        let file = std::fs::File::open(&args.input)
            .with_context(|| format!("cannot open {}", args.input.display()))?;
        explain::explain(std::io::BufReader::new(file), out, args.json, clock)
    };
    match summary {
        Ok(summary) => {
            eprintln!(
                "{} lines, {} understood by a rule, {} templates",
                summary.lines, summary.understood, summary.templates
            );
            Ok(ExitCode::SUCCESS)
        }
        // A closed pipe (`| head`) ends the output; it is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot explain the input"),
    }
}

fn resolve(args: ConfigArgs, matches: &ArgMatches) -> anyhow::Result<Settings> {
    Ok(args
        .options
        .resolve(args.config.as_deref(), Some(matches))?)
}

fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(settings.log_format, &settings.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("securify")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let app = App::build(settings)?;
        app.run(shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = interrupt => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = interrupt.await;
        }
    }
}

/// Runs an admin request through the live server, or directly on the database file.
fn call(settings: &Settings, request: AdminRequest) -> anyhow::Result<AdminResponse> {
    let socket = settings.admin_socket_path();
    if let Some(response) = admin::call_socket(&socket, &request)
        .with_context(|| format!("cannot talk to the server at {}", socket.display()))?
    {
        return Ok(response);
    }
    let store = open_existing_store(settings)?;
    Ok(admin::respond(admin::execute(&store, None, request)))
}

/// The store of a data directory that has one, for the commands that work on a stopped
/// server; a clear error when there is none (rather than creating an empty one).
fn open_existing_store(settings: &Settings) -> anyhow::Result<Store> {
    let path = settings.database_path();
    if !path.exists() {
        anyhow::bail!(
            "no database at {} (run `securify serve` once, or pass --data-dir)",
            path.display()
        );
    }
    Ok(Store::open(&path, settings.cache_bytes)?)
}

fn expect_ok(response: AdminResponse) -> anyhow::Result<AdminResponse> {
    match response {
        AdminResponse::Error { message, .. } => Err(anyhow::anyhow!(message)),
        other => Ok(other),
    }
}

fn print_json(response: &AdminResponse) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(response)?);
    Ok(ExitCode::SUCCESS)
}

fn token(settings: &Settings, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create {
            name,
            scopes,
            expires_in_days,
            json,
        } => {
            let created_by = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "local".into())
            );
            let response = expect_ok(call(
                settings,
                AdminRequest::TokenCreate {
                    name,
                    scopes,
                    expires_in_days,
                    created_by,
                },
            )?)?;
            if json {
                return print_json(&response);
            }
            if let AdminResponse::TokenCreated { token, info } = response {
                eprintln!(
                    "Created token {} ({}) with scopes {}. Its secret is shown only once:",
                    info.id,
                    info.name,
                    scopes_text(&info)
                );
                println!("{token}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { json } => {
            let response = expect_ok(call(settings, AdminRequest::TokenList)?)?;
            if json {
                return print_json(&response);
            }
            if let AdminResponse::Tokens { tokens } = response {
                println!(
                    "{:<16}  {:<24}  {:<18}  {:<8}  LAST USED",
                    "ID", "NAME", "SCOPES", "STATUS"
                );
                for t in &tokens {
                    let status = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<16}  {:<24}  {:<18}  {:<8}  {}",
                        t.id,
                        t.name,
                        scopes_text(t),
                        status,
                        t.last_used_at.as_deref().unwrap_or("never")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id } => {
            expect_ok(call(
                settings,
                AdminRequest::TokenRevoke { id: id.clone() },
            )?)?;
            eprintln!("Revoked token {id}.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn scopes_text(info: &TokenInfo) -> String {
    info.scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A password from standard input, or a generated one that is printed.
fn new_password(username: &str, from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::generate(), true));
    }
    if std::io::stdin().is_terminal() {
        eprint!("New password: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    password::check_policy(&password, username).map_err(|e| anyhow::anyhow!(e))?;
    Ok((password, false))
}

fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add {
            username,
            role,
            password_stdin,
        } => {
            admin::check_username(&username)?;
            let (password, generated) = new_password(&username, password_stdin)?;
            expect_ok(call(
                settings,
                AdminRequest::UserAdd {
                    username: username.clone(),
                    password: password.clone(),
                    role,
                },
            )?)?;
            eprintln!("Added user {username} with role {role}.");
            if generated {
                println!("Password (shown only once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let (password, generated) = new_password(&username, password_stdin)?;
            expect_ok(call(
                settings,
                AdminRequest::UserPasswd {
                    username: username.clone(),
                    password: password.clone(),
                },
            )?)?;
            eprintln!("Changed the password of {username}.");
            if generated {
                println!("New password (shown only once): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { json } => {
            let response = expect_ok(call(settings, AdminRequest::UserList)?)?;
            if json {
                return print_json(&response);
            }
            if let AdminResponse::Users { users } = response {
                println!("{:<24}  {:<8}  {:<8}  CREATED", "USER", "ROLE", "STATUS");
                for UserInfo {
                    username,
                    role,
                    created_at,
                    disabled,
                } in &users
                {
                    let status = if *disabled { "disabled" } else { "active" };
                    println!(
                        "{username:<24}  {:<8}  {status:<8}  {created_at}",
                        role.as_str()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
