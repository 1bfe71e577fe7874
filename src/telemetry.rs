//! Structured logs with `tracing`. `RUST_LOG` filters (default `info`). Phone numbers are
//! logged only masked, message bodies and secrets never (docs/security.md §2 "logs").

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls do nothing). Logs go to stderr, so the
/// CLI's own output on stdout stays clean.
pub fn init() {
    init_with_default("info,sqlx=warn");
}

/// [`init`] with another filter when `RUST_LOG` is not set (the demo keeps its terminal for
/// its own story and shows warnings only).
pub fn init_with_default(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
