//! Scores in imaptest's terms, the Markdown and JSON reports, and the baseline comparison.

use crate::exec::{Status, TestResult};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// Test files ("test groups" in imaptest's output).
    pub groups_total: usize,
    pub groups_failed: usize,
    pub groups_skipped: usize,
    /// Command groups of tests without a `capabilities:` header.
    pub base_total: usize,
    pub base_failed: usize,
    /// Command groups of tests that require capabilities.
    pub ext_total: usize,
    pub ext_failed: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub server: String,
    pub corpus: String,
    pub command: String,
    pub summary: Summary,
    pub tests: Vec<TestResult>,
}

pub fn summarize(tests: &[TestResult]) -> Summary {
    let mut s = Summary {
        groups_total: tests.len(),
        ..Summary::default()
    };
    for t in tests {
        match t.status {
            Status::Failed | Status::Error => s.groups_failed += 1,
            Status::Skipped => s.groups_skipped += 1,
            Status::Passed => {}
        }
        let (total, failed) = if t.extension {
            (&mut s.ext_total, &mut s.ext_failed)
        } else {
            (&mut s.base_total, &mut s.base_failed)
        };
        *total += t.commands_total;
        *failed += t.commands_failed;
    }
    s
}

/// The three lines imaptest prints at the end of a scripted run.
pub fn score_lines(s: &Summary) -> String {
    format!(
        "{} test groups: {} failed, {} skipped due to missing capabilities\n\
         base protocol: {}/{} individual commands failed\n\
         extensions: {}/{} individual commands failed\n",
        s.groups_total,
        s.groups_failed,
        s.groups_skipped,
        s.base_failed,
        s.base_total,
        s.ext_failed,
        s.ext_total
    )
}

/// Tests that passed in `baseline` and now fail or are skipped (a capability no longer
/// advertised hides a test just as surely as a failure). Tests absent from the current run
/// (`--only`) are not regressions.
pub fn regressions(baseline: &Report, current: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for b in baseline.tests.iter().filter(|t| t.status == Status::Passed) {
        let Some(now) = current.tests.iter().find(|t| t.name == b.name) else {
            continue;
        };
        if now.status != Status::Passed {
            let why = match now.status {
                Status::Skipped => now.skip_reason.clone().unwrap_or_default(),
                _ => now
                    .failures
                    .first()
                    .map(|f| f.reason.clone())
                    .unwrap_or_default(),
            };
            out.push(
                format!(
                    "{}: passed in the baseline, now {:?}: {why}",
                    b.name, now.status
                )
                .to_lowercase(),
            );
        }
    }
    out
}

fn code(s: &str) -> String {
    let s = s.replace('`', "'");
    format!("`{s}`")
}

pub fn markdown(r: &Report) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# imaptest conformance: {}\n", r.server);
    let _ = writeln!(
        m,
        "Dovecot imaptest scripted-test corpus run by `imaptest-runner` (crate `conformance/`).\n"
    );
    let _ = writeln!(m, "- Corpus: `{}`", r.corpus);
    let _ = writeln!(m, "- Command: `{}`\n", r.command);
    let _ = writeln!(m, "## Score\n\n```\n{}```\n", score_lines(&r.summary));
    let _ = writeln!(
        m,
        "A \"command\" is a command group of a script (one command, or a pipelined set), as in \
         imaptest; it is an extension command when its test has a `capabilities:` header. \
         A group counts once however many of its checks fail.\n"
    );
    write_table(&mut m, r);
    write_skipped(&mut m, r);
    write_failures(&mut m, r);
    m
}

fn write_table(m: &mut String, r: &Report) {
    let _ = writeln!(
        m,
        "## Tests\n\n| test | kind | result | commands failed |\n|---|---|---|---|"
    );
    for t in &r.tests {
        let kind = if t.extension {
            format!("ext ({})", t.capabilities.join(" "))
        } else {
            "base".into()
        };
        let status = format!("{:?}", t.status).to_lowercase();
        let _ = writeln!(
            m,
            "| {} | {kind} | {status} | {}/{} |",
            t.name, t.commands_failed, t.commands_total
        );
    }
    m.push('\n');
}

fn write_skipped(m: &mut String, r: &Report) {
    let skipped: Vec<_> = r
        .tests
        .iter()
        .filter(|t| t.status == Status::Skipped)
        .collect();
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(m, "## Skipped\n");
    for t in skipped {
        let _ = writeln!(
            m,
            "- {}: {}",
            t.name,
            t.skip_reason.as_deref().unwrap_or("")
        );
    }
    m.push('\n');
}

fn write_failures(m: &mut String, r: &Report) {
    let failed: Vec<_> = r.tests.iter().filter(|t| !t.failures.is_empty()).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(m, "## Failures\n");
    for t in failed {
        let _ = writeln!(m, "### {}\n", t.name);
        if t.commands_not_run > 0 {
            let _ = writeln!(
                m,
                "({} command groups not run after the abort)\n",
                t.commands_not_run
            );
        }
        for f in &t.failures {
            let cmds = f
                .commands
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                m,
                "- command {}/{} (line {}): {}",
                f.group,
                f.groups,
                f.line,
                if cmds.is_empty() {
                    "(setup)".into()
                } else {
                    cmds
                }
            );
            let _ = writeln!(m, "  - {}", f.reason.replace('\n', " "));
            if let Some(e) = &f.expected {
                let _ = writeln!(m, "  - expected: {}", code(e));
            }
            if let Some(g) = &f.got {
                let _ = writeln!(m, "  - got: {}", code(g));
            }
        }
        m.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status, ext: bool, total: usize, failed: usize) -> TestResult {
        let mut t = TestResult::new(name, ext, Vec::new());
        t.status = status;
        t.commands_total = total;
        t.commands_failed = failed;
        t
    }

    fn report(tests: Vec<TestResult>) -> Report {
        Report {
            server: "s".into(),
            corpus: "c".into(),
            command: "x".into(),
            summary: summarize(&tests),
            tests,
        }
    }

    #[test]
    fn summary_splits_base_and_extensions() {
        let r = report(vec![
            result("a", Status::Passed, false, 5, 0),
            result("b", Status::Failed, true, 4, 2),
            result("c", Status::Skipped, true, 0, 0),
        ]);
        assert_eq!(
            score_lines(&r.summary),
            "3 test groups: 1 failed, 1 skipped due to missing capabilities\n\
             base protocol: 0/5 individual commands failed\n\
             extensions: 2/4 individual commands failed\n"
        );
    }

    #[test]
    fn regressions_are_passed_then_not_passed() {
        let base = report(vec![
            result("a", Status::Passed, false, 1, 0),
            result("b", Status::Failed, false, 1, 1),
            result("c", Status::Passed, false, 1, 0),
            result("d", Status::Passed, false, 1, 0),
        ]);
        let now = report(vec![
            result("a", Status::Failed, false, 1, 1),
            result("b", Status::Passed, false, 1, 0),
            result("c", Status::Skipped, false, 0, 0),
        ]);
        let r = regressions(&base, &now);
        assert_eq!(r.len(), 2);
        assert!(r[0].starts_with("a:") && r[1].starts_with("c:"));
    }
}
