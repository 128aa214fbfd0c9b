//! `imaptest-runner`: run Dovecot imaptest's scripted tests against an IMAP server.

use anyhow::{Context, bail};
use clap::Parser;
use mssante_conformance::conn::TlsMode;
use mssante_conformance::exec::{self, Config, Status, TestResult};
use mssante_conformance::report::{self, Report};
use mssante_conformance::script;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const EXIT_POLICY: &str = "\
Exit status:
  0  the run completed (failures included) and, with --baseline, no test regressed
  1  --baseline given and a test that passed in the baseline now fails or is skipped
  2  the run could not be done: corpus missing or unreadable, bad arguments, report not
     written, or no test could even connect to the server";

#[derive(Parser, Debug)]
#[command(
    name = "imaptest-runner",
    about = "Run Dovecot imaptest scripted tests (the scripted_test.md format) against an IMAP server",
    after_help = EXIT_POLICY
)]
struct Cli {
    /// Directory of test scripts (each `<name>` with optional `<name>.mbox`, and default.mbox).
    #[arg(long)]
    corpus: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Implicit TLS (any certificate is accepted).
    #[arg(long, conflicts_with = "starttls")]
    tls: bool,
    /// STARTTLS right after the greeting (any certificate is accepted).
    #[arg(long)]
    starttls: bool,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// Second user, for scripts with `user 2: $user2`; they are skipped without it.
    #[arg(long)]
    user2: Option<String>,
    /// Password of --user2 (default: --password).
    #[arg(long)]
    password2: Option<String>,
    /// Test mailbox name ($mailbox); every mailbox starting with it is deleted between tests.
    #[arg(long, default_value = "imaptest")]
    mailbox: String,
    /// Run only these tests (by file name).
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Seconds to wait for each server response before failing the test.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Write the Markdown report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the JSON results here (usable later as --baseline).
    #[arg(long)]
    json: Option<PathBuf>,
    /// JSON results of an earlier run: exit 1 if a test that passed there does not pass now.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Server description for the report title.
    #[arg(long, default_value = "IMAP server")]
    server_name: String,
    /// Print each failure as it happens.
    #[arg(long)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imaptest-runner: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Test files of the corpus, sorted like imaptest: not hidden, not `.mbox`, not directories.
fn list_tests(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("corpus {} not readable", dir.display()))?;
    for e in entries {
        let p = e?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name.ends_with(".mbox") || p.is_dir() {
            continue;
        }
        out.push(p);
    }
    out.sort();
    if out.is_empty() {
        bail!("no test scripts in {}", dir.display());
    }
    Ok(out)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let tests = list_tests(&cli.corpus)?;
    let cfg = Config {
        host: cli.host.clone(),
        port: cli.port,
        tls: match (cli.tls, cli.starttls) {
            (true, _) => TlsMode::Implicit,
            (_, true) => TlsMode::StartTls,
            _ => TlsMode::Plain,
        },
        user: cli.user.clone(),
        password: cli.password.clone(),
        user2: cli.user2.clone(),
        password2: cli.password2.clone(),
        mailbox: cli.mailbox.clone(),
        timeout: Duration::from_secs(cli.timeout.max(1)),
        verbose: cli.verbose,
    };
    let env = |v: &str| std::env::var_os(v).is_some();
    let mut results = Vec::new();
    let mut next_id = 0;
    for path in &tests {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !cli.only.is_empty() && !cli.only.contains(&name) {
            continue;
        }
        let result = match script::load(path, &env) {
            Ok(s) => exec::run(&cfg, &s, &mut next_id).await,
            Err(e) => script_error(&name, e),
        };
        print_progress(&result);
        results.push(result);
    }
    if results.is_empty() {
        bail!("--only matched no test");
    }
    let rep = Report {
        server: cli.server_name.clone(),
        corpus: cli.corpus.display().to_string(),
        command: recorded_command(),
        summary: report::summarize(&results),
        tests: results,
    };
    print!("{}", report::score_lines(&rep.summary));
    write_outputs(&cli, &rep)?;
    if nothing_connected(&rep.tests) {
        bail!("no test could connect to {}:{}", cli.host, cli.port);
    }
    compare_baseline(&cli, &rep)
}

fn script_error(name: &str, e: String) -> TestResult {
    let mut r = TestResult::new(name, false, Vec::new());
    r.status = Status::Error;
    r.failures.push(exec::Failure {
        group: 0,
        groups: 0,
        line: 0,
        commands: Vec::new(),
        reason: format!("script parse error: {e}"),
        expected: None,
        got: None,
    });
    r
}

fn print_progress(r: &TestResult) {
    let status = format!("{:?}", r.status).to_lowercase();
    let detail = match r.status {
        Status::Skipped => r.skip_reason.clone().unwrap_or_default(),
        _ => format!("{}/{} commands failed", r.commands_failed, r.commands_total),
    };
    println!("{:<36} {status:<8} {detail}", r.name);
}

/// Every test that ran failed at connect time: the server is not there at all.
fn nothing_connected(tests: &[TestResult]) -> bool {
    let ran: Vec<_> = tests
        .iter()
        .filter(|t| t.status != Status::Skipped)
        .collect();
    !ran.is_empty()
        && ran.iter().all(|t| {
            t.failures
                .first()
                .is_some_and(|f| f.reason.contains("connection 1: connect to"))
        })
}

fn write_outputs(cli: &Cli, rep: &Report) -> anyhow::Result<()> {
    if let Some(p) = &cli.report {
        std::fs::write(p, report::markdown(rep))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &cli.json {
        std::fs::write(p, serde_json::to_string_pretty(rep)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn compare_baseline(cli: &Cli, rep: &Report) -> anyhow::Result<ExitCode> {
    let Some(path) = &cli.baseline else {
        return Ok(ExitCode::SUCCESS);
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("baseline {} not readable", path.display()))?;
    let base: Report = serde_json::from_str(&text)
        .with_context(|| format!("baseline {} is not a runner JSON report", path.display()))?;
    let regressions = report::regressions(&base, rep);
    if regressions.is_empty() {
        println!("no regression against {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("REGRESSIONS against {}:", path.display());
    for r in &regressions {
        eprintln!("  {r}");
    }
    Ok(ExitCode::from(1))
}

/// The command line for the report, passwords masked (reports get published).
fn recorded_command() -> String {
    let mut out = Vec::new();
    let mut mask_next = false;
    for a in std::env::args() {
        out.push(if mask_next {
            "***".into()
        } else {
            shell_word(&a)
        });
        mask_next = a == "--password" || a == "--password2";
    }
    out.join(" ")
}

fn shell_word(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}
