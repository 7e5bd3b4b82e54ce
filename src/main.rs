//! The `securify` binary: parses the command line, runs the chosen command and turns its outcome
//! into an exit code. Everything else lives in the library so tests and the binary share one path.

use std::process::ExitCode;

// Requests allocate on executor threads and the event writer frees on its own thread; glibc's
// allocator handles that cross-thread pattern poorly, mimalloc well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed memory before giving it back, in ms, unless the environment
/// says otherwise. Its default (1,000) let the server's RSS grow by half again while it ingests
/// and indexes (276 against 193 MiB importing 3,000,000 auth.log lines); 10 ms costs about 5 %
/// of the import rate.
const PURGE_DELAY_MS: &str = "10";

fn main() -> ExitCode {
    // mimalloc reads its options when the process starts, from the environment only: start
    // once more with the option set (same process id, arguments and streams).
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
        && let Ok(exe) = std::env::current_exe()
    {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(&exe);
        command.arg0(args.next().unwrap_or_else(|| exe.into_os_string()));
        let err = command
            .args(args)
            .env("MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS)
            .exec();
        // Not fatal: the server works with the default, with more memory.
        eprintln!("securify: warning: could not restart with MIMALLOC_PURGE_DELAY set: {err}");
    }
    match securify::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("securify: error: {err:#}");
            ExitCode::from(securify::cli::EXIT_FAILURE)
        }
    }
}
