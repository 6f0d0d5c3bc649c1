//! The drill's report: what each step expects, what it saw, the verdict
//! against the step's target, and the table. Pure: no I/O, no clock.

use std::time::Duration;

/// What a step expects.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    /// Where the step's call must go (`teams/sip2`), or what must happen
    /// (`sip: ACK+BYE`).
    pub(super) to: String,
    /// The label the answering peer must see in front of the caller's
    /// display name (`None`: no label).
    pub(super) label: Option<String>,
    /// The longest the setup may take, before `--target-scale`.
    pub(super) target: Duration,
    /// The timing rule the target comes from (for the reader of a FAIL).
    pub(super) rule: &'static str,
}

/// What a step saw.
#[derive(Debug, Clone, Default)]
pub(super) struct Observed {
    /// Where the call went (the peer that answered), or what happened.
    pub(super) went: Option<String>,
    /// INVITE in to 200 out at the SBC (the CDR's `answer_ms`), or what
    /// the step measures instead.
    pub(super) setup: Option<Duration>,
    /// The label the answering peer saw.
    pub(super) label: Option<String>,
    /// Calls placed that were not answered.
    pub(super) lost: u32,
    /// Answers to INVITEs the SBC had given up on that it left up (no ACK
    /// and BYE): calls nobody hears on the far side.
    pub(super) ghosts: u32,
    /// Anything else that went wrong (a check of the peer, a cross-check
    /// with the CDR, a stray message).
    pub(super) problems: Vec<String>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) step: usize,
    pub(super) name: String,
    pub(super) fault: String,
    pub(super) went: String,
    pub(super) setup_ms: Option<u64>,
    pub(super) target_ms: u64,
    pub(super) rule: String,
    pub(super) label: String,
    pub(super) lost: u32,
    pub(super) ghosts: u32,
    pub(super) pass: bool,
    /// Why it failed (empty when it passed).
    pub(super) why: Vec<String>,
}

/// `d` × `scale`, saturating (a huge or odd scale never panics).
pub(super) fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(Duration::MAX)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The verdict of step `step` (`name`, with `fault` injected): it passes
/// when the call went where expected, with the expected label, within
/// the target (× `scale`), no call was lost, no ghost call was left, and
/// nothing else went wrong.
pub(super) fn judge(
    step: usize,
    name: &str,
    fault: &str,
    expect: &Expect,
    seen: Observed,
    scale: f64,
) -> Row {
    let target = scaled(expect.target, scale);
    let mut why = Vec::new();
    if seen.lost > 0 {
        why.push(format!(
            "{} call{} lost",
            seen.lost,
            if seen.lost == 1 { "" } else { "s" }
        ));
    }
    if seen.ghosts > 0 {
        why.push(format!(
            "{} ghost call{}: a late answer was not ACKed and hung up",
            seen.ghosts,
            if seen.ghosts == 1 { "" } else { "s" }
        ));
    }
    match &seen.went {
        Some(w) if *w == expect.to => {}
        Some(w) => why.push(format!("went to {w}, expected {}", expect.to)),
        None => why.push(format!("nothing reached {}", expect.to)),
    }
    if seen.label != expect.label {
        let show = |l: &Option<String>| l.clone().unwrap_or_else(|| "no label".into());
        why.push(format!(
            "label {}, expected {}",
            show(&seen.label),
            show(&expect.label)
        ));
    }
    match seen.setup {
        Some(s) if s > target => why.push(format!(
            "setup {} ms > target {} ms ({})",
            ms(s),
            ms(target),
            expect.rule
        )),
        Some(_) => {}
        None if seen.went.is_some() => why.push("no setup time measured".into()),
        None => {}
    }
    why.extend(seen.problems);
    Row {
        step,
        name: name.to_owned(),
        fault: fault.to_owned(),
        went: seen.went.unwrap_or_else(|| "-".into()),
        setup_ms: seen.setup.map(ms),
        target_ms: ms(target),
        rule: expect.rule.to_owned(),
        label: seen.label.unwrap_or_else(|| "-".into()),
        lost: seen.lost,
        ghosts: seen.ghosts,
        pass: why.is_empty(),
        why,
    }
}

/// The table: one line per row, columns aligned, then one line per failed
/// row saying why.
pub(super) fn table(rows: &[Row]) -> String {
    let head = [
        "#", "step", "fault", "went to", "setup", "target", "label", "lost", "ghosts", "result",
    ];
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.step.to_string(),
                r.name.clone(),
                r.fault.clone(),
                r.went.clone(),
                r.setup_ms
                    .map_or_else(|| "-".to_owned(), |m| format!("{m} ms")),
                format!("≤ {} ms", r.target_ms),
                r.label.clone(),
                r.lost.to_string(),
                r.ghosts.to_string(),
                if r.pass { "PASS" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([head[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..head.len()).map(width).collect();
    // Numbers right-aligned, text left-aligned.
    let right = [
        true, false, false, false, true, true, false, true, true, false,
    ];
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, cell) in c.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if right[i] {
                s.extend(std::iter::repeat_n(' ', pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < c.len() {
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&head.map(str::to_owned));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for c in &cells {
        out.push_str(&line(c));
    }
    for r in rows.iter().filter(|r| !r.pass) {
        out.push_str(&format!(
            "FAIL {} {}: {}\n",
            r.step,
            r.name,
            r.why.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(to: &str, label: Option<&str>, target_ms: u64) -> Expect {
        Expect {
            to: to.into(),
            label: label.map(str::to_owned),
            target: Duration::from_millis(target_ms),
            rule: "peer died: ≤ 2 s",
        }
    }

    fn answered(went: &str, label: Option<&str>, setup_ms: u64) -> Observed {
        Observed {
            went: Some(went.into()),
            setup: Some(Duration::from_millis(setup_ms)),
            label: label.map(str::to_owned),
            ..Observed::default()
        }
    }

    #[test]
    fn a_call_where_expected_within_its_target_passes() {
        let e = expect("acs/sip", Some("Fail-over"), 2000);
        let r = judge(
            8,
            "Teams down",
            "sip, sip2, sip3 dead",
            &e,
            answered("acs/sip", Some("Fail-over"), 1999),
            1.0,
        );
        assert!(r.pass, "{:?}", r.why);
        assert_eq!(
            (r.setup_ms, r.target_ms, r.label.as_str()),
            (Some(1999), 2000, "Fail-over")
        );
    }

    #[test]
    fn each_missed_rule_fails_the_row_and_says_why() {
        let e = expect("teams/sip2", None, 500);
        let late = judge(1, "s", "f", &e, answered("teams/sip2", None, 501), 1.0);
        assert!(!late.pass);
        assert_eq!(
            late.why,
            ["setup 501 ms > target 500 ms (peer died: ≤ 2 s)"]
        );
        let wrong = judge(1, "s", "f", &e, answered("teams/sip3", None, 10), 1.0);
        assert_eq!(wrong.why, ["went to teams/sip3, expected teams/sip2"]);
        let label = judge(
            1,
            "s",
            "f",
            &e,
            answered("teams/sip2", Some("Fail-over"), 10),
            1.0,
        );
        assert_eq!(label.why, ["label Fail-over, expected no label"]);
        let lost = judge(
            1,
            "s",
            "f",
            &e,
            Observed {
                lost: 1,
                ..Observed::default()
            },
            1.0,
        );
        assert_eq!(lost.why, ["1 call lost", "nothing reached teams/sip2"]);
        assert_eq!(lost.went, "-");
        let mut ghost = answered("teams/sip2", None, 10);
        ghost.ghosts = 2;
        ghost.problems.push("sip2: a stray INVITE".into());
        let ghost = judge(1, "s", "f", &e, ghost, 1.0);
        assert_eq!(
            ghost.why,
            [
                "2 ghost calls: a late answer was not ACKed and hung up",
                "sip2: a stray INVITE"
            ]
        );
    }

    #[test]
    fn the_target_scale_moves_every_target() {
        let e = expect("teams/sip", None, 500);
        let tight = judge(1, "s", "f", &e, answered("teams/sip", None, 20), 0.01);
        assert_eq!(tight.target_ms, 5);
        assert!(!tight.pass);
        assert!(judge(1, "s", "f", &e, answered("teams/sip", None, 20), 1.0).pass);
        assert_eq!(scaled(Duration::from_secs(2), f64::INFINITY), Duration::MAX);
        assert_eq!(scaled(Duration::from_secs(2), -1.0), Duration::MAX);
    }

    #[test]
    fn the_table_aligns_its_columns_and_lists_the_failures() {
        let rows = [
            judge(
                1,
                "baseline",
                "none",
                &expect("teams/sip", None, 500),
                answered("teams/sip", None, 12),
                1.0,
            ),
            judge(
                11,
                "everything down",
                "+ gateway dead",
                &expect("pstn/+4915112345", Some("Fail-over"), 3000),
                answered("pstn/+4915112345", Some("Fail-over"), 3100),
                1.0,
            ),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(
            lines[0].starts_with(" #  step             fault           went to"),
            "{t}"
        );
        assert!(lines[1].starts_with("--  ---"), "{t}");
        assert!(
            lines[2].starts_with(" 1  baseline         none            teams/sip"),
            "{t}"
        );
        assert!(lines[2].ends_with("  0       0  PASS"), "{t}");
        assert!(
            lines[3].starts_with("11  everything down  + gateway dead  pstn/+4915112345"),
            "{t}"
        );
        assert!(lines[3].contains("3100 ms  ≤ 3000 ms  Fail-over"), "{t}");
        assert!(lines[3].ends_with("FAIL"), "{t}");
        assert_eq!(
            lines[4],
            "FAIL 11 everything down: setup 3100 ms > target 3000 ms (peer died: ≤ 2 s)"
        );
        // Every data line is as wide as the header (the last column aside).
        let at = |l: &str| {
            let b = l.find("PASS").or(l.find("FAIL")).or(l.find("result"))?;
            Some(l[..b].chars().count())
        };
        assert_eq!(at(lines[0]), at(lines[2]));
        assert_eq!(at(lines[2]), at(lines[3]));
    }
}
