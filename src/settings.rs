//! Turns clap's types into what the rest of the program uses, in one place:
//! the [`Session`] (AWS, accounts, regions, database), the [`Printer`]
//! (colour, verbosity, progress, `--out`), and each command's request.
//! Flags, environment (`NO_COLOR`, `IMDSGUARD_DB`) and terminal detection
//! are merged here and nowhere else, like fd's `Config` or ripgrep's
//! `HiArgs`.

use std::io::IsTerminal;
use std::time::Duration;

use crate::aws::RoleSettings;
use crate::aws::sdk::{RetryMode, SessionOptions};
use crate::cli::{
    ActionArg, ColorArg, ExecOpts, FilterArgs, GlobalArgs, PlanOpts, ReportFormatArg, RetryModeArg,
    RowsFormatArg, ScanFormatArg, ShellArg, StateArg, TableFormatArg,
};
use crate::commands::drive::ExecRequest;
use crate::error::Error;
use crate::fanout::RegionRequest;
use crate::filter::{self, Selection, SelectionInput, StateFilter};
use crate::model::Action;
use crate::ops::notify::{NotifyRequest, Topic};
use crate::ops::plan::Source;
use crate::ops::rollout::RolloutRequest;
use crate::ops::scan::ScanRequest;
use crate::ops::{AccountScope, Session};
use crate::output::{Format, ReportFormat, RowsFormat, ScanFormat, Style};
use crate::plan::{PlanRequest, PlanSettings};
use crate::printer::Printer;
use crate::rollout::waves::WaveSpec;
use crate::runs::executor::ExecSettings;
use crate::usage::Window;

/// The session and the printer every command gets.
pub fn resolve(args: &GlobalArgs) -> Result<(Session, Printer), Error> {
    let regions = parse_regions(&args.regions)?;
    let accounts = if args.org {
        AccountScope::Organization
    } else if args.accounts.is_empty() {
        AccountScope::Current
    } else {
        let mut ids: Vec<String> = Vec::new();
        for id in &args.accounts {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        AccountScope::List(ids)
    };
    let role = match &args.role_name {
        Some(name) => Some(RoleSettings {
            role_name: name.clone(),
            external_id: args.external_id.clone(),
        }),
        None if accounts != AccountScope::Current => {
            return Err(Error::Usage {
                message: "--accounts and --org need --role-name".into(),
                hint: "name the role imdsguard may assume in each account, e.g. --role-name OrganizationAccountAccessRole".into(),
            });
        }
        None => None,
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color_for = |tty: bool| match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => tty && !no_color,
    };
    let stdout_tty = std::io::stdout().is_terminal() && args.out.is_none();
    let stderr_tty = std::io::stderr().is_terminal();
    let fallback_region = match &regions {
        RegionRequest::List(list) => list.first().cloned(),
        RegionRequest::All => None,
    };
    let session = Session {
        aws: SessionOptions {
            profile: args.profile.clone(),
            endpoint_url: args.endpoint_url.clone(),
            fallback_region,
            max_attempts: args.max_attempts,
            retry_mode: args.retry_mode.map(|m| match m {
                RetryModeArg::Standard => RetryMode::Standard,
                RetryModeArg::Adaptive => RetryMode::Adaptive,
            }),
        },
        accounts,
        role,
        regions,
        db: args.db.clone().unwrap_or_else(crate::store::default_path),
        concurrency: usize::from(args.concurrency),
        region_calls: usize::from(args.region_calls),
    };
    let printer = Printer {
        stdout_style: Style {
            color: color_for(stdout_tty) && args.out.is_none(),
        },
        stderr_style: Style {
            color: color_for(stderr_tty),
        },
        verbosity: if args.quiet {
            -1
        } else {
            args.verbose.min(2) as i8
        },
        progress: stderr_tty && !args.no_progress && !args.quiet,
        out: args.out.clone(),
    };
    Ok((session, printer))
}

fn parse_regions(raw: &str) -> Result<RegionRequest, Error> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("all") {
        return Ok(RegionRequest::All);
    }
    let mut list = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let region = filter::parse_region(part)?;
        if !list.contains(&region) {
            list.push(region);
        }
    }
    if list.is_empty() {
        return Err(Error::Usage {
            message: "--regions is empty".into(),
            hint: "pass --regions all or a comma-separated list such as us-east-1,eu-west-1".into(),
        });
    }
    Ok(RegionRequest::List(list))
}

pub fn format(f: TableFormatArg) -> Format {
    match f {
        TableFormatArg::Table => Format::Table,
        TableFormatArg::Json => Format::Json,
        TableFormatArg::Csv => Format::Csv,
    }
}

/// `trail`'s request: the bucket name, prefix, Athena table and output
/// checked offline.
pub fn trail_request(a: &crate::cli::TrailArgs) -> Result<crate::ops::trail::TrailRequest, Error> {
    use crate::ops::trail::TrailSource;
    let source = if let Some(name) = &a.bucket {
        let valid = (3..=63).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(Error::Usage {
                message: format!("`{}` is not an S3 bucket name", name.escape_debug()),
                hint: "bucket names are 3-63 lowercase letters, digits, dots and hyphens (the trail's S3 bucket, as `aws cloudtrail describe-trails` shows it)".into(),
            });
        }
        if a.prefix.chars().any(char::is_control) {
            return Err(Error::Usage {
                message: "the --prefix has control characters".into(),
                hint: "pass the trail's S3 key prefix as `aws cloudtrail describe-trails` shows it"
                    .into(),
            });
        }
        TrailSource::Bucket {
            bucket: name.clone(),
            prefix: a.prefix.clone(),
            region: a.bucket_region.clone(),
            concurrency: usize::from(a.objects_at_once),
        }
    } else if let Some(raw) = &a.athena_table {
        let table = crate::cloudtrail::AthenaTable::parse(raw).ok_or_else(|| Error::Usage {
            message: format!("`{}` is not an Athena table", raw.escape_debug()),
            hint: "name it DATABASE.TABLE, letters, digits and underscores (the CloudTrail table created as the Athena User Guide shows)".into(),
        })?;
        let output = a.athena_output.clone().unwrap_or_default();
        if !a.print_sql
            && (!output.starts_with("s3://")
                || output.len() < 6
                || output.chars().any(char::is_control))
        {
            return Err(Error::Usage {
                message: "--athena-table needs --athena-output s3://BUCKET/PREFIX/".into(),
                hint: "Athena writes each query's results to S3: name a location you can write (or add --print-sql to only print the query)".into(),
            });
        }
        TrailSource::Athena {
            table,
            output,
            workgroup: a.athena_workgroup.clone(),
        }
    } else {
        TrailSource::Lookup
    };
    Ok(crate::ops::trail::TrailRequest {
        source,
        days: a.days,
    })
}

/// `templates fix`'s request.
pub fn templates_fix(a: &crate::cli::TemplatesFixArgs) -> crate::ops::fix::FixRequest {
    crate::ops::fix::FixRequest::Templates {
        ids: a.templates.clone(),
        hop_limit: a.hop_limit,
        set_default: !a.no_set_default,
    }
}

/// `asg fix`'s request.
pub fn groups_fix(a: &crate::cli::AsgFixArgs) -> crate::ops::fix::FixRequest {
    crate::ops::fix::FixRequest::Groups {
        names: a.groups.clone(),
        hop_limit: a.hop_limit,
    }
}

/// `defaults set`'s request (`--http-tokens` offers `required` only).
pub fn defaults_set(a: &crate::cli::DefaultsSetArgs) -> crate::ops::fix::FixRequest {
    crate::ops::fix::FixRequest::Defaults {
        hop_limit: a.hop_limit,
        enforce: a.enforce,
    }
}

/// The fix commands' confirmation, dry run and format.
pub fn fix_flags(o: &crate::cli::FixOpts) -> crate::commands::fix::FixFlags {
    crate::commands::fix::FixFlags {
        dry_run: o.dry_run,
        yes: o.yes,
        format: format(o.output.format),
    }
}

pub fn rows_format(f: RowsFormatArg) -> RowsFormat {
    match f {
        RowsFormatArg::Table => RowsFormat::Table,
        RowsFormatArg::Json => RowsFormat::Json,
        RowsFormatArg::Csv => RowsFormat::Csv,
        RowsFormatArg::Markdown => RowsFormat::Markdown,
    }
}

pub fn scan_format(f: ScanFormatArg) -> ScanFormat {
    match f {
        ScanFormatArg::Table => ScanFormat::Table,
        ScanFormatArg::Json => ScanFormat::Json,
        ScanFormatArg::Csv => ScanFormat::Csv,
        ScanFormatArg::Sarif => ScanFormat::Sarif,
    }
}

pub fn report_format(f: ReportFormatArg) -> ReportFormat {
    match f {
        ReportFormatArg::Table => ReportFormat::Table,
        ReportFormatArg::Json => ReportFormat::Json,
        ReportFormatArg::Csv => ReportFormat::Csv,
        ReportFormatArg::Sarif => ReportFormat::Sarif,
        ReportFormatArg::Html => ReportFormat::Html,
        ReportFormatArg::Markdown => ReportFormat::Markdown,
    }
}

pub fn shell(s: ShellArg) -> clap_complete::Shell {
    match s {
        ShellArg::Bash => clap_complete::Shell::Bash,
        ShellArg::Zsh => clap_complete::Shell::Zsh,
        ShellArg::Fish => clap_complete::Shell::Fish,
        ShellArg::Powershell => clap_complete::Shell::PowerShell,
    }
}

pub fn selection(args: &FilterArgs) -> Result<Selection, Error> {
    Ok(Selection::parse(&SelectionInput {
        instance_ids: args.instance_ids.clone(),
        input_file: args.input_file.clone(),
        tags: args.tags.clone(),
        exclude_ids: args.exclude_ids.clone(),
        exclude_tags: args.exclude_tags.clone(),
        state: match args.state {
            StateArg::Running => StateFilter::Running,
            StateArg::Stopped => StateFilter::Stopped,
            StateArg::All => StateFilter::All,
        },
    })?)
}

/// What a scan measures: owner tags and the usage window (`--days`, or
/// none with `--no-usage`), checked before AWS is called.
pub fn scan_request(
    filters: &FilterArgs,
    owner_tag: &[String],
    days: u32,
    no_usage: bool,
    sources: bool,
    fail_on: Option<crate::cli::SeverityArg>,
) -> Result<ScanRequest, Error> {
    let owner_tags = owner_tag
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let window = if no_usage {
        None
    } else {
        Some(
            Window::new(days, crate::clock::now_epoch()).map_err(|e| Error::Usage {
                message: format!("--days {} is out of range", e.0),
                hint: format!(
                    "CloudWatch keeps EC2 metrics for {} days: pass --days between {} and {}",
                    crate::usage::MAX_DAYS,
                    crate::usage::MIN_DAYS,
                    crate::usage::MAX_DAYS
                ),
            })?,
        )
    };
    Ok(ScanRequest {
        selection: selection(filters)?,
        owner_tags,
        window,
        sources,
        fail_on: fail_on.map(|s| match s {
            crate::cli::SeverityArg::Low => crate::findings::Severity::Low,
            crate::cli::SeverityArg::Medium => crate::findings::Severity::Medium,
            crate::cli::SeverityArg::High => crate::findings::Severity::High,
        }),
    })
}

/// `notify`'s flags, checked before anything is read or sent.
pub fn notify_request(args: &crate::cli::NotifyArgs) -> Result<NotifyRequest, Error> {
    if args.out_dir.is_none() && args.sns_topic.is_none() && args.ses_from.is_none() {
        return Err(Error::Usage {
            message: "notify has nowhere to put the notices".into(),
            hint: "pass --out-dir DIR, --sns-topic ARN and/or --ses-from ADDRESS (add --dry-run to send nothing)".into(),
        });
    }
    let sns = args
        .sns_topic
        .as_deref()
        .map(Topic::parse)
        .transpose()
        .map_err(|message| Error::Usage {
            message,
            hint: "pass the topic's ARN, e.g. arn:aws:sns:us-east-1:111122223333:imds-owners"
                .into(),
        })?;
    if let Some(from) = &args.ses_from
        && crate::notify::Owner::Tagged(from.clone()).email().is_none()
    {
        return Err(Error::Usage {
            message: format!("--ses-from `{from}` is not an e-mail address"),
            hint:
                "pass an address (or an address of a domain) verified in SES, e.g. imds@example.com"
                    .into(),
        });
    }
    let owner_tags: Vec<String> = args
        .owner_tag
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if owner_tags.is_empty() {
        return Err(Error::Usage {
            message: "--owner-tag is empty".into(),
            hint: "pass the tag key that names owners, e.g. --owner-tag owner,team".into(),
        });
    }
    Ok(NotifyRequest {
        scan: args.scan,
        owner_tags,
        out_dir: args.out_dir.clone(),
        sns,
        ses_from: args.ses_from.clone(),
        resend: args.resend,
        dry_run: args.dry_run,
    })
}

/// `rollout start`'s flags, checked before the plan is read.
pub fn rollout_request(args: &crate::cli::RolloutStartArgs) -> Result<RolloutRequest, Error> {
    let spec = WaveSpec::parse(&args.waves).map_err(|message| Error::Usage {
        message: format!("--waves {}: {message}", args.waves),
        hint:
            "e.g. --waves 1,10%,50%,100% (one canary per group, then 10%, 50% and all of the rest)"
                .into(),
    })?;
    Ok(RolloutRequest {
        spec,
        waves_text: args.waves.clone(),
        soak: args.soak,
        max_rejected: args.max_rejected,
        health_cmd: args.health_cmd.clone(),
    })
}

pub fn action(a: ActionArg) -> Action {
    match a {
        ActionArg::RequireV2 => Action::RequireV2,
        ActionArg::DisableEndpoint => Action::DisableEndpoint,
        ActionArg::AllowV1 => Action::AllowV1,
    }
}

/// A plan's request and where its instances come from.
pub fn plan_request(
    action: Action,
    filters: &FilterArgs,
    opts: &PlanOpts,
) -> Result<(PlanRequest, Source), Error> {
    let request = PlanRequest {
        action,
        settings: PlanSettings {
            hop_limit: opts.hop_limit,
            enable_tags: opts.enable_tags,
            include_in_use: opts.include_in_use,
            include_unknown: opts.include_unknown,
        },
    };
    let source = match opts.scan {
        Some(scan) => Source::Stored {
            scan,
            selection: selection(filters)?,
        },
        None => Source::Fresh(scan_request(
            filters,
            &opts.owner_tag,
            opts.days,
            opts.no_usage,
            // A plan needs the instances only.
            false,
            None,
        )?),
    };
    Ok((request, source))
}

/// How changes are executed.
pub fn exec_request(exec: &ExecOpts, session: &Session) -> ExecRequest {
    ExecRequest {
        settings: ExecSettings {
            rate: exec.rate,
            // EC2's bucket holds about 100 calls and is shared with every
            // other caller in the account and region: start with half of it.
            burst: (exec.rate * 10.0).clamp(1.0, 50.0),
            concurrency: session.concurrency,
            in_flight: session.region_calls,
            verify_timeout: Duration::from_secs(exec.verify_timeout),
            recheck_window: Duration::from_secs(exec.recheck_window),
            ..ExecSettings::default()
        },
        yes: exec.yes,
        check_permissions: exec.check_permissions,
        log: exec.log.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_flag() {
        assert_eq!(parse_regions("all").unwrap(), RegionRequest::All);
        assert_eq!(
            parse_regions("us-east-1, eu-west-1,us-east-1").unwrap(),
            RegionRequest::List(vec!["us-east-1".into(), "eu-west-1".into()])
        );
        assert!(matches!(
            parse_regions("us-east-1,bogus"),
            Err(Error::Selection(_))
        ));
        assert!(matches!(parse_regions(","), Err(Error::Usage { .. })));
    }
}
