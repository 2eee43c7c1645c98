//! Logging and progress output.
//!
//! Long steps log an INFO event with the `mngr::progress` target. On a terminal
//! without `-v` the latest such event is shown on one spinner line that is
//! cleared when the command ends; with `-v` (or when stderr is not a terminal
//! and `-v` is given) every event is printed as a log line instead.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use provider_api::PROGRESS_TARGET;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The spinner line, shared by the tracing layer and the commands. It appears
/// with the first progress message, so commands without long steps (and
/// commands that hand the terminal to ssh) never draw one.
#[derive(Clone, Default)]
pub struct Progress {
    state: Arc<Mutex<SpinnerState>>,
}

#[derive(Default)]
struct SpinnerState {
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Clears the spinner; no spinner is drawn after this.
    pub fn finish(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.enabled = false;
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    fn set_message(&self, message: String) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if !state.enabled {
            return;
        }
        let bar = state.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        bar.set_message(message);
    }
}

/// Installs the global tracing subscriber for `verbosity` (the count of `-v`)
/// and returns the progress line. `RUST_LOG` overrides the filter.
pub fn init(verbosity: u8) -> Progress {
    let default_filter = match verbosity {
        0 => "warn",
        1 => "warn,mngr=info,mngr_cli=info,provider_docker=info,provider_api=info,ssh_utils=info,host_store=info",
        _ => "info,mngr=debug,mngr_cli=debug,provider_docker=debug,provider_api=debug,ssh_utils=debug,host_store=debug",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));

    let progress = Progress::default();
    let show_spinner = verbosity == 0 && std::io::stderr().is_terminal();
    if let Ok(mut state) = progress.state.lock() {
        state.enabled = show_spinner;
    }

    let log_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_filter(filter);
    let spinner_layer = show_spinner.then(|| {
        SpinnerLayer {
            progress: progress.clone(),
        }
        .with_filter(Targets::new().with_target(PROGRESS_TARGET, Level::INFO))
    });
    // A second `init` can only fail in tests that already installed one.
    let _ = tracing_subscriber::registry()
        .with(log_layer)
        .with(spinner_layer)
        .try_init();
    progress
}

struct SpinnerLayer {
    progress: Progress,
}

impl<S: Subscriber> Layer<S> for SpinnerLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        if event.metadata().target() != PROGRESS_TARGET {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        self.progress.set_message(visitor.message);
    }
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
}

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        }
    }
}
