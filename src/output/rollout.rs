//! A rollout as people and machines read it: its waves, each wave's
//! instances with their state (what the rollout did, else what the wave's
//! run did, else `pending`), the calls its soak saw, and every decision.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::output::json::SCHEMA;
use crate::output::table::{Cell, cell, painted, write_table};
use crate::output::{Format, Paint, Style};
use crate::store::journal::{Named, Run};
use crate::store::rollouts::{Decision, Member, Rollout};

#[derive(Serialize)]
struct Doc<'a> {
    schema: &'static str,
    kind: &'static str,
    rollout_id: i64,
    state: &'static str,
    created_at: &'a str,
    current_wave: i64,
    settings: &'a crate::store::rollouts::RolloutSettings,
    waves: Vec<WaveDoc<'a>>,
    decisions: &'a [Decision],
}

#[derive(Serialize)]
struct WaveDoc<'a> {
    number: i64,
    state: &'static str,
    run_id: Option<i64>,
    soak_until: Option<String>,
    instances: Vec<InstanceDoc<'a>>,
}

#[derive(Serialize)]
struct InstanceDoc<'a> {
    instance_id: &'a str,
    region: &'a str,
    account_id: &'a str,
    state: String,
    group: &'a str,
    rejected_calls: Option<i64>,
    v1_calls: Option<i64>,
    reason: Option<&'a str>,
}

/// What happened to a member: the rollout's mark, else its change in the
/// wave's run, else `pending`.
fn member_state(m: &Member, runs: &BTreeMap<i64, Run>, run_id: Option<i64>) -> String {
    if let Some(mark) = m.mark {
        return mark.as_str().to_owned();
    }
    run_id
        .and_then(|r| runs.get(&r))
        .and_then(|r| r.changes.iter().find(|c| c.instance_id == m.instance_id))
        .map_or_else(|| "pending".to_owned(), |c| c.status.as_str().to_owned())
}

fn doc<'a>(r: &'a Rollout, runs: &BTreeMap<i64, Run>) -> Doc<'a> {
    Doc {
        schema: SCHEMA,
        kind: "rollout",
        rollout_id: r.id,
        state: r.state.as_str(),
        created_at: &r.created_at,
        current_wave: r.current_wave,
        settings: &r.settings,
        waves: r
            .waves
            .iter()
            .map(|w| WaveDoc {
                number: w.number,
                state: w.state.as_str(),
                run_id: w.run_id,
                soak_until: w.soak_until.map(crate::clock::at),
                instances: r
                    .members
                    .iter()
                    .filter(|m| m.wave == w.number)
                    .map(|m| InstanceDoc {
                        instance_id: &m.instance_id,
                        region: &m.region,
                        account_id: &m.account_id,
                        state: member_state(m, runs, w.run_id),
                        group: &m.group,
                        rejected_calls: m.rejected_calls,
                        v1_calls: m.v1_calls,
                        reason: m.reason.as_deref(),
                    })
                    .collect(),
            })
            .collect(),
        decisions: &r.decisions,
    }
}

pub fn render(
    r: &Rollout,
    runs: &BTreeMap<i64, Run>,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let d = doc(r, runs);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &d)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "rollout_id",
                "wave",
                "wave_state",
                "account_id",
                "region",
                "instance_id",
                "state",
                "group",
                "rejected_calls",
                "v1_calls",
                "reason",
            ])?;
            for wave in &d.waves {
                for i in &wave.instances {
                    w.write_record([
                        r.id.to_string().as_str(),
                        &wave.number.to_string(),
                        wave.state,
                        i.account_id,
                        i.region,
                        i.instance_id,
                        &i.state,
                        i.group,
                        &i.rejected_calls.map(|c| c.to_string()).unwrap_or_default(),
                        &i.v1_calls.map(|c| c.to_string()).unwrap_or_default(),
                        i.reason.unwrap_or(""),
                    ])?;
                }
            }
            w.flush()
        }
        Format::Table => {
            writeln!(
                out,
                "{}",
                style.paint(
                    &format!(
                        "Rollout {} · {} · wave {} of {} · waves {} · soak {} · max rejected {}",
                        r.id,
                        r.state.as_str(),
                        r.current_wave,
                        r.waves.len(),
                        r.settings.waves,
                        crate::clock::human_duration(r.settings.soak_secs.max(0) as u64),
                        r.settings.max_rejected
                    ),
                    Paint::Bold
                )
            )?;
            for wave in &d.waves {
                writeln!(
                    out,
                    "\nwave {} · {}{}{}",
                    wave.number,
                    wave.state,
                    wave.run_id
                        .map(|r| format!(" · run {r}"))
                        .unwrap_or_default(),
                    wave.soak_until
                        .as_deref()
                        .map(|t| format!(" · soaks until {t}"))
                        .unwrap_or_default()
                )?;
                let rows: Vec<Vec<Cell>> = wave
                    .instances
                    .iter()
                    .map(|i| {
                        let state = match i.state.as_str() {
                            "rolled-back" | "held" | "failed" => painted(&i.state, Paint::Red),
                            "applied" => painted(&i.state, Paint::Green),
                            _ => cell(&i.state),
                        };
                        vec![
                            cell(i.account_id),
                            cell(i.region),
                            cell(i.instance_id),
                            state,
                            cell(i.rejected_calls.map(|c| c.to_string()).unwrap_or_default()),
                            cell(i.group),
                            cell(i.reason.unwrap_or("")),
                        ]
                    })
                    .collect();
                write_table(
                    out,
                    style,
                    &[
                        "account", "region", "instance", "state", "rejected", "group", "reason",
                    ],
                    &rows,
                )?;
            }
            writeln!(out, "\ndecisions:")?;
            for dec in &r.decisions {
                writeln!(
                    out,
                    "  {} wave {} {}{}: {}",
                    dec.at,
                    dec.wave,
                    dec.kind.as_str(),
                    if dec.done { "" } else { " (open)" },
                    crate::output::sanitize::terminal(&dec.reason)
                )?;
            }
            Ok(())
        }
    }
}

pub fn render_list(
    rollouts: &[Rollout],
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Row<'a> {
        rollout_id: i64,
        state: &'static str,
        created_at: &'a str,
        current_wave: i64,
        waves: usize,
        instances: usize,
    }
    let rows: Vec<Row> = rollouts
        .iter()
        .map(|r| Row {
            rollout_id: r.id,
            state: r.state.as_str(),
            created_at: &r.created_at,
            current_wave: r.current_wave,
            waves: r.waves.len(),
            instances: r.members.len(),
        })
        .collect();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({"schema": SCHEMA, "kind": "rollouts", "rollouts": rows}),
            )?;
            writeln!(out)
        }
        Format::Csv => {
            let mut w = crate::output::csv::writer(out);
            w.write_record([
                "rollout_id",
                "state",
                "created_at",
                "current_wave",
                "waves",
                "instances",
            ])?;
            for r in &rows {
                w.write_record([
                    r.rollout_id.to_string().as_str(),
                    r.state,
                    r.created_at,
                    &r.current_wave.to_string(),
                    &r.waves.to_string(),
                    &r.instances.to_string(),
                ])?;
            }
            w.flush()
        }
        Format::Table => {
            if rows.is_empty() {
                return writeln!(out, "(no rollouts)");
            }
            let cells: Vec<Vec<Cell>> = rows
                .iter()
                .map(|r| {
                    vec![
                        cell(r.rollout_id.to_string()),
                        cell(r.state),
                        cell(r.created_at),
                        cell(format!("{} of {}", r.current_wave, r.waves)),
                        cell(r.instances.to_string()),
                    ]
                })
                .collect();
            write_table(
                out,
                style,
                &["rollout", "state", "created", "wave", "instances"],
                &cells,
            )
        }
    }
}
