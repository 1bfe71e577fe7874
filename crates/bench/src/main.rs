//! `textback-bench`: the benchmarks, as a binary of their own so that the server carries none
//! of their code. Each makes a fresh database beside `DATABASE_URL`'s and drops nothing else.
//! docs/benchmarks.md has the method, the figures and their history.

mod leads;
mod runs;
mod webhooks;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "textback-bench",
    about = "textback's benchmarks (docs/benchmarks.md)"
)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The scheduler, on a fresh database NAME_bench_queue beside DATABASE_URL's: burn-down of
    /// PEERQ_JOBS no-op jobs, enqueue-to-start and future-job lateness, as `RESULT system=ours …`
    /// lines for ../shared/bench/peer-queue.sh (PEERQ_OURS_CMD='target/release/textback-bench
    /// queue'). BENCH_FUTURE_JOBS=N first fills the table with N jobs due tomorrow.
    Queue,
    /// The missed-call pipeline, in-process with the fake carrier on loopback: BENCH_CALLS
    /// (1000) missed calls at BENCH_RATE (20/s) with `delay_secs = 0`; the time from the dial
    /// webhook to the carrier's Messages create request, p50/p99. A fresh database
    /// NAME_bench_pipeline beside DATABASE_URL's (textback_bench_pipeline by default).
    Pipeline,
    /// The people's pages with a year of history: BENCH_CALLS (1,000,000) calls seeded into a
    /// fresh database NAME_bench_dashboard beside DATABASE_URL's, then the dashboard and inbox
    /// pages timed over loopback, BENCH_ROUNDS (20) times each, p50/p99.
    Dashboard,
    /// Sustained missed calls: the saturation rate (BENCH_BURST, 2000, missed calls from 64
    /// callers at once), then BENCH_SECS (10) seconds each at 25 %, 50 % and 100 % of it, with the
    /// dial webhook's answer time and the text-back overhead, p50/p99, and the process's
    /// memory idle and its high-water mark. A fresh database NAME_bench_load beside DATABASE_URL's.
    Load,
    /// Webhook latency of the release server binary (`textback serve`, found beside this one or
    /// at TEXTBACK_BIN) over loopback: BENCH_CALLS (2000) calls, BENCH_CONCURRENCY (4) clients,
    /// BENCH_RATE (200/s) for the open loop. Its database is made on TEXTBACK_TEST_PG.
    Webhooks,
    /// "Call back" clicked in the inbox: BENCH_CALLBACKS (200) clicks, one after another, the
    /// time to the page's answer and to the carrier's Calls create, p50/p99. A fresh database
    /// NAME_bench_callback beside DATABASE_URL's.
    Callback,
    /// Leads through the lead API beside missed calls, on one server: BENCH_LEADS (500) leads
    /// at BENCH_RATE (20/s) over 25 keys, then as many missed calls; the time from each to the
    /// carrier's Messages create, p50/p99, and their ratio. A fresh database NAME_bench_leads.
    Leads,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    textback::telemetry::init_with_default("warn");
    let result = match Cli::parse().what {
        What::Queue => runs::queue().await,
        What::Pipeline => runs::pipeline().await,
        What::Dashboard => runs::dashboard().await,
        What::Load => runs::load().await,
        What::Callback => runs::callback().await,
        What::Leads => leads::leads().await,
        What::Webhooks => {
            webhooks::run().await;
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
