//! Turns clap's types into the plain settings the rest of the program uses,
//! in one place: flags, environment (`NO_COLOR`, `IMDSGUARD_DB`) and
//! terminal detection are merged here and nowhere else.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::aws::sdk::{RetryMode, SessionOptions};
use crate::cli::{ColorArg, FilterArgs, FormatArg, GlobalArgs, RetryModeArg, StateArg};
use crate::error::Error;
use crate::filter::{self, Selection, SelectionInput, StateFilter};
use crate::output::{Format, Style};
use crate::scan::RegionRequest;

/// Which accounts a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountScope {
    /// The account of the credentials in use.
    Current,
    /// These accounts, through `role_name`.
    List(Vec<String>),
    /// Every active account of the organization, through `role_name`.
    Organization,
}

/// How to reach accounts other than the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSettings {
    pub role_name: String,
    pub external_id: Option<String>,
}

/// Settings every command shares.
pub struct Global {
    pub session: SessionOptions,
    pub accounts: AccountScope,
    /// Set when --role-name is given (required with --accounts / --org).
    pub role: Option<RoleSettings>,
    pub regions: RegionRequest,
    pub db: PathBuf,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub concurrency: usize,
    pub verbosity: i8,
    /// Colour for what goes to stdout (or `--out`: never).
    pub stdout_style: Style,
    /// Colour for messages on stderr.
    pub stderr_style: Style,
    pub progress: bool,
}

impl Global {
    pub fn from_args(args: &GlobalArgs) -> Result<Global, Error> {
        let regions = parse_regions(&args.regions)?;
        let accounts = if args.org {
            AccountScope::Organization
        } else if args.accounts.is_empty() {
            AccountScope::Current
        } else {
            let mut ids = Vec::new();
            for raw in &args.accounts {
                let id = raw.trim();
                if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::Usage {
                        message: format!("malformed account id `{raw}`"),
                        hint: "account ids are 12 digits; separate several with commas".into(),
                    });
                }
                if !ids.iter().any(|i: &String| i == id) {
                    ids.push(id.to_owned());
                }
            }
            AccountScope::List(ids)
        };
        let role = match &args.role_name {
            Some(name) => {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
                if !ok {
                    return Err(Error::Usage {
                        message: format!("malformed role name `{name}`"),
                        hint: "pass the role's name, not its ARN (letters, digits and +=,.@_-, at most 64)".into(),
                    });
                }
                Some(RoleSettings {
                    role_name: name.clone(),
                    external_id: args.external_id.clone(),
                })
            }
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
        Ok(Global {
            session: SessionOptions {
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
            format: match args.format {
                FormatArg::Table => Format::Table,
                FormatArg::Json => Format::Json,
                FormatArg::Csv => Format::Csv,
                FormatArg::Sarif => Format::Sarif,
                FormatArg::Html => Format::Html,
            },
            out: args.out.clone(),
            concurrency: usize::from(args.concurrency),
            verbosity: if args.quiet {
                -1
            } else {
                args.verbose.min(2) as i8
            },
            stdout_style: Style {
                color: color_for(stdout_tty) && args.out.is_none(),
            },
            stderr_style: Style {
                color: color_for(stderr_tty),
            },
            progress: stderr_tty && !args.no_progress && !args.quiet,
        })
    }
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
