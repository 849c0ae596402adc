//! The command line, as clap types. Nothing outside this file, `main.rs`
//! and `settings.rs` sees them: `settings` turns them into the request
//! types of the operations. Values with a shape (hop limits, rates, tags,
//! account ids, ages) are parsed by clap into domain types here, so a bad
//! one is a clap error (exit 2) with a hint, before anything else runs.

use std::path::PathBuf;
use std::time::Duration;

use crate::plan::HopLimit;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Account-regions in flight by default (`--concurrency`): chosen from the
/// organisation benchmark (bench/RESULTS.md), where the wall time stops
/// improving while each account and region still sees at most
/// `--region-calls` calls at once.
const DEFAULT_CONCURRENCY: u16 = 64;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  an error, or a partial result (some account or region failed, or some change was not
     applied: failed, pending, skipped because it changed, not sent; the rest is reported)
  2  bad arguments or input (nothing was changed)
  3  scan --fail-on: a finding at or above that severity exists
  130  an apply or rollback stopped by Ctrl-C (resume it with `apply --resume RUN`)

Credentials come from the AWS SDK's default chain: environment variables,
--profile / AWS_PROFILE (including SSO and assume-role profiles), web identity,
container and instance roles. AWS_ENDPOINT_URL and AWS_MAX_ATTEMPTS are honoured.";

const SCAN_EXAMPLES: &str = "\
Examples:
  imdsguard scan                                   every enabled region, 14 days of usage
  imdsguard scan --regions us-east-1,eu-west-1 --days 90
  imdsguard scan --tag env=prod --exclude-tag team=legacy --state running
  imdsguard scan --input-file instances.csv --format csv --out scan.csv
  imdsguard scan --no-usage --format json | jq '.summary.total'
  imdsguard scan --org --role-name OrganizationAccountAccessRole
  imdsguard scan --no-usage --fail-on medium --format sarif --out imds.sarif   (CI gate)

Readiness verdicts:
  compliant     IMDSv2 required, no refused v1 calls in the window
  rejecting-v1  IMDSv2 required, but something still tries v1 and is refused
  disabled      metadata endpoint disabled
  ready         allows v1, zero v1 calls, metric data present: safe to enforce
  in-use        allows v1 and made v1 calls: fix the software first
  unknown       allows v1 and no metric data (stopped, new, --no-usage): not proven safe

Sources of new instances (skip with --no-sources): each launch template's $Default and
$Latest, each Auto Scaling group's next launch, each region's account default and the
AMIs behind instances that allow v1, resolved as EC2 does at launch (template or launch
configuration > account default > AMI ImdsSupport=v2.0 > EC2's default).

Exit codes: 0 success, 1 error or partial result, 2 bad arguments or input,
3 a finding at or above --fail-on.";

/// Take an AWS estate from IMDSv1 to IMDSv2 safely.
///
/// imdsguard finds every EC2 instance that still answers IMDSv1 (the plain
/// GET on 169.254.169.254 that an SSRF bug can abuse), tells you who owns it,
/// which IAM role it exposes and whether it really makes IMDSv1 calls, then
/// enforces IMDSv2 where that is safe: planned, journaled, paced, verified,
/// and undoable. Every scan and change is kept in a local database.
///
/// Start with `imdsguard scan`, then `imdsguard plan --action require-v2 --out
/// plan.json` and `imdsguard apply plan.json`.
#[derive(Debug, Parser)]
#[command(name = "imdsguard", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inventory every instance's metadata options, roles, owners and IMDSv1 use.
    ///
    /// Lists instances in every selected region (1000 per call), joins each
    /// instance profile to its IAM role with one IAM listing per account,
    /// measures IMDSv1 calls per instance from CloudWatch (`MetadataNoToken`,
    /// `MetadataNoTokenRejected`; 250 instances per call) and gives each
    /// instance a readiness verdict: compliant, rejecting-v1, disabled, ready,
    /// in-use or unknown. Reads what the next launch gets from each launch
    /// template, Auto Scaling group and account default. Prints the summary
    /// per region and the instances that still allow IMDSv1, and saves the
    /// scan in the database.
    #[command(after_help = SCAN_EXAMPLES)]
    Scan(ScanArgs),

    /// Views of a stored scan (the latest unless --scan), without calling AWS.
    ///
    /// `show instances` prints a scan again in any format; `show usage` lists
    /// instances by IMDSv1 calls with a daily sparkline, and `show usage
    /// --fleet` the fleet's daily totals of answered and refused v1 calls;
    /// `show owners` and `show roles` group the instances that allow IMDSv1
    /// by owner tag and by IAM role.
    #[command(subcommand)]
    Show(ShowCommand),

    /// Compute the exact change for each selected instance and write a plan file; changes nothing.
    ///
    /// For `require-v2`, only `ready` instances are included: `in-use` and
    /// `unknown` ones are listed as skipped with the reason unless you opt in.
    /// Every other option (endpoint, hop limit, tags, IPv6) is kept unless
    /// asked otherwise, and a disabled endpoint is never re-enabled.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),

    /// Execute a plan: journaled, paced, compared before each change, verified.
    ///
    /// Refuses a plan that is edited, older than --max-plan-age, or whose
    /// instances changed since it was made. Right before each batch of
    /// changes, the instances are described again: one someone else changed
    /// meanwhile is skipped, never overwritten. Each change is journaled
    /// before and after its call, so an interrupted run (Ctrl-C, crash, kill,
    /// expired credentials) can be finished with `--resume RUN` or undone
    /// with `imdsguard rollback RUN`. One process drives a run at a time.
    /// Exits 0 only when every change is applied and verified.
    #[command(after_help = AFTER_HELP)]
    Apply(ApplyArgs),

    /// Put every instance changed by a run back to its exact previous options.
    #[command(after_help = AFTER_HELP)]
    Rollback(RollbackArgs),

    /// List apply/rollback runs, or show one run's journal.
    #[command(after_help = AFTER_HELP)]
    Runs(RunsArgs),

    /// Plan and apply `require-v2` in one step (metabadger's `harden`).
    #[command(after_help = AFTER_HELP)]
    Harden(HardenArgs),

    /// Plan and apply `disable-endpoint` in one step: no IMDS at all on the selected instances.
    #[command(after_help = AFTER_HELP)]
    Disable(DisableArgs),

    /// Read-only SQL over the stored scans and runs.
    ///
    /// Tables: scans, scan_regions, scan_failures, instances, usage,
    /// usage_daily, runs, changes. The database is opened read-only.
    #[command(after_help = QUERY_EXAMPLES)]
    Query(QueryArgs),

    /// Enforcement over time: one line per stored scan.
    #[command(after_help = AFTER_HELP)]
    History(RowsOutput),

    /// Account-level IMDS defaults per region: whether the next instance will allow IMDSv1.
    #[command(subcommand)]
    Defaults(DefaultsCommand),

    /// A report of a stored scan for people: `--format html` (charts, owners,
    /// findings, instances to act on), or json, csv, sarif, table.
    #[command(
        after_help = "Example:\n  imdsguard report --format html --out imds.html\n\nExit codes: 0 success, 1 error, 2 bad arguments."
    )]
    Report(ReportArgs),

    /// Apply a plan in waves over days, watching each wave for refused IMDSv1 calls before the next.
    ///
    /// `start` applies wave 1, the canaries (one instance of every group of
    /// likely-identical software: same AMI and role, and same Auto Scaling
    /// group or owner). `advance` does one step and exits (run it from cron
    /// or CI): while the wave soaks it does nothing; then it reads
    /// MetadataNoTokenRejected since each change and runs --health-cmd, and
    /// applies the next wave, or rolls the broken instances back, holds their
    /// groups and halts (exit 1).
    #[command(subcommand)]
    Rollout(RolloutCommand),

    /// Tell each owner what to do: one notice per owner of instances that still allow IMDSv1.
    ///
    /// From a stored scan (the latest by default), each owner (the value of
    /// --owner-tag; instances without it are grouped per account) gets one
    /// notice listing their instances with readiness, role, IMDSv1 calls and
    /// the exact next step for each. Notices go to files (--out-dir), an SNS
    /// topic (--sns-topic) and/or e-mail through SES (--ses-from). Sends are
    /// journaled in the database: a re-run sends only notices whose content
    /// changed since the last one sent there, unless --resend.
    #[command(after_help = NOTIFY_HELP)]
    Notify(NotifyArgs),

    /// Guardrail policies that keep IMDSv1 from coming back (printed, not applied).
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Launch templates: what each launches (`show`), and making them require IMDSv2 (`fix`).
    #[command(subcommand)]
    Templates(TemplatesCommand),

    /// Auto Scaling groups: what each launches next (`show`), and making it require IMDSv2 (`fix`).
    #[command(subcommand)]
    Asg(AsgCommand),

    /// Name the software that still fetches role credentials over IMDSv1, from CloudTrail.
    ///
    /// Every API call made with role credentials an instance got over IMDSv1
    /// is recorded by CloudTrail with `ec2RoleDelivery` 1.0, the instance id
    /// as the role session name, and the caller's user agent. `trail` reads
    /// the last --days of a trail from its log objects in S3 (--bucket: only
    /// the window's date folders are listed, objects are fetched and parsed
    /// concurrently and streamed), from CloudTrail's event history
    /// (--lookup), or with one Athena query (--athena-table), counts the
    /// calls per instance, parses each user agent (SDK or tool and version)
    /// and says what to upgrade it to. Results are saved (trail_runs,
    /// trail_instances, trail_agents) and shown by `show usage` and the HTML
    /// report next to each instance's IMDSv1 calls.
    #[command(after_help = TRAIL_HELP)]
    Trail(TrailArgs),

    /// Print the shell completion script for bash, zsh, fish or powershell.
    ///
    /// Completes subcommands, flags and their fixed values (`--format`,
    /// `--action`, `--state`, ...). Save the script where your shell looks
    /// for completions (see below), then open a new shell. Offline: needs no
    /// credentials and no database.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),

    /// Print imdsguard's man page (roff) to standard output, or write every page with --dir.
    ///
    /// The page holds the description, global options, the subcommands and
    /// the exit codes. With --dir, one page per subcommand is written beside
    /// it (imdsguard-scan.1, imdsguard-show-usage.1, ...), so that `man
    /// imdsguard-scan` works too. Offline: needs no credentials and no
    /// database.
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
}

const NOTIFY_HELP: &str = "\
Examples:
  imdsguard notify --out-dir notices                 one .md and one .txt per owner
  imdsguard notify --sns-topic arn:aws:sns:us-east-1:111122223333:imds --dry-run
  imdsguard notify --ses-from imds@example.com --owner-tag owner,team --yes
  imdsguard notify --sns-topic ARN --resend --yes    send every notice again

Statuses: written (file), sent, would-send (--dry-run), unchanged (same as the
last notice sent there), no-address (SES: the owner tag is not an e-mail
address), failed, not-tried (an earlier send met a credentials or permission
error that every later one would meet).

Permissions: sns:Publish on the topic; ses:SendEmail from a verified identity.

Exit codes: 0 success, 1 error or a notice that could not be sent, 2 bad arguments.";

const COMPLETIONS_HELP: &str = "\
Install (then open a new shell):
  bash        mkdir -p ~/.local/share/bash-completion/completions
              imdsguard completions bash > ~/.local/share/bash-completion/completions/imdsguard
              (needs the bash-completion package; or add to ~/.bashrc:
              source <(imdsguard completions bash))
  zsh         mkdir -p ~/.zfunc && imdsguard completions zsh > ~/.zfunc/_imdsguard
              and in ~/.zshrc, before `compinit`: fpath=(~/.zfunc $fpath)
              (oh-my-zsh loads compinit itself: put the fpath line before it is sourced)
  fish        imdsguard completions fish > ~/.config/fish/completions/imdsguard.fish
  powershell  add to your profile (notepad $PROFILE):
              imdsguard completions powershell | Out-String | Invoke-Expression

Regenerate the script after upgrading imdsguard: flags may have changed.

Exit codes: 0 success, 1 the output could not be written, 2 bad arguments.";

const MAN_HELP: &str = "\
Install for your user, then read them with `man imdsguard`, `man imdsguard-scan`, ...:
  imdsguard man --dir ~/.local/share/man/man1
  (man finds them when ~/.local/bin is on PATH; otherwise add ~/.local/share/man to MANPATH)
For everyone: sudo imdsguard man --dir /usr/local/share/man/man1
Read the main page without installing: imdsguard man | man -l -

Exit codes: 0 success, 1 a page could not be written, 2 bad arguments.";

/// The shells `imdsguard completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write imdsguard.1 and one page per subcommand into DIR (created if missing) instead.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// A service control policy (JSON) for AWS Organizations.
    ///
    /// Denies launching instances without HttpTokens=required or with a hop
    /// limit above --max-hop-limit, and denies changing metadata options or
    /// account defaults except to --admin-role-arn. With
    /// --deny-v1-credentials it also denies every action made with role
    /// credentials that were delivered over IMDSv1 (ec2:RoleDelivery < 2.0):
    /// attach that only once no instance with a role still uses IMDSv1
    /// (`imdsguard show roles` lists them), or it breaks them.
    #[command(
        after_help = "Example:\n  imdsguard policy scp --admin-role-arn 'arn:aws:iam::*:role/imds-admins' --out scp.json\n\nExit codes: 0 success, 2 bad arguments."
    )]
    Scp(PolicyArgs),

    /// An EC2 declarative policy (JSON) for AWS Organizations: IMDSv2 the default everywhere.
    ///
    /// Sets the account-level IMDS defaults of every account and region it is
    /// attached to (HttpTokens=required, the hop limit) and takes them out of
    /// the accounts' hands (`defaults show` then says managed by
    /// declarative-policy). It sets defaults for new launches only: existing
    /// instances keep their options, and a launch that asks for IMDSv1
    /// explicitly still gets it (pair it with `policy scp` to refuse those).
    #[command(
        after_help = "Example:\n  imdsguard policy declarative --hop-limit 2 --exception-message 'IMDSv2 is required: see https://wiki.example/imds' --out imds-declarative.json\n\nExit codes: 0 success, 2 bad arguments."
    )]
    Declarative(DeclarativeArgs),
}

#[derive(Debug, Args)]
pub struct DeclarativeArgs {
    /// The default hop limit of new instances (1 to 64; 2 lets containers reach IMDS).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    pub hop_limit: u8,
    /// What people see when the policy refuses a change to the defaults.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "IMDSv2 is required in this organization: instance metadata defaults are managed centrally.",
        value_parser = exception_message
    )]
    pub exception_message: String,
    /// `policy`: the document to attach; `json`: imdsguard's document with the
    /// policy and its impact on the latest stored scan.
    #[arg(long, help_heading = "Output", value_enum, default_value_t = PolicyFormatArg::Policy)]
    pub format: PolicyFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormatArg {
    Policy,
    Json,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Role(s) allowed to change instance metadata options (repeatable; wildcards allowed).
    #[arg(long, value_name = "ARN", value_parser = role_arn)]
    pub admin_role_arn: Vec<String>,
    /// The highest hop limit new instances may use (1 to 64).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=64))]
    pub max_hop_limit: u8,
    /// Add the statement that denies role credentials delivered over IMDSv1
    /// (breaks every instance that still fetches them without a token).
    #[arg(long)]
    pub deny_v1_credentials: bool,
    /// Kept for scripts of earlier versions: leaving that statement out is
    /// now the default.
    #[arg(long, hide = true, conflicts_with = "deny_v1_credentials")]
    pub allow_v1_credentials: bool,
    /// `policy`: the document to attach; `json`: imdsguard's document with the
    /// policy and its impact on the latest stored scan.
    #[arg(long, help_heading = "Output", value_enum, default_value_t = PolicyFormatArg::Policy)]
    pub format: PolicyFormatArg,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The scan id; default: the latest.
    #[arg(long, value_name = "ID")]
    pub scan: Option<i64>,
    /// Output format (`html`: one self-contained page with charts).
    #[arg(long, help_heading = "Output", value_enum, default_value_t = ReportFormatArg::Table)]
    pub format: ReportFormatArg,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Each launch template: what the next launch from its default and latest version gets, and which level decided (Security Hub EC2.170).
    #[command(after_help = AFTER_HELP)]
    Show(RowsOutput),

    /// Make launch templates launch IMDSv2-only instances: a new version that copies the source
    /// version's data field by field with HttpTokens=required, made the default.
    ///
    /// Reads the templates now (never a stale scan) and fixes those whose default or latest
    /// version allows IMDSv1 (or the ones named with --template). The source is the default
    /// version when it allows v1 (the new version becomes the default unless --no-set-default),
    /// else the latest. The run is journaled: `imdsguard rollback RUN` makes each template's
    /// previous default version the default again. Needs ec2:DescribeLaunchTemplateVersions,
    /// ec2:CreateLaunchTemplateVersion and ec2:ModifyLaunchTemplate.
    #[command(after_help = FIX_HELP)]
    Fix(TemplatesFixArgs),
}

#[derive(Debug, Subcommand)]
pub enum DefaultsCommand {
    /// Show the defaults of every selected account and region (`GetInstanceMetadataDefaults`).
    #[command(after_help = AFTER_HELP)]
    Show(RowsOutput),

    /// Set the account-level default of every selected region to HttpTokens=required
    /// (`ModifyInstanceMetadataDefaults`), journaled per account and region.
    ///
    /// New instances that leave tokens unset then require IMDSv2. --enforce also sets
    /// HttpTokensEnforced=enabled: launches that ask for HttpTokens=optional are refused and no
    /// instance can be set back to optional; imdsguard first shows what that would block, from
    /// the latest scan. Regions managed by a declarative policy are refused (change the policy).
    /// `imdsguard rollback RUN` restores every previous value.
    #[command(after_help = FIX_HELP)]
    Set(DefaultsSetArgs),
}

/// Auto Scaling groups: what their next launch gets, and making it IMDSv2-only.
#[derive(Debug, Subcommand)]
pub enum AsgCommand {
    /// Each Auto Scaling group: the template version or launch configuration it launches from,
    /// what the next instance gets, and its instances that allow IMDSv1 (Security Hub AutoScaling.3).
    #[command(after_help = AFTER_HELP)]
    Show(RowsOutput),

    /// Make Auto Scaling groups launch IMDSv2-only instances, without replacing any instance.
    ///
    /// A group pinned to a version gets a fixed copy of that version and is pointed at it; a
    /// group on a launch configuration gets an equivalent launch template (IMDSv2 required) and
    /// is switched to it. Groups that follow $Default or $Latest are fixed by `templates fix`.
    /// No instance refresh is started: the command that would start one is printed with the
    /// number of instances that still allow IMDSv1. `imdsguard rollback RUN` points each group
    /// back at its previous template version or launch configuration. Needs
    /// autoscaling:UpdateAutoScalingGroup, ec2:CreateLaunchTemplateVersion,
    /// ec2:CreateLaunchTemplate and autoscaling:DescribeLaunchConfigurations.
    #[command(after_help = FIX_HELP)]
    Fix(AsgFixArgs),
}

const TRAIL_HELP: &str = "\
Examples:
  imdsguard trail --bucket my-org-trail --days 14
  imdsguard trail --bucket logs --prefix cloudtrail --bucket-region eu-west-1 --format json
  imdsguard trail --lookup --regions us-east-1,eu-west-1 --days 7
  imdsguard trail --athena-table cloudtrail.org_trail --athena-output s3://athena-results/imdsguard/
  imdsguard trail --athena-table cloudtrail.org_trail --print-sql

Exit codes: 0 success, 1 error or an object that could not be read (the rest is reported),
2 bad arguments.";

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trail_source").required(true).args(["bucket", "lookup", "athena_table"])))]
pub struct TrailArgs {
    /// Read the trail's log objects in this S3 bucket (an organization trail's too).
    #[arg(long, value_name = "NAME", help_heading = "Source")]
    pub bucket: Option<String>,
    /// The trail's S3 key prefix, if it has one.
    #[arg(
        long,
        default_value = "",
        value_name = "PREFIX",
        requires = "bucket",
        help_heading = "Source"
    )]
    pub prefix: String,
    /// The bucket's region (default: the session's region).
    #[arg(
        long,
        value_name = "REGION",
        requires = "bucket",
        help_heading = "Source"
    )]
    pub bucket_region: Option<String>,
    /// Read CloudTrail's event history (`LookupEvents`, management events, 90 days) in every
    /// selected account and region, paced to 2 requests per second per account and region.
    #[arg(long, help_heading = "Source")]
    pub lookup: bool,
    /// Run one Athena query over the trail's table (`DATABASE.TABLE`) that filters and
    /// aggregates on AWS's side.
    #[arg(long, value_name = "DB.TABLE", help_heading = "Source")]
    pub athena_table: Option<String>,
    /// Where Athena writes the query's results (`s3://bucket/prefix/`).
    #[arg(
        long,
        value_name = "S3-URI",
        requires = "athena_table",
        help_heading = "Source"
    )]
    pub athena_output: Option<String>,
    /// The Athena workgroup (default: the account's primary).
    #[arg(
        long,
        value_name = "NAME",
        requires = "athena_table",
        help_heading = "Source"
    )]
    pub athena_workgroup: Option<String>,
    /// Print the Athena (or CloudTrail Lake) SQL for --athena-table and exit: nothing is run.
    #[arg(long, requires = "athena_table")]
    pub print_sql: bool,
    /// Days of logs to read, up to now (1 to 90).
    #[arg(long, default_value_t = 14, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=90))]
    pub days: u32,
    /// Log objects fetched and parsed at once (--bucket).
    #[arg(long = "objects-at-once", default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub objects_at_once: u16,
    #[command(flatten)]
    pub output: TableOutput,
}

const FIX_HELP: &str = "\
Examples:
  imdsguard templates fix --dry-run                     what would change, nothing sent
  imdsguard templates fix --template lt-0abc123 --hop-limit auto --yes
  imdsguard asg fix --group web-prod
  imdsguard defaults set --http-tokens required --regions us-east-1,eu-west-1
  imdsguard rollback 12                                 undo any of them

Exit codes: 0 success, 1 error or a change that failed, 2 bad arguments or input (nothing was
changed), 130 stopped by Ctrl-C (resume with `apply --resume RUN`).";

/// Confirmation and dry runs for the fix commands.
#[derive(Debug, Args, Clone)]
pub struct FixOpts {
    /// Show the changes and send nothing.
    #[arg(long, help_heading = "Execution")]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long, help_heading = "Execution")]
    pub yes: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct TemplatesFixArgs {
    /// Only these templates (repeat or comma-separate); default: every template that allows IMDSv1.
    #[arg(long = "template", value_name = "lt-ID", value_delimiter = ',', value_parser = template_id)]
    pub templates: Vec<String>,
    /// Hop limit of the new version: `keep`, `auto` (2 when the latest scan shows container
    /// hosts launched from the template), or a number 1-64.
    #[arg(long, default_value = "keep", value_name = "keep|auto|N", value_parser = hop_limit)]
    pub hop_limit: HopLimit,
    /// Create the fixed version without making it the default.
    #[arg(long)]
    pub no_set_default: bool,
    #[command(flatten)]
    pub opts: FixOpts,
}

#[derive(Debug, Args)]
pub struct AsgFixArgs {
    /// Only these groups (repeat); default: every group whose next launch allows IMDSv1.
    #[arg(long = "group", value_name = "NAME", value_parser = group_name)]
    pub groups: Vec<String>,
    /// Hop limit of the fixed launch data: `keep`, `auto` (2 when the latest scan shows the
    /// group's instances are container hosts), or a number 1-64.
    #[arg(long, default_value = "keep", value_name = "keep|auto|N", value_parser = hop_limit)]
    pub hop_limit: HopLimit,
    #[command(flatten)]
    pub opts: FixOpts,
}

#[derive(Debug, Args)]
pub struct DefaultsSetArgs {
    /// The account default's HttpTokens (only `required` is offered: rollback restores the rest).
    #[arg(long, value_enum)]
    pub http_tokens: RequiredArg,
    /// Also set the default hop limit (1-64).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=64))]
    pub hop_limit: Option<i32>,
    /// Also set HttpTokensEnforced=enabled (shows what it would block first).
    #[arg(long)]
    pub enforce: bool,
    #[command(flatten)]
    pub opts: FixOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RequiredArg {
    Required,
}

const QUERY_EXAMPLES: &str = "\
Examples:
  imdsguard query \"SELECT owner, COUNT(*) AS n FROM instances WHERE scan_id = (SELECT MAX(id) FROM scans)
                   AND http_tokens = 'optional' GROUP BY owner ORDER BY n DESC\"
  imdsguard query \"SELECT instance_id, v1_calls, last_v1_call FROM usage ORDER BY v1_calls DESC LIMIT 10\" --format csv

Exit codes: 0 success, 1 error, 2 bad arguments or SQL.";

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// One SELECT statement.
    pub sql: String,
    #[command(flatten)]
    pub output: RowsOutput,
}

const PLAN_EXAMPLES: &str = "\
Examples:
  imdsguard plan --action require-v2 --out plan.json            only `ready` instances
  imdsguard plan --action require-v2 --hop-limit auto --tag env=prod --out plan.json
  imdsguard plan --action require-v2 --scan 12 --include-unknown --out plan.json
  imdsguard apply plan.json

Exit codes: 0 success, 1 error, 2 bad arguments or input.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// HttpTokens=required (IMDSv2 only).
    RequireV2,
    /// HttpEndpoint=disabled (no IMDS).
    DisableEndpoint,
    /// HttpTokens=optional (re-allow IMDSv1).
    AllowV1,
}

/// How the plan is made (shared by plan, harden, disable).
#[derive(Debug, Args, Clone)]
pub struct PlanOpts {
    /// Hop limit: `keep`, `auto` (2 on container hosts that have less), or a number 1-64.
    #[arg(
        long,
        help_heading = "Plan options",
        default_value = "keep",
        value_name = "keep|auto|N",
        value_parser = hop_limit
    )]
    pub hop_limit: HopLimit,

    /// Also turn on instance tags in IMDS (`InstanceMetadataTags=enabled`).
    #[arg(long, help_heading = "Plan options")]
    pub enable_tags: bool,

    /// Enforce IMDSv2 even on instances that made IMDSv1 calls in the window (they will break).
    #[arg(long, help_heading = "Plan options")]
    pub include_in_use: bool,

    /// Enforce IMDSv2 on instances without metric data (not proven safe).
    #[arg(long, help_heading = "Plan options")]
    pub include_unknown: bool,

    /// Plan from this stored scan instead of scanning now.
    #[arg(long, help_heading = "Plan options", value_name = "ID")]
    pub scan: Option<i64>,

    /// Days of usage the fresh scan measures (1 to 455).
    #[arg(long, help_heading = "Plan options", default_value_t = crate::usage::DEFAULT_DAYS, value_name = "N")]
    pub days: u32,

    /// Fresh scan without CloudWatch (then only --include-unknown can enforce v2).
    #[arg(long, help_heading = "Plan options", conflicts_with = "days")]
    pub no_usage: bool,

    /// Owner tag key(s) for the fresh scan.
    #[arg(
        long,
        help_heading = "Plan options",
        default_value = "owner",
        value_delimiter = ',',
        value_name = "KEY"
    )]
    pub owner_tag: Vec<String>,
}

/// How changes are executed (shared by apply, rollback, harden, disable).
#[derive(Debug, Args, Clone)]
pub struct ExecOpts {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'y', long, help_heading = "Execution")]
    pub yes: bool,

    /// First send every change, in every account, with DryRun=true; one refusal anywhere and
    /// nothing changes anywhere.
    #[arg(long, help_heading = "Execution")]
    pub check_permissions: bool,

    /// Changes per second per account and region (EC2 refills its bucket at 5/s).
    #[arg(
        long,
        help_heading = "Execution",
        default_value = "5",
        value_name = "N",
        value_parser = rate
    )]
    pub rate: f64,

    /// Also append one JSON line per change to FILE, as soon as each change's
    /// state is known (applied, pending, failed, skipped); `apply --resume`
    /// keeps writing to the run's file.
    #[arg(long, help_heading = "Execution", value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Seconds to wait for changes to reach `applied`.
    #[arg(
        long,
        help_heading = "Execution",
        default_value_t = 60,
        value_name = "SECS"
    )]
    pub verify_timeout: u64,

    /// Compare each instance with what EC2 reports at most SECS before its
    /// change is sent; an instance someone else changed meanwhile is skipped,
    /// never overwritten.
    #[arg(
        long,
        help_heading = "Execution",
        default_value_t = 30,
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub recheck_window: u64,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// What to do to the selected instances.
    #[arg(long, value_enum)]
    pub action: ActionArg,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub plan: PlanOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file written by `imdsguard plan --out`.
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    pub plan: Option<PathBuf>,
    /// Finish an interrupted run instead (never repeats a change already accepted).
    #[arg(long, value_name = "RUN")]
    pub resume: Option<i64>,
    /// Refuse a plan made longer ago than this (`7d`, `12h`, `30m`): readiness ages.
    #[arg(
        long,
        default_value = "7d",
        value_name = "AGE",
        conflicts_with = "resume",
        value_parser = age
    )]
    pub max_plan_age: Duration,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run to undo (see `imdsguard runs`).
    pub run: i64,
    /// Only these instances of the run.
    #[arg(long, value_delimiter = ',', value_name = "IDS", value_parser = instance_id)]
    pub instance_ids: Vec<String>,
    /// Also roll back instances whose options changed again after the run.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Show this run's journal instead of the list.
    pub run: Option<i64>,
    /// The before/after proof: IMDSv1 calls of the run's changed instances
    /// before and after their change, and refusals after (reads CloudWatch;
    /// kept for the HTML report).
    #[arg(long, requires = "run")]
    pub effect: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

/// What `harden` and `disable` share: a selection, a plan, its execution.
#[derive(Debug, Args)]
pub struct OneStepArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Only print the plan.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub plan: PlanOpts,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct HardenArgs {
    #[command(flatten)]
    pub step: OneStepArgs,
    /// Re-allow IMDSv1 instead (metabadger's `-v1`; prefer `rollback RUN`).
    #[arg(long)]
    pub allow_v1: bool,
}

#[derive(Debug, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub step: OneStepArgs,
}

#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// The scan's summary and instances, as `scan` printed them (or its findings as SARIF).
    #[command(after_help = AFTER_HELP)]
    Instances(ShowInstancesArgs),
    /// IMDSv1 calls per instance (or per day with --fleet).
    #[command(after_help = AFTER_HELP)]
    Usage(ShowUsageArgs),
    /// Instances that allow IMDSv1, grouped by owner tag: who to tell.
    #[command(after_help = AFTER_HELP)]
    Owners(ShowScanArgs),
    /// IAM roles behind instances that allow IMDSv1: what an SSRF would hand out.
    #[command(after_help = AFTER_HELP)]
    Roles(ShowScanArgs),
}

#[derive(Debug, Args)]
pub struct ShowInstancesArgs {
    /// The scan id (see the `scan` output); default: the latest.
    #[arg(long, value_name = "ID")]
    pub scan: Option<i64>,
    #[command(flatten)]
    pub output: ScanOutput,
}

#[derive(Debug, Args)]
pub struct ShowUsageArgs {
    /// The scan id (see the `scan` output); default: the latest.
    #[arg(long, value_name = "ID")]
    pub scan: Option<i64>,
    /// The fleet's daily totals instead of one row per instance.
    #[arg(long)]
    pub fleet: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct ShowScanArgs {
    /// The scan id (see the `scan` output); default: the latest.
    #[arg(long, value_name = "ID")]
    pub scan: Option<i64>,
    #[command(flatten)]
    pub output: RowsOutput,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Split a plan into waves and apply the first (the canaries).
    #[command(after_help = ROLLOUT_HELP)]
    Start(RolloutStartArgs),
    /// One step: wait out the soak, check the wave, then apply the next wave or halt.
    #[command(after_help = ROLLOUT_HELP)]
    Advance(RolloutAdvanceArgs),
    /// Go on with a halted rollout after a person has looked.
    Resume(RolloutResumeArgs),
    /// Roll back everything the rollout changed.
    Abort(RolloutAbortArgs),
    /// Waves, instances per wave with their state, refused calls, every decision and why.
    Status(RolloutStatusArgs),
    /// Every rollout in the database.
    List(TableOutput),
}

const ROLLOUT_HELP: &str = "\
Example (a canary, then 10%, 50% and the rest, a day apart):
  imdsguard plan --action require-v2 --out plan.json
  imdsguard rollout start plan.json --waves 1,10%,50%,100% --soak 24h --yes
  # crontab: every 30 minutes, one step (exit 1 when it halted)
  */30 * * * *  imdsguard rollout advance 1 --yes >> rollout.log 2>&1

--waves: the first entry is canaries per group; later ones are cumulative
shares (P%) or counts (N) of the remaining changes; the last must be 100%.

Exit codes: 0 success (or soaking), 1 halted, an error or a partial result, 2 bad arguments.";

#[derive(Debug, Args)]
pub struct RolloutStartArgs {
    /// The plan file written by `imdsguard plan --out`.
    pub plan: PathBuf,
    /// Canaries per group, then cumulative shares or counts of the rest.
    #[arg(long, default_value = "1,10%,50%,100%", value_name = "SPEC")]
    pub waves: String,
    /// How long each wave runs before it is judged (`30m`, `24h`, `2d`; `0s` for none).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = age)]
    pub soak: Duration,
    /// Refused IMDSv1 calls an instance may have after its change before it counts as broken.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_rejected: u64,
    /// A command (run with `sh -c`) that judges the wave's health; non-zero exit halts.
    /// It gets the wave's instance ids in IMDSGUARD_INSTANCE_IDS (comma-separated).
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Refuse a plan made longer ago than this.
    #[arg(long, default_value = "7d", value_name = "AGE", value_parser = age)]
    pub max_plan_age: Duration,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RolloutAdvanceArgs {
    /// The rollout id (`rollout list`).
    pub id: i64,
    /// Keep stepping in the foreground until the rollout halts or ends (for short soaks).
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RolloutResumeArgs {
    pub id: i64,
    /// Leave the instances held back for their group's breakage unchanged for good.
    #[arg(long)]
    pub skip_group: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RolloutAbortArgs {
    pub id: i64,
    #[command(flatten)]
    pub exec: ExecOpts,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    pub id: i64,
    /// The before/after proof of every change the rollout made (reads
    /// CloudWatch; kept for the HTML report).
    #[arg(long)]
    pub effect: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Notices from this stored scan; default: the latest.
    #[arg(long, value_name = "ID")]
    pub scan: Option<i64>,
    /// Tag keys that name an instance's owner, tried in order (case-insensitive).
    #[arg(
        long,
        default_value = "owner",
        value_delimiter = ',',
        value_name = "KEY"
    )]
    pub owner_tag: Vec<String>,
    /// Write one Markdown notice and one plain-text e-mail body per owner into DIR (stable file names).
    #[arg(long, help_heading = "Destinations", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Publish one message per owner to this SNS topic, the owner as the `owner` message attribute.
    #[arg(long, help_heading = "Destinations", value_name = "ARN")]
    pub sns_topic: Option<String>,
    /// E-mail each owner whose tag is an e-mail address through SES, from this verified address.
    #[arg(long, help_heading = "Destinations", value_name = "ADDRESS")]
    pub ses_from: Option<String>,
    /// Send every notice, also those that say what the last one sent said.
    #[arg(long)]
    pub resend: bool,
    /// Send nothing: show what would be sent (files in --out-dir are still written, to read).
    #[arg(long)]
    pub dry_run: bool,
    /// Send without asking for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub output: TableOutput,
}

/// `--format` of commands that print typed rows.
#[derive(Debug, Args, Clone, Copy)]
pub struct RowsOutput {
    /// Output format (`markdown`: a GitHub-flavoured table for pull requests and tickets).
    #[arg(long, help_heading = "Output", value_enum, default_value_t = RowsFormatArg::Table)]
    pub format: RowsFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RowsFormatArg {
    Table,
    Json,
    Csv,
    Markdown,
}

/// `--format` of commands that print tables, documents or rows.
#[derive(Debug, Args, Clone, Copy)]
pub struct TableOutput {
    /// Output format.
    #[arg(long, help_heading = "Output", value_enum, default_value_t = TableFormatArg::Table)]
    pub format: TableFormatArg,
}

/// `--format` of `scan` and `show instances`.
#[derive(Debug, Args, Clone, Copy)]
pub struct ScanOutput {
    /// Output format (`sarif`: the findings, for code-scanning dashboards).
    #[arg(long, help_heading = "Output", value_enum, default_value_t = ScanFormatArg::Table)]
    pub format: ScanFormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormatArg {
    Table,
    Json,
    Csv,
    /// Findings as SARIF 2.1.0.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormatArg {
    Table,
    Json,
    Csv,
    /// Findings as SARIF 2.1.0.
    Sarif,
    /// A self-contained HTML page with charts.
    Html,
    /// The HTML page's content as GitHub-flavoured Markdown.
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryModeArg {
    Standard,
    Adaptive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Running,
    Stopped,
    All,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Named profile from the AWS config files.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME"
    )]
    pub profile: Option<String>,

    /// Regions to scan: `all` (every region enabled for the account) or a comma-separated list.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value = "all",
        value_name = "all|R1,R2"
    )]
    pub regions: String,

    /// Work on these accounts (comma-separated ids) by assuming --role-name in each.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_delimiter = ',',
        value_name = "IDS",
        conflicts_with = "org",
        value_parser = account_id
    )]
    pub accounts: Vec<String>,

    /// Work on every active account of the organization (Organizations ListAccounts) by assuming --role-name.
    #[arg(long, global = true, help_heading = "Global options")]
    pub org: bool,

    /// The role to assume in each account of --accounts / --org (your own account uses your credentials).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "NAME",
        value_parser = role_name
    )]
    pub role_name: Option<String>,

    /// The external id the role's trust policy requires, if any.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "ID"
    )]
    pub external_id: Option<String>,

    /// Send AWS requests to this endpoint instead of AWS (e.g. a local emulator).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "URL"
    )]
    pub endpoint_url: Option<String>,

    /// The imdsguard database [default: the platform data directory]
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "IMDSGUARD_DB",
        value_name = "PATH"
    )]
    pub db: Option<PathBuf>,

    /// Write the output to FILE instead of standard output (for `plan`: the plan file).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub out: Option<PathBuf>,

    /// How many account-regions to work on at once, across all accounts.
    ///
    /// AWS rate-limits each account and region on its own, so many can run
    /// side by side; --region-calls bounds the calls within each one.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// AWS calls in flight at once in one account and region (metric
    /// batches, source listings, changes), where AWS's rate limits apply.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub region_calls: u16,

    /// Attempts per AWS request, including the first (the SDK's retry budget).
    #[arg(long, global = true, help_heading = "Global options", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: Option<u32>,

    /// The SDK's retry mode.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "MODE"
    )]
    pub retry_mode: Option<RetryModeArg>,

    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, help_heading = "Global options", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        conflicts_with = "verbose"
    )]
    pub quiet: bool,

    /// Colour output: auto (when a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,

    /// Never draw progress bars.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_progress: bool,
}

/// Which instances to act on (shared by scan, plan and harden).
#[derive(Debug, Args, Clone)]
pub struct FilterArgs {
    /// Only these instances (comma-separated or repeated).
    #[arg(
        long,
        help_heading = "Selection",
        value_delimiter = ',',
        value_name = "IDS",
        value_parser = instance_id
    )]
    pub instance_ids: Vec<String>,

    /// Only the instances listed in a CSV file with an `instance_id` column
    /// (optional `region` and `account_id` columns pin each one).
    #[arg(long, help_heading = "Selection", value_name = "FILE.csv")]
    pub input_file: Option<PathBuf>,

    /// Only instances with this tag (repeatable; all must match; VALUE `*` means any).
    #[arg(help_heading = "Selection", long = "tag", value_name = "KEY=VALUE", value_parser = tag)]
    pub tags: Vec<(String, String)>,

    /// Leave out these instances.
    #[arg(
        long,
        help_heading = "Selection",
        value_delimiter = ',',
        value_name = "IDS",
        value_parser = instance_id
    )]
    pub exclude_ids: Vec<String>,

    /// Leave out instances with this tag (repeatable).
    #[arg(
        help_heading = "Selection",
        long = "exclude-tag",
        value_name = "KEY=VALUE",
        value_parser = tag
    )]
    pub exclude_tags: Vec<(String, String)>,

    /// Only instances in this state.
    #[arg(long, help_heading = "Selection", value_enum, default_value_t = StateArg::All)]
    pub state: StateArg,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub filters: FilterArgs,

    /// Days of CloudWatch history to measure IMDSv1 use over (1 to 455).
    #[arg(long, help_heading = "Scan options", default_value_t = crate::usage::DEFAULT_DAYS, value_name = "N")]
    pub days: u32,

    /// Skip CloudWatch: inventory only (instances allowing v1 are then `unknown`).
    #[arg(long, help_heading = "Scan options", conflicts_with = "days")]
    pub no_usage: bool,

    /// Skip the sources of new instances: launch templates, Auto Scaling
    /// groups, account defaults and AMIs (3 to 5 calls per region fewer).
    #[arg(long, help_heading = "Scan options")]
    pub no_sources: bool,

    /// Exit 3 when a finding at or above this severity exists (for CI).
    #[arg(
        long,
        help_heading = "Scan options",
        value_enum,
        value_name = "SEVERITY"
    )]
    pub fail_on: Option<SeverityArg>,

    /// Tag key(s) naming an instance's owner, tried in order, case-insensitive.
    #[arg(
        help_heading = "Scan options",
        long,
        default_value = "owner",
        value_delimiter = ',',
        value_name = "KEY"
    )]
    pub owner_tag: Vec<String>,

    #[command(flatten)]
    pub output: ScanOutput,
}

/// A finding's severity, for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeverityArg {
    Low,
    Medium,
    High,
}

/// A value parser's error: what is wrong, and a `help:` line, as every
/// imdsguard error has.
fn bad(message: impl std::fmt::Display, hint: &str) -> String {
    format!("{message}\n  help: {hint}")
}

fn instance_id(raw: &str) -> Result<String, String> {
    crate::filter::parse_instance_id(raw).map_err(|e| bad(&e, e.hint()))
}

fn tag(raw: &str) -> Result<(String, String), String> {
    crate::filter::parse_tag(raw).map_err(|e| bad(&e, e.hint()))
}

fn account_id(raw: &str) -> Result<String, String> {
    crate::filter::parse_account_id(raw).map_err(|e| bad(&e, e.hint()))
}

fn role_name(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(bad(
            format!("malformed role name `{raw}`"),
            "pass the role's name, not its ARN (letters, digits and +=,.@_-, at most 64)",
        ))
    }
}

fn role_arn(raw: &str) -> Result<String, String> {
    if raw.starts_with("arn:") && raw.contains(":iam::") && raw.contains(":role/") {
        Ok(raw.to_owned())
    } else {
        Err(bad(
            format!("`{raw}` is not an IAM role ARN"),
            "e.g. arn:aws:iam::*:role/imds-admins (wildcards allowed)",
        ))
    }
}

fn template_id(raw: &str) -> Result<String, String> {
    let ok =
        raw.len() > 3 && raw.starts_with("lt-") && raw[3..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(bad(
            format!("`{}` is not a launch template id", raw.escape_debug()),
            "launch template ids look like lt-0123456789abcdef0 (see `imdsguard templates show`)",
        ))
    }
}

fn group_name(raw: &str) -> Result<String, String> {
    // Auto Scaling group names: 1-255 characters, no control characters.
    if raw.is_empty() || raw.len() > 255 || raw.chars().any(char::is_control) {
        Err(bad(
            format!("`{}` is not an Auto Scaling group name", raw.escape_debug()),
            "names are 1-255 printable characters (see `imdsguard asg show`)",
        ))
    } else {
        Ok(raw.to_owned())
    }
}

fn hop_limit(raw: &str) -> Result<HopLimit, String> {
    match raw.trim() {
        "keep" => Ok(HopLimit::Keep),
        "auto" => Ok(HopLimit::Auto),
        n => match n.parse::<i32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(HopLimit::Set(n)),
            _ => Err(bad(
                format!("`{raw}` is not keep, auto or 1-64"),
                "containers need 2 under IMDSv2; `auto` sets 2 on detected container hosts",
            )),
        },
    }
}

fn rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1000.0 => Ok(r),
        _ => Err(bad(
            format!("`{raw}` is out of range"),
            "pass changes per second per region, above 0 and at most 1000, e.g. --rate 5 (EC2's sustained limit)",
        )),
    }
}

fn age(raw: &str) -> Result<Duration, String> {
    crate::clock::parse_duration(raw).ok_or_else(|| {
        bad(
            format!("`{raw}` is not a duration"),
            "pass e.g. 7d, 36h or 90m",
        )
    })
}

fn exception_message(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() || raw.chars().any(char::is_control) {
        return Err(bad(
            "the exception message is empty or has control characters".to_owned(),
            "pass one line of text, e.g. --exception-message 'IMDSv2 is required: see https://wiki.example/imds'",
        ));
    }
    Ok(raw.to_owned())
}
