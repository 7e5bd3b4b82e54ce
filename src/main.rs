//! The `securify` binary: parses the command line, runs the chosen command and turns its outcome
//! into an exit code. Everything else lives in the library so tests and the binary share one path.

use std::process::ExitCode;

// Requests allocate on executor threads and the event writer frees on its own thread; glibc's
// allocator handles that cross-thread pattern poorly, mimalloc well.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match securify::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("securify: error: {err:#}");
            ExitCode::from(securify::cli::EXIT_FAILURE)
        }
    }
}
