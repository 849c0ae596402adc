//! `imdsguard notify`: owner notices from a stored scan (see `ops::notify`).
//! Resolves nothing itself: confirms a real send, delivers, renders.

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::ops::notify::{NotifyRequest, deliver, prepare, to_send};
use crate::ops::{self, Session};
use crate::output::{self, Format};
use crate::printer::Printer;

pub async fn run(
    session: &Session,
    printer: &Printer,
    request: &NotifyRequest,
    yes: bool,
    format: Format,
) -> Result<ExitCode, Error> {
    let (store, notices) = prepare(&session.db, request)?;
    if notices.is_empty() {
        printer.note("no instance allows IMDSv1 in this scan: there is no one to notify");
    }
    let sends = if request.sends() {
        to_send(&store, &notices, request)?
    } else {
        0
    };
    let notifier = if sends > 0 {
        let mut to = Vec::new();
        if let Some(t) = &request.sns {
            to.push(format!("SNS topic {}", t.arn));
        }
        if let Some(from) = &request.ses_from {
            to.push(format!("e-mail from {from}"));
        }
        let question = format!(
            "Send the notices of {} owner(s) (those that changed since the last send{}) via {}?",
            notices.len(),
            if request.resend {
                ", or all: --resend"
            } else {
                ""
            },
            to.join(" and ")
        );
        if !printer.confirm(&question, "", yes)? {
            printer.note("nothing sent");
            return Ok(ExitCode::Failure);
        }
        Some(ops::notifier(session).await?)
    } else {
        None
    };
    let outcome = deliver(&store, notifier.as_deref(), notices, request).await?;
    printer.emit(|w, style| output::notify::render(&outcome, format, style, w))?;
    Ok(if outcome.failed() > 0 {
        ExitCode::Failure
    } else {
        ExitCode::Success
    })
}
