//! `imdsguard plan`: selection → scan (fresh or stored) → plan file.

use crate::cli::{ActionArg, FilterArgs, PlanArgs, PlanOpts};
use crate::commands::accounts::Target;
use crate::commands::{emit, scan};
use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::filter::Selection;
use crate::output;
use crate::plan::{self, Action, HopLimit, Plan, PlanRequest, PlanSettings};
use crate::settings::{self, Global};
use crate::store::Store;

pub fn action(a: ActionArg) -> Action {
    match a {
        ActionArg::RequireV2 => Action::RequireV2,
        ActionArg::DisableEndpoint => Action::DisableEndpoint,
        ActionArg::AllowV1 => Action::AllowV1,
    }
}

fn hop_limit(raw: &str) -> Result<HopLimit, Error> {
    match raw.trim() {
        "keep" => Ok(HopLimit::Keep),
        "auto" => Ok(HopLimit::Auto),
        n => match n.parse::<i32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(HopLimit::Set(n)),
            _ => Err(Error::Usage {
                message: format!("--hop-limit `{raw}` is not keep, auto or 1-64"),
                hint: "containers need 2 under IMDSv2; `auto` sets 2 on detected container hosts"
                    .into(),
            }),
        },
    }
}

/// Everything a plan needs that can be checked offline.
pub struct PlanInputs {
    pub request: PlanRequest,
    pub selection: Selection,
    pub owner_tags: Vec<String>,
    pub window: Option<crate::usage::Window>,
    pub scan: Option<i64>,
}

pub fn inputs(action: Action, filters: &FilterArgs, opts: &PlanOpts) -> Result<PlanInputs, Error> {
    let selection = settings::selection(filters)?;
    let (owner_tags, window) = scan::inputs(&opts.owner_tag, opts.days, opts.no_usage)?;
    Ok(PlanInputs {
        request: PlanRequest {
            action,
            settings: PlanSettings {
                hop_limit: hop_limit(&opts.hop_limit)?,
                enable_tags: opts.enable_tags,
                include_in_use: opts.include_in_use,
                include_unknown: opts.include_unknown,
            },
        },
        selection,
        owner_tags,
        window,
        scan: opts.scan,
    })
}

/// Makes a plan from a stored scan (filtered by the selection) or a fresh one.
/// Returns the plan and whether the scan it rests on is complete.
pub async fn make(
    global: &Global,
    targets: Option<&[Target]>,
    store: &mut Store,
    inputs: PlanInputs,
) -> Result<(Plan, bool), Error> {
    let mut report = match (inputs.scan, targets) {
        (Some(id), _) => {
            let mut r = store.load_report(id)?;
            // A stored scan may cover more regions than asked for now.
            let regions = match &global.regions {
                crate::scan::RegionRequest::List(list) => Some(list),
                crate::scan::RegionRequest::All => None,
            };
            r.instances.retain(|rec| {
                regions.is_none_or(|l| l.contains(&rec.region))
                    && inputs
                        .selection
                        .matches(&rec.account_id, &rec.region, &rec.instance)
            });
            r
        }
        (None, Some(targets)) => {
            scan::perform(
                global,
                targets,
                store,
                inputs.selection,
                inputs.owner_tags,
                inputs.window,
            )
            .await?
        }
        (None, None) => unreachable!("a fresh scan needs AWS"),
    };
    scan::print_problems(global, &report);
    let complete = report.failures.is_empty();
    report.failures.clear();
    let plan = plan::build(&inputs.request, &report, crate::clock::now())?;
    Ok((plan, complete))
}

pub async fn run(global: &Global, args: &PlanArgs) -> Result<ExitCode, Error> {
    let inputs = inputs(action(args.action), &args.filters, &args.plan)?;
    let mut store = Store::open(&global.db)?;
    let targets = match inputs.scan {
        Some(_) => None,
        None => Some(crate::commands::accounts::scan_targets(global).await?),
    };
    let (plan, complete) = make(global, targets.as_deref(), &mut store, inputs).await?;
    match &global.out {
        Some(path) => {
            emit(Some(path), |w| {
                output::plan::render(&plan, output::Format::Json, global.stdout_style, w)
            })?;
            emit(None, |w| {
                output::plan::render(&plan, global.format, global.stdout_style, w)
            })?;
            if global.verbosity >= 0 && global.format == output::Format::Table {
                eprintln!(
                    "plan written to {}; apply it with `imdsguard apply {}`",
                    path.display(),
                    path.display()
                );
            }
        }
        None => {
            emit(None, |w| {
                output::plan::render(&plan, global.format, global.stdout_style, w)
            })?;
            if global.verbosity >= 0 {
                eprintln!(
                    "no plan file written: pass --out FILE to save one for `imdsguard apply`"
                );
            }
        }
    }
    Ok(if complete {
        ExitCode::Success
    } else {
        ExitCode::Failure
    })
}
